/**
 * Graceful shutdown: its options and the report it returns.
 *
 * Shutdown runs in phases, all bounded:
 *
 * 1. Intake closes: `submit` fails with `PoolClosed`; submitters waiting for room get `PoolClosed` at once.
 * 2. Queued jobs are cancelled (`mode: "cancel"`) or keep starting as workers free up (`mode: "drain"`).
 * 3. The grace period, counted from the start of shutdown, covers draining and in-flight jobs alike.
 * 4. When it ends, queued jobs are cancelled and running jobs interrupted; a job that has not stopped
 *    `interruptTimeout` later is abandoned: reported, never waited on.
 * 5. A {@link ShutdownReport} says what happened to every job that was live when shutdown began.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Outcome from "./internal/outcome.ts"

/**
 * What happens to queued jobs when shutdown begins.
 *
 * - `"drain"` (default): they keep starting until the grace period ends.
 * - `"cancel"`: they end `cancelled` at once; only the running jobs get the grace period.
 *
 * @example
 * ```ts
 * import type { Shutdown } from "@fiberpool/core"
 *
 * const mode: Shutdown.Mode = "cancel"
 * console.log(mode) // => cancel
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Mode = "drain" | "cancel"

/**
 * Shutdown options. A pool's defaults are set with its `shutdown` option; `WorkerPool.shutdown(pool, options)`
 * overrides them for one call.
 *
 * - `mode`: see {@link Mode}. Default `"drain"`.
 * - `gracePeriod`: how long, from the start of shutdown, jobs may run before being interrupted. Default
 *   30 seconds.
 * - `interruptTimeout`: how long an interrupted job may take to stop before it is abandoned. Default
 *   5 seconds.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({
 *     concurrency: 4,
 *     shutdown: { mode: "drain", gracePeriod: "10 seconds", interruptTimeout: "1 second" }
 *   })
 *   yield* WorkerPool.submit(pool, Effect.log("work"))
 *   const report = yield* WorkerPool.shutdown(pool)
 *   console.log(report.totals.succeeded) // => 1
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly mode?: Mode | undefined
  readonly gracePeriod?: Duration.Input | undefined
  readonly interruptTimeout?: Duration.Input | undefined
}

/**
 * Counters of every job over a pool's lifetime.
 *
 * `submitted` counts accepted jobs. Once shutdown has finished,
 * `submitted = succeeded + failed + timedOut + interrupted + cancelled + abandoned`.
 * `rejected` counts submissions that were never accepted (closed pool, full queue, duplicate id, invalid
 * options, dropped).
 *
 * @example
 * ```ts
 * import type { Shutdown } from "@fiberpool/core"
 *
 * const finished = (t: Shutdown.Totals) =>
 *   t.succeeded + t.failed + t.timedOut + t.interrupted + t.cancelled + t.abandoned
 * console.log(finished({
 *   submitted: 3, rejected: 0, succeeded: 2, failed: 1, timedOut: 0,
 *   interrupted: 0, cancelled: 0, abandoned: 0, retries: 0
 * })) // => 3
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Totals extends FateCounts {
  readonly submitted: number
  readonly rejected: number
  readonly retries: number
}

/** One count per outcome of an accepted job (`succeeded`, `failed`, ...): derived from the outcome table. */
type FateCounts = { readonly [F in Outcome.Fate]: number }

/**
 * The ids of the jobs that were live (queued or running) when shutdown began, by how they ended.
 *
 * @example
 * ```ts
 * import type { Shutdown } from "@fiberpool/core"
 *
 * const fates: Shutdown.JobFates = {
 *   succeeded: ["a"], failed: [], timedOut: [], interrupted: ["b"], cancelled: ["c"], abandoned: []
 * }
 * console.log(fates.interrupted) // => [ 'b' ]
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type JobFates = { readonly [F in Outcome.Fate]: ReadonlyArray<string> }

/**
 * What a shutdown did.
 *
 * - `pool`: the pool's name; `mode`: the mode it ran in (`"cancel"` when a later call, such as a second
 *   signal, escalated a drain).
 * - `startedAt`, `finishedAt`: epoch milliseconds on the Effect `Clock`; `durationMillis`.
 * - `graceExpired`: the grace period ended with work left, so jobs were cancelled or interrupted.
 * - `jobs`: the fate of every job live when shutdown began (see {@link JobFates}).
 * - `totals`: the pool's lifetime counters at the end (see {@link Totals}).
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   yield* WorkerPool.submit(pool, Effect.sleep("20 millis"), { id: "slow" })
 *   yield* WorkerPool.submit(pool, Effect.void, { id: "queued" })
 *   const report = yield* WorkerPool.shutdown(pool, { mode: "cancel" })
 *   assert.deepStrictEqual(report.jobs.succeeded, ["slow"])
 *   assert.deepStrictEqual(report.jobs.cancelled, ["queued"])
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Report {
  readonly pool: string
  readonly mode: Mode
  readonly startedAt: number
  readonly finishedAt: number
  readonly durationMillis: number
  readonly graceExpired: boolean
  readonly jobs: JobFates
  readonly totals: Totals
}

/**
 * The phase of a whole application's shutdown, as set on a {@link Controller}.
 *
 * - `"running"`: normal operation.
 * - `"graceful"`: shutdown was requested (a first SIGTERM): every pool closes its intake and shuts down with
 *   its own options.
 * - `"forced"`: shutdown must finish now (a second signal): every pool cancels its queue and interrupts its
 *   running jobs at once.
 *
 * @example
 * ```ts
 * import type { Shutdown } from "@fiberpool/core"
 *
 * const ready = (phase: Shutdown.Phase) => phase === "running"
 * console.log(ready("graceful")) // => false
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Phase = "running" | "graceful" | "forced"

/**
 * A switch shared by every pool of an application, so that a process runner (such as `@fiberpool/node`'s
 * `NodeShutdown.runMain`) can start and then force the shutdown of all pools at once, and a readiness probe
 * can tell that shutdown has begun.
 *
 * Pools made while {@link CurrentController} holds a controller follow it. The phase only moves forward.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { Shutdown, WorkerPool } from "@fiberpool/core"
 *
 * const controller = Shutdown.makeController()
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   yield* Shutdown.requestGraceful(controller)
 *   assert.strictEqual((yield* WorkerPool.stats(pool)).closed, true)
 * }).pipe(Effect.provideService(Shutdown.CurrentController, controller))
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Controller {
  readonly phase: Phase
  /** Registers a listener called synchronously on each phase change; returns its removal. */
  readonly subscribeUnsafe: (listener: (phase: Phase) => void) => () => void
  /** Moves to a later phase; a request for the same or an earlier phase does nothing. */
  readonly requestUnsafe: (phase: Phase) => void
}

const phaseOrder: Record<Phase, number> = { running: 0, graceful: 1, forced: 2 }

/**
 * Creates a {@link Controller} in the `"running"` phase.
 *
 * @example
 * ```ts
 * import { Shutdown } from "@fiberpool/core"
 *
 * const controller = Shutdown.makeController()
 * controller.requestUnsafe("forced")
 * console.log(controller.phase) // => forced
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeController = (): Controller => {
  let phase: Phase = "running"
  const listeners = new Set<(phase: Phase) => void>()
  return {
    get phase() {
      return phase
    },
    subscribeUnsafe(listener) {
      listeners.add(listener)
      return () => {
        listeners.delete(listener)
      }
    },
    requestUnsafe(next) {
      if (phaseOrder[next] <= phaseOrder[phase]) return
      phase = next
      for (const listener of [...listeners]) listener(next)
    }
  }
}

/**
 * The controller that pools made in this context follow; `undefined` (the default) means none.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Shutdown } from "@fiberpool/core"
 *
 * const program = Effect.map(Shutdown.CurrentController, (c) => c?.phase ?? "no controller")
 * console.log(await Effect.runPromise(program)) // => no controller
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export const CurrentController: Context.Reference<Controller | undefined> = Context.Reference<
  Controller | undefined
>("@fiberpool/core/Shutdown/CurrentController", { defaultValue: () => undefined })

/**
 * Starts the graceful shutdown of every pool following the controller.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Shutdown } from "@fiberpool/core"
 *
 * const controller = Shutdown.makeController()
 * await Effect.runPromise(Shutdown.requestGraceful(controller))
 * console.log(controller.phase) // => graceful
 * ```
 *
 * @category resource management
 * @since 0.1.0
 */
export const requestGraceful = (controller: Controller): Effect.Effect<void> =>
  Effect.sync(() => controller.requestUnsafe("graceful"))

/**
 * Forces the shutdown of every pool following the controller: queued jobs are cancelled and running jobs
 * interrupted now.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Shutdown } from "@fiberpool/core"
 *
 * const controller = Shutdown.makeController()
 * await Effect.runPromise(Shutdown.requestForced(controller))
 * console.log(controller.phase) // => forced
 * ```
 *
 * @category resource management
 * @since 0.1.0
 */
export const requestForced = (controller: Controller): Effect.Effect<void> =>
  Effect.sync(() => controller.requestUnsafe("forced"))

/**
 * Describes a {@link Report} in one line: the pool, the mode, the time taken, and the ids of the jobs live at
 * shutdown by how they ended (fates with no job are left out; long lists name their first 20 ids).
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { Shutdown, WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ name: "mail", concurrency: 1 })
 *   yield* WorkerPool.submit(pool, Effect.sleep("10 millis"), { id: "a" })
 *   yield* WorkerPool.submit(pool, Effect.void, { id: "b" })
 *   return yield* WorkerPool.shutdown(pool, { mode: "cancel" })
 * })
 * const report = await Effect.runPromise(Effect.scoped(program))
 * assert.match(Shutdown.describeReport(report), /^pool mail shut down \(cancel, \d+ ms\): succeeded a; cancelled b$/)
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const describeReport = (report: Report): string => {
  const fates = fateLabels.flatMap(([fate, label]) => {
    const ids = report.jobs[fate]
    if (ids.length === 0) return []
    const shown = ids.length > maxIdsShown
      ? `${ids.slice(0, maxIdsShown).join(", ")} and ${ids.length - maxIdsShown} more`
      : ids.join(", ")
    return [`${label} ${shown}`]
  })
  const expired = report.graceExpired ? ", grace period expired" : ""
  const head = `pool ${report.pool} shut down (${report.mode}, ${report.durationMillis} ms${expired})`
  return fates.length === 0 ? `${head}: no job was live` : `${head}: ${fates.join("; ")}`
}

/**
 * Logs a {@link Report} through the application's logger at level Info ({@link describeReport}'s line, with
 * the pool's name as the `fiberpool.pool` annotation). Pools that follow a {@link Controller} log their own
 * report when a controller-driven shutdown (a signal, under `@fiberpool/node`'s `runMain`) ends.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { Shutdown, WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ name: "mail", concurrency: 1 })
 *   yield* WorkerPool.submit(pool, Effect.void, { id: "welcome" })
 *   yield* Shutdown.logReport(yield* WorkerPool.shutdown(pool))
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const logReport = (report: Report): Effect.Effect<void> =>
  Effect.logInfo(describeReport(report)).pipe(Effect.annotateLogs({ "fiberpool.pool": report.pool }))

const maxIdsShown = 20

const fateLabels: ReadonlyArray<readonly [keyof JobFates, string]> = [
  ["succeeded", "succeeded"],
  ["failed", "failed"],
  ["timedOut", "timed out"],
  ["interrupted", "interrupted"],
  ["cancelled", "cancelled"],
  ["abandoned", "abandoned"]
]
