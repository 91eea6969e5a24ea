/**
 * What the dashboard remembers about one pool, built only from core's public API: `WorkerPool.stats` for the
 * gauges and counters, `WorkerPool.subscribe` for the running jobs, the recent failures and the per-second
 * series, and `WorkerPool.shutdown` — called only once the event stream has ended, that is once the pool's own
 * shutdown has finished, when it returns the same report without changing anything — for the last report.
 *
 * Invariants: the memory kept is bounded by the pool's running jobs, `failureLimit` failures and `windowSeconds`
 * buckets, whatever the pool's lifetime.
 */
import { JobEvent, type Shutdown, WorkerPool } from "@fiberpool/core"
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import type * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"

/** @internal */
export interface RunningJob {
  readonly id: string
  readonly attempt: number
  readonly startedAt: number
  readonly attemptStartedAt: number
  readonly ageMillis: number
}

/** @internal */
export interface QueuedJob {
  readonly id: string
  readonly submittedAt: number
  readonly ageMillis: number
}

/** @internal */
export interface Failure {
  readonly id: string
  readonly kind: JobEvent.Kind
  readonly attempt: number
  readonly at: number
  readonly cause: string
}

/** @internal */
export interface Series {
  readonly end: number
  readonly stepMillis: number
  readonly succeeded: ReadonlyArray<number>
  readonly failed: ReadonlyArray<number>
  readonly latencyAvgMillis: ReadonlyArray<number | null>
  readonly latencyMaxMillis: ReadonlyArray<number | null>
}

/** @internal */
export interface PoolSnapshot {
  readonly stats: WorkerPool.Stats
  readonly runningJobs: ReadonlyArray<RunningJob>
  readonly queuedJobs: ReadonlyArray<QueuedJob>
  readonly failures: ReadonlyArray<Failure>
  readonly series: Series
  readonly report: Shutdown.Report | null
}

/** @internal */
export interface Tracker {
  readonly pool: WorkerPool.WorkerPool
  readonly snapshot: (now: number) => Effect.Effect<PoolSnapshot>
}

/** @internal */
export interface TrackOptions {
  readonly windowSeconds: number
  readonly failureLimit: number
  readonly causeChars: number
}

interface Bucket {
  succeeded: number
  failed: number
  latencySum: number
  latencyCount: number
  latencyMax: number
}

// About a century: finite, as the shutdown options require, and never over.
const gentlestGrace = "36500 days"

/** The queued jobs a snapshot lists (the oldest first); `stats.queued` has the count. */
const queuedLimit = 100

const failureKinds: ReadonlySet<JobEvent.Kind> = new Set(["AttemptFailed", "Failed", "TimedOut", "Abandoned"])

/**
 * Subscribes to the pool now (no event after this returns is missed) and follows it for the scope's lifetime.
 *
 * @internal
 */
export const track = (
  pool: WorkerPool.WorkerPool,
  options: TrackOptions
): Effect.Effect<Tracker, never, Scope.Scope> =>
  Effect.gen(function*() {
    const running = new Map<string, { attempt: number; startedAt: number; attemptStartedAt: number }>()
    // Accepted and not started yet, in submission order: bounded by the pool's own queue.
    const queued = new Map<string, number>()
    const failures: Array<Failure> = []
    const buckets = new Map<number, Bucket>()
    let report: Shutdown.Report | null = null

    const bucketAt = (at: number): Bucket => {
      const second = Math.floor(at / 1000)
      let bucket = buckets.get(second)
      if (bucket === undefined) {
        bucket = { succeeded: 0, failed: 0, latencySum: 0, latencyCount: 0, latencyMax: 0 }
        buckets.set(second, bucket)
        // Buckets are created in time order, so the oldest keys come first.
        for (const key of buckets.keys()) {
          if (key > second - options.windowSeconds) break
          buckets.delete(key)
        }
      }
      return bucket
    }

    const onEvent = (event: JobEvent.JobEvent): void => {
      if (event._tag === "Submitted") queued.set(event.jobId, event.submittedAt)
      if (event._tag === "Started") {
        queued.delete(event.jobId)
        const previous = running.get(event.jobId)
        running.set(event.jobId, {
          attempt: event.attempt,
          startedAt: previous?.startedAt ?? event.startedAt ?? event.at,
          attemptStartedAt: event.at
        })
      }
      if (failureKinds.has(event._tag)) {
        // A last attempt's failure is reported twice (AttemptFailed, then Failed): keep the terminal one only.
        const last = failures[failures.length - 1]
        if (
          event._tag === "Failed" && last !== undefined && last.kind === "AttemptFailed" && last.id === event.jobId &&
          last.attempt === event.attempt
        ) failures.pop()
        failures.push({
          id: event.jobId,
          kind: event._tag,
          attempt: event.attempt,
          at: event.at,
          cause: event.cause === undefined ? event._tag : truncate(Cause.pretty(event.cause), options.causeChars)
        })
        if (failures.length > options.failureLimit) failures.splice(0, failures.length - options.failureLimit)
      }
      if (JobEvent.isTerminal(event)) {
        running.delete(event.jobId)
        queued.delete(event.jobId)
        if (event._tag === "Cancelled") return
        const bucket = bucketAt(event.at)
        if (event._tag === "Succeeded") bucket.succeeded++
        else bucket.failed++
        const latency = Math.max(0, event.at - event.submittedAt)
        bucket.latencySum += latency
        bucket.latencyCount++
        bucket.latencyMax = Math.max(bucket.latencyMax, latency)
      } else if (event._tag === "Dropped") {
        bucketAt(event.at).failed++
      }
    }

    const events = yield* WorkerPool.subscribe(pool)
    yield* Stream.runForEach(events, (event) => Effect.sync(() => onEvent(event))).pipe(
      // The stream ends by itself only once the pool's shutdown has finished: asking for the report then
      // returns the finished shutdown's report. The options are the gentlest there are (a later call can only
      // make a running shutdown more forceful, by "cancel" or a grace period already over), so that even a
      // shutdown still running would not be changed by the dashboard.
      Effect.andThen(WorkerPool.stats(pool)),
      Effect.flatMap((stats) =>
        stats.closed ? WorkerPool.shutdown(pool, { mode: "drain", gracePeriod: gentlestGrace }) : Effect.succeed(null)
      ),
      Effect.tap((finished) => Effect.sync(() => (report = finished))),
      Effect.ignore,
      Effect.forkScoped
    )

    const snapshot = (now: number): Effect.Effect<PoolSnapshot> =>
      Effect.map(WorkerPool.stats(pool), (stats) => {
        const endSecond = Math.floor(now / 1000)
        const succeeded: Array<number> = []
        const failed: Array<number> = []
        const latencyAvgMillis: Array<number | null> = []
        const latencyMaxMillis: Array<number | null> = []
        for (let second = endSecond - options.windowSeconds + 1; second <= endSecond; second++) {
          const bucket = buckets.get(second)
          succeeded.push(bucket?.succeeded ?? 0)
          failed.push(bucket?.failed ?? 0)
          latencyAvgMillis.push(
            bucket === undefined || bucket.latencyCount === 0
              ? null
              : Math.round(bucket.latencySum / bucket.latencyCount)
          )
          latencyMaxMillis.push(bucket === undefined || bucket.latencyCount === 0 ? null : bucket.latencyMax)
        }
        return {
          stats,
          runningJobs: Array.from(running, ([id, job]) => ({
            id,
            attempt: job.attempt,
            startedAt: job.startedAt,
            attemptStartedAt: job.attemptStartedAt,
            ageMillis: Math.max(0, now - job.startedAt)
          })),
          queuedJobs: oldestQueued(queued, now),
          failures: failures.slice().reverse(),
          series: {
            end: (endSecond + 1) * 1000,
            stepMillis: 1000,
            succeeded,
            failed,
            latencyAvgMillis,
            latencyMaxMillis
          },
          report
        }
      })

    return { pool, snapshot }
  })

const oldestQueued = (queued: ReadonlyMap<string, number>, now: number): Array<QueuedJob> => {
  const jobs: Array<QueuedJob> = []
  for (const [id, submittedAt] of queued) {
    if (jobs.length === queuedLimit) break
    jobs.push({ id, submittedAt, ageMillis: Math.max(0, now - submittedAt) })
  }
  return jobs
}

const truncate = (text: string, max: number): string => text.length <= max ? text : `${text.slice(0, max)}…`
