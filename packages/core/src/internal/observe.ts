import type * as Cause from "effect/Cause"
import type * as Context from "effect/Context"
import * as Metric from "effect/Metric"
import type * as JobEvent from "../JobEvent.ts"
import * as PoolMetrics from "../PoolMetrics.ts"

/** @internal */
export interface Counters {
  submitted: number
  rejected: number
  rejectedClosed: number
  rejectedQueueFull: number
  rejectedDuplicateId: number
  rejectedInvalidOptions: number
  dropped: number
  succeeded: number
  failed: number
  timedOut: number
  interrupted: number
  cancelled: number
  abandoned: number
  retries: number
}

/** @internal */
export const makeCounters = (): Counters => ({
  submitted: 0,
  rejected: 0,
  rejectedClosed: 0,
  rejectedQueueFull: 0,
  rejectedDuplicateId: 0,
  rejectedInvalidOptions: 0,
  dropped: 0,
  succeeded: 0,
  failed: 0,
  timedOut: 0,
  interrupted: 0,
  cancelled: 0,
  abandoned: 0,
  retries: 0
})

/** @internal */
export interface Gauges {
  readonly queued: () => number
  readonly running: () => number
}

/**
 * A histogram kept by the pool itself and read by the registry through a hook: recording costs a bucket
 * search, not a registry lookup per job.
 * @internal
 */
export class Histogram {
  readonly boundaries: ReadonlyArray<number>
  readonly counts: Array<number>
  count = 0
  sum = 0
  min = Number.POSITIVE_INFINITY
  max = Number.NEGATIVE_INFINITY
  constructor(boundaries: ReadonlyArray<number>) {
    this.boundaries = boundaries
    this.counts = new Array(boundaries.length).fill(0)
  }
  record(value: number): void {
    const boundaries = this.boundaries
    let lo = 0
    let hi = boundaries.length
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if (boundaries[mid] < value) lo = mid + 1
      else hi = mid
    }
    if (lo < boundaries.length) this.counts[lo]++
    this.count++
    this.sum += value
    if (value < this.min) this.min = value
    if (value > this.max) this.max = value
  }
  state(): Metric.HistogramState {
    let cumulative = 0
    const buckets: Array<[number, number]> = []
    for (let i = 0; i < this.boundaries.length; i++) {
      cumulative += this.counts[i]
      buckets.push([this.boundaries[i], cumulative])
    }
    return { buckets, count: this.count, min: this.min, max: this.max, sum: this.sum }
  }
}

/**
 * The pool's metrics in one registry. Counters and gauges are registered with read hooks over the pool's own
 * counters, and the histograms over the pool's own histograms, so a job costs no metric registry access.
 * @internal
 */
export class Instruments {
  readonly wait = new Histogram(PoolMetrics.durationBoundaries)
  readonly run = new Histogram(PoolMetrics.durationBoundaries)
  constructor(name: string, context: Context.Context<never>, counters: Counters, gauges: Gauges) {
    const attributes = { pool: name }
    const reading = <S>(metric: Metric.Metric<any, S>, get: () => S, extra?: Record<string, string>) => {
      Metric.registerUnsafe(Metric.withAttributes(metric, extra ? { ...attributes, ...extra } : attributes), context, {
        get,
        update: () => {},
        modify: () => {}
      })
    }
    const counter = (metric: Metric.Counter<number>, read: () => number, extra?: Record<string, string>) =>
      reading(metric, () => ({ count: read(), incremental: false }), extra)
    counter(PoolMetrics.submitted, () => counters.submitted)
    counter(PoolMetrics.rejected, () => counters.rejectedClosed, { reason: "closed" })
    counter(PoolMetrics.rejected, () => counters.rejectedQueueFull, { reason: "queue_full" })
    counter(PoolMetrics.rejected, () => counters.rejectedDuplicateId, { reason: "duplicate_id" })
    counter(PoolMetrics.rejected, () => counters.rejectedInvalidOptions, { reason: "invalid_options" })
    counter(PoolMetrics.rejected, () => counters.dropped, { reason: "dropped" })
    counter(PoolMetrics.succeeded, () => counters.succeeded)
    counter(PoolMetrics.failed, () => counters.failed)
    counter(PoolMetrics.timedOut, () => counters.timedOut)
    counter(PoolMetrics.cancelled, () => counters.cancelled)
    counter(PoolMetrics.interrupted, () => counters.interrupted)
    counter(PoolMetrics.abandoned, () => counters.abandoned)
    counter(PoolMetrics.retries, () => counters.retries)
    reading(PoolMetrics.queued, () => ({ value: gauges.queued() }))
    reading(PoolMetrics.running, () => ({ value: gauges.running() }))
    reading(PoolMetrics.waitSeconds, () => this.wait.state())
    reading(PoolMetrics.runSeconds, () => this.run.state())
  }
  observeWait(millis: number): void {
    this.wait.record(millis / 1000)
  }
  observeRun(millis: number): void {
    this.run.record(millis / 1000)
  }
}

/** @internal */
export interface EventSource {
  readonly id: string
  readonly attemptCount: number
  readonly submittedAt: number
  readonly startedAt: number | undefined
  readonly metadata: Readonly<Record<string, unknown>> | undefined
}

/** @internal */
export const makeEvent = (
  kind: JobEvent.Kind,
  pool: string,
  source: EventSource,
  at: number,
  cause?: Cause.Cause<unknown>
): JobEvent.JobEvent => ({
  _tag: kind,
  pool,
  jobId: source.id,
  attempt: source.attemptCount,
  at,
  submittedAt: source.submittedAt,
  startedAt: source.startedAt,
  metadata: source.metadata,
  cause
})
