/**
 * A main runner for Node services with a two-phase shutdown.
 *
 * `runMain(program)` runs `program` as the process's main fiber with a `Shutdown.Controller` provided as
 * `Shutdown.CurrentController`, so every pool made inside follows it:
 *
 * 1. **First SIGTERM or SIGINT**: a log line, the controller moves to `"graceful"` (every pool closes its
 *    intake and shuts down with its own options, and readiness probes turn 503), then the main fiber is
 *    interrupted so that every scope and layer closes. When they are closed the process exits `0`.
 * 2. **Second signal**: a log line naming the signals received (`SIGTERM received after SIGINT: …`), the
 *    controller moves to `"forced"` (queues are cancelled, running jobs interrupted now) and a hard timer
 *    starts: the process exits with {@link ExitCode}`.Forced` (3) when the finalizers are done or when
 *    `forceExitAfter` (default 750 ms) has passed, whichever comes first, even if a finalizer hangs.
 * 3. A third signal exits at once with the forced code.
 *
 * A signal that arrives within 100 ms of the previous one counts as the same request: a terminal's Ctrl-C
 * signals the whole process group, and a parent runner such as `npm run` forwards it to its child again.
 *
 * The signal lines go through the program's own loggers (the main fiber's loggers, minimum level and
 * annotations at the moment of the signal): a program that provides a JSON logger gets JSON lines only.
 *
 * Every pool made inside logs its shutdown report (`Shutdown.logReport`: the fate of each job live at
 * shutdown) through the application's logger when a signal ends the program.
 *
 * | code | meaning |
 * | --- | --- |
 * | 0 | clean exit: the program finished, or a graceful shutdown completed after a signal |
 * | 1 | the program failed (a typed error or a defect; an error may set its own code with `Runtime.errorExitCode`) |
 * | 2 | invalid options: `runMain`'s own, or the program failed with an `InvalidOptions` (a misconfigured pool) |
 * | 3 | forced: a second signal cut the shutdown short (work may have been cancelled, interrupted or abandoned) |
 *
 * 3 is the first code after the conventional 1 (failure) and 2 (usage error), and stays clear of 128 + n,
 * which shells and orchestrators read as "killed by signal n" (130 for SIGINT, 143 for SIGTERM): a forced exit
 * is still an orderly exit that the process chose, and monitoring can tell it apart from a kill.
 *
 * @since 0.1.0
 */
import { PoolError, Shutdown, Validation } from "@fiberpool/core"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { dual } from "effect/Function"
import type * as Layer from "effect/Layer"
import * as Result from "effect/Result"
import * as Runtime from "effect/Runtime"
import { ListenError } from "./NodeError.ts"

/**
 * The process exit codes of {@link runMain}.
 *
 * - `Success` (0): the program finished, or a graceful shutdown completed after a signal.
 * - `Failure` (1): the program failed.
 * - `InvalidOptions` (2): the runner's options were invalid, or the program failed with `InvalidOptions`.
 * - `Forced` (3): a second signal forced the shutdown.
 *
 * @example
 * ```ts
 * import { NodeShutdown } from "@fiberpool/node"
 *
 * console.log(NodeShutdown.ExitCode.Forced) // => 3
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export const ExitCode = {
  Success: 0,
  Failure: 1,
  InvalidOptions: 2,
  Forced: 3
} as const

/**
 * Options of {@link runMain}.
 *
 * - `forceExitAfter`: after the second signal, the longest wait for finalizers before the process exits
 *   anyway. A positive duration; default 750 ms, so that the process is gone within a second of the second
 *   signal while pools still get their forced interrupt bound (500 ms) to report.
 * - `controller`: the controller to provide; by default a new one. Pass your own to read its phase elsewhere.
 * - `disableErrorReporting`: do not log the program's failure.
 * - `logger`: loggers for the whole run, for example `Logger.layer([Logger.consoleJson])`: provided around the
 *   program, so that the report of its failure (logged after the program's own layers have closed) and the
 *   invalid-options line go through them too. Without it they use the loggers outside the program (Effect's
 *   default); signal lines always use the program's own.
 *
 * @example
 * ```ts
 * import { Shutdown } from "@fiberpool/core"
 * import type { NodeShutdown } from "@fiberpool/node"
 *
 * const options: NodeShutdown.Options = { forceExitAfter: "500 millis", controller: Shutdown.makeController() }
 * console.log(options.forceExitAfter) // => 500 millis
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly forceExitAfter?: Duration.Input | undefined
  readonly controller?: Shutdown.Controller | undefined
  readonly disableErrorReporting?: boolean | undefined
  readonly logger?: Layer.Layer<never> | undefined
}

/**
 * Checks {@link Options} and fills in the defaults, or fails with `InvalidOptions` naming the option.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Result } from "effect"
 * import { NodeShutdown } from "@fiberpool/node"
 *
 * const ok = NodeShutdown.validateOptions({ forceExitAfter: "1 second" })
 * assert.ok(Result.isSuccess(ok) && ok.success.forceExitAfterMillis === 1000)
 * const bad = NodeShutdown.validateOptions({ forceExitAfter: -5 })
 * assert.ok(Result.isFailure(bad) && bad.failure.option === "forceExitAfter")
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const validateOptions = (
  options: Options | undefined
): Result.Result<{ readonly forceExitAfterMillis: number }, PoolError.InvalidOptions> =>
  Result.map(
    Validation.durationMillis("forceExitAfter", options?.forceExitAfter, {
      fallback: defaultForceExitAfterMillis,
      positive: true
    }),
    (forceExitAfterMillis) => ({ forceExitAfterMillis })
  )

/**
 * The exit code for the main fiber's exit, given the controller's phase when it ended (see {@link ExitCode}).
 *
 * **Details**
 *
 * A `"forced"` phase always gives 3. Otherwise success gives 0; an interruption alone gives 0 once a signal
 * asked for a graceful shutdown (phase `"graceful"`), and 130 (effect's convention) when nothing asked for
 * it; a failure whose error is `InvalidOptions` gives 2; any other failure gives the error's
 * `Runtime.errorExitCode`, by default 1.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Exit } from "effect"
 * import { NodeShutdown } from "@fiberpool/node"
 *
 * assert.strictEqual(NodeShutdown.exitCodeOf(Exit.interrupt(1), "graceful"), 0)
 * assert.strictEqual(NodeShutdown.exitCodeOf(Exit.fail("boom"), "running"), 1)
 * assert.strictEqual(NodeShutdown.exitCodeOf(Exit.void, "forced"), 3)
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const exitCodeOf = (exit: Exit.Exit<unknown, unknown>, phase: Shutdown.Phase): number => {
  if (phase === "forced") return ExitCode.Forced
  if (Exit.isSuccess(exit)) return ExitCode.Success
  if (Cause.hasInterruptsOnly(exit.cause)) return phase === "graceful" ? ExitCode.Success : 130
  const error = Cause.squash(exit.cause)
  if (error instanceof PoolError.InvalidOptions) return ExitCode.InvalidOptions
  return Runtime.getErrorExitCode(error)
}

/**
 * Runs a program as the main fiber of a Node service, with a graceful-then-forced shutdown on SIGTERM and
 * SIGINT, and exits with a code that says how it ended (see {@link ExitCode} and the module docs).
 *
 * **Details**
 *
 * The program gets a `Shutdown.Controller` as `Shutdown.CurrentController`: pools made inside it start their
 * shutdown on the first signal and are forced on the second; `NodeMetrics`' `/ready` turns 503 as soon as
 * the first signal arrives. Invalid options are logged and exit with code 2 without running the program.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 * import { NodeShutdown } from "@fiberpool/node"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 2, shutdown: { gracePeriod: "10 seconds" } })
 *   const result = yield* WorkerPool.run(pool, Effect.succeed("done"))
 *   yield* Effect.log(result)
 * }).pipe(Effect.scoped)
 *
 * NodeShutdown.runMain(program, { forceExitAfter: "750 millis" })
 * ```
 *
 * @category running
 * @since 0.1.0
 */
export const runMain: {
  /**
   * Data-last form of {@link runMain}.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { NodeShutdown } from "@fiberpool/node"
   *
   * Effect.log("hello").pipe(NodeShutdown.runMain())
   * ```
   *
   * @category running
   * @since 0.1.0
   */
  (options?: Options): <A, E>(program: Effect.Effect<A, E>) => void
  /**
   * Data-first form of {@link runMain}.
   *
   * @example
   * ```ts
   * import { Effect } from "effect"
   * import { NodeShutdown } from "@fiberpool/node"
   *
   * NodeShutdown.runMain(Effect.log("hello"))
   * ```
   *
   * @category running
   * @since 0.1.0
   */
  <A, E>(program: Effect.Effect<A, E>, options?: Options): void
} = dual(
  (args) => Effect.isEffect(args[0]),
  <A, E>(program: Effect.Effect<A, E>, options?: Options): void => {
    const controller = options?.controller ?? Shutdown.makeController()
    const resolved = validateOptions(options)
    const provided: Effect.Effect<A, E | PoolError.InvalidOptions> = Result.isFailure(resolved)
      ? Effect.fail(resolved.failure)
      : Effect.provideService(program, Shutdown.CurrentController, controller)
    const reported = options?.disableErrorReporting === true ? provided : Effect.tapCause(provided, reportFailure)
    const main = options?.logger === undefined ? reported : Effect.provide(reported, options.logger)
    const forceExitAfterMillis = Result.isSuccess(resolved)
      ? resolved.success.forceExitAfterMillis
      : defaultForceExitAfterMillis
    const run = Runtime.makeRunMain(({ fiber, teardown }) => {
      const received: Array<NodeJS.Signals> = []
      let lastSignalAt = Number.NEGATIVE_INFINITY
      const exit = (code: number): never => process.exit(code)
      const onSignal = (signal: NodeJS.Signals) => {
        const now = Effect.runSync(Clock.currentTimeMillis)
        // One Ctrl-C often arrives twice: the terminal signals the whole process group, and a parent runner in
        // that group (npm, yarn, a supervisor) forwards the same signal to its child again a few ms later.
        // A repeat inside the window is that same request; a person's second press comes later.
        if (now - lastSignalAt < repeatWindowMillis) return
        lastSignalAt = now
        received.push(signal)
        // The lines go through the program's own loggers (a JSON logger it provides, its minimum level, its
        // annotations): the main fiber's context at the moment of the signal, kept for the later deadline line.
        const log = Effect.runForkWith(fiber.context)
        if (received.length === 1) {
          log(
            Effect.logInfo(`${signal} received: graceful shutdown started (send it again to force)`).pipe(
              Effect.annotateLogs({ phase: "graceful", signals: signal })
            )
          )
          controller.requestUnsafe("graceful")
          fiber.interruptUnsafe(fiber.id)
        } else if (received.length === 2) {
          log(
            Effect.logWarning(
              `${
                secondSignalWording(received)
              }: forcing shutdown, exiting with code ${ExitCode.Forced} within ${forceExitAfterMillis} ms`
            ).pipe(Effect.annotateLogs({ phase: "forced", signals: received.join(", ") }))
          )
          controller.requestUnsafe("forced")
          // The hard deadline runs on its own fiber: a finalizer of the main fiber that hangs cannot delay it.
          log(
            Effect.sleep(Duration.millis(forceExitAfterMillis)).pipe(
              Effect.andThen(Effect.logWarning("finalizers did not finish in time: exiting now")),
              Effect.andThen(Effect.sync(() => exit(ExitCode.Forced)))
            )
          )
          fiber.interruptUnsafe(fiber.id)
        } else {
          exit(ExitCode.Forced)
        }
      }
      fiber.addObserver((result) => {
        process.removeListener("SIGINT", onSignal)
        process.removeListener("SIGTERM", onSignal)
        teardown(result, (code) => {
          if (received.length > 0 || code !== 0) exit(code)
        })
      })
      process.on("SIGINT", onSignal)
      process.on("SIGTERM", onSignal)
    })
    run(main, {
      disableErrorReporting: true,
      teardown: (result, onExit) => onExit(exitCodeOf(result as Exit.Exit<unknown, unknown>, controller.phase))
    })
  }
)

// ---- Internal ----

const defaultForceExitAfterMillis = 750

/**
 * The start of the second-signal line, naming the signals received: `SIGTERM received again` when both are the
 * same, `SIGTERM received after SIGINT` when they differ.
 */
const secondSignalWording = (received: ReadonlyArray<NodeJS.Signals>): string =>
  received[1] === received[0] ? `${received[1]} received again` : `${received[1]} received after ${received[0]}`

/** Signals closer together than this count once (see `onSignal` in {@link runMain}). */
const repeatWindowMillis = 100

/**
 * Logs why the program failed. A configuration problem that the operator fixes (invalid options, a busy
 * port) is one line naming it; a bug keeps its full cause with stack traces. Interruption is not a failure.
 */
const reportFailure = (cause: Cause.Cause<unknown>): Effect.Effect<void> => {
  if (Cause.hasInterruptsOnly(cause)) return Effect.void
  const error = Cause.squash(cause)
  if (error instanceof PoolError.InvalidOptions || error instanceof ListenError) {
    return Effect.logError(`${error._tag}: ${error.message}`)
  }
  return Effect.logError(cause)
}
