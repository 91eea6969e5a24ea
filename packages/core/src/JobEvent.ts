/**
 * Job events: what happens to each job, as it happens.
 *
 * Subscribe with `WorkerPool.subscribe` (a scoped subscription, registered at once) or read
 * `WorkerPool.events` (subscribes when the stream starts). A subscriber never blocks the pool: each has
 * its own unbounded buffer, so a slow or late subscriber loses nothing that happens after it subscribed.
 * The stream ends after the pool's shutdown has finished and every buffered event has been read.
 *
 * @since 0.1.0
 */
import type * as Cause from "effect/Cause"
import * as Outcome from "./internal/outcome.ts"

/**
 * The kinds of event.
 *
 * - `Submitted`: the job was accepted (queued or started at once).
 * - `Started`: an attempt started (`attempt` 1, or more after retries).
 * - `AttemptFailed`: an attempt failed with a typed error (`cause`); a `Started` follows if it is retried.
 * - `Progress`: the running job reported progress (`progress`; see `Job.Info`), rate-limited per job.
 * - `Succeeded`, `Failed` (with `cause`), `TimedOut`, `Cancelled`, `Interrupted`, `Abandoned`: the job's
 *   terminal state; exactly one per accepted job.
 * - `Dropped`: the job was not accepted (queue full under `"dropping"`); it is the terminal event of that
 *   job's handle (`isTerminal` is true, as `Job.isTerminal("dropped")` is).
 *
 * @example
 * ```ts
 * import type { JobEvent } from "@fiberpool/core"
 *
 * const kind: JobEvent.Kind = "TimedOut"
 * console.log(kind) // => TimedOut
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Kind = "Submitted" | "Started" | "AttemptFailed" | "Progress" | Outcome.TerminalEvent

/**
 * One event of one job.
 *
 * - `pool`: the pool's name; `jobId`; `metadata`: the job's metadata, if any.
 * - `attempt`: the attempt it concerns (0 before the first start).
 * - `at`: when it happened; `submittedAt`, `startedAt` (of the first attempt, if any): epoch milliseconds
 *   on the Effect `Clock`.
 * - `cause`: for `AttemptFailed` and `Failed`.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect, Stream } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ concurrency: 1 })
 *   const events = yield* WorkerPool.subscribe(pool)
 *   yield* WorkerPool.run(pool, Effect.succeed(1), { id: "a" })
 *   yield* WorkerPool.shutdown(pool)
 *   const kinds = yield* Stream.runCollect(Stream.map(events, (e) => `${e._tag} ${e.jobId}`))
 *   assert.deepStrictEqual(kinds, ["Submitted a", "Started a", "Succeeded a"])
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface JobEvent {
  readonly _tag: Kind
  readonly pool: string
  readonly jobId: string
  readonly attempt: number
  readonly at: number
  readonly submittedAt: number
  readonly startedAt: number | undefined
  readonly metadata: Readonly<Record<string, unknown>> | undefined
  readonly cause: Cause.Cause<unknown> | undefined
  /** The value a `Progress` event reports (undefined for the other kinds). */
  readonly progress?: unknown
}

/**
 * Tells whether an event is a job's terminal event.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { JobEvent } from "@fiberpool/core"
 *
 * assert.strictEqual(JobEvent.isTerminal({ _tag: "Started" }), false)
 * assert.strictEqual(JobEvent.isTerminal({ _tag: "Abandoned" }), true)
 * assert.strictEqual(JobEvent.isTerminal({ _tag: "Dropped" }), true)
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isTerminal = (event: Pick<JobEvent, "_tag">): boolean => Outcome.terminalEvents.has(event._tag)
