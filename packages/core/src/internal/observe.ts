import type * as Cause from "effect/Cause"
import * as Context from "effect/Context"
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
  deadLettersDropped: number
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
  retries: 0,
  deadLettersDropped: 0
})

/** @internal */
export interface Gauges {
  readonly queued: () => number
  readonly running: () => number
  readonly waiting: () => number
  readonly concurrency: () => number
  readonly capacity: () => number
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
  /** Adds another histogram of the same boundaries. */
  add(other: Histogram): void {
    for (let i = 0; i < this.counts.length; i++) this.counts[i] += other.counts[i]
    this.count += other.count
    this.sum += other.sum
    if (other.min < this.min) this.min = other.min
    if (other.max > this.max) this.max = other.max
  }
}

const histogramState = (histograms: ReadonlyArray<Histogram>): Metric.HistogramState => {
  const total = new Histogram(histograms[0].boundaries)
  for (const histogram of histograms) total.add(histogram)
  let cumulative = 0
  const buckets: Array<[number, number]> = []
  for (let i = 0; i < total.boundaries.length; i++) {
    cumulative += total.counts[i]
    buckets.push([total.boundaries[i], cumulative])
  }
  return { buckets, count: total.count, min: total.min, max: total.max, sum: total.sum }
}

type Registry = Map<string, unknown>

/**
 * The series of one pool name in one registry, shared by every live pool of that name: a scrape shows their
 * sum. A pool that closes leaves its counts (in `retired`) while another pool of the name lives, so counters
 * never go back; the series are removed when the last pool of the name closes.
 */
class SeriesGroup {
  readonly members = new Set<Instruments>()
  readonly retired: Counters = makeCounters()
  readonly retiredWait: Histogram
  readonly retiredRun: Histogram
  readonly registrations: Array<Metric.Registration> = []
  readonly boundaries: ReadonlyArray<number>
  constructor(boundaries: ReadonlyArray<number>) {
    this.boundaries = boundaries
    this.retiredWait = new Histogram(boundaries)
    this.retiredRun = new Histogram(boundaries)
  }
  count(field: keyof Counters): number {
    let total = this.retired[field]
    for (const member of this.members) total += member.counters[field]
    return total
  }
  gauge(field: keyof Gauges): number {
    let total = 0
    for (const member of this.members) total += member.gauges[field]()
    return total
  }
  histogram(which: "wait" | "run"): Metric.HistogramState {
    const all = [which === "wait" ? this.retiredWait : this.retiredRun]
    for (const member of this.members) all.push(member[which])
    return histogramState(all)
  }
}

const groups = new WeakMap<Registry, Map<string, SeriesGroup>>()

const groupsOf = (context: Context.Context<never>): Map<string, SeriesGroup> => {
  const registry = Context.get(context, Metric.MetricRegistry) as Registry
  let byName = groups.get(registry)
  if (byName === undefined) {
    byName = new Map()
    groups.set(registry, byName)
  }
  return byName
}

const sameBoundaries = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): boolean =>
  a.length === b.length && a.every((bound, i) => bound === b[i])

/**
 * The histogram boundaries of a live pool of this name when they differ from `boundaries`: such pools cannot
 * share a series.
 * @internal
 */
export const conflictingBoundaries = (
  context: Context.Context<never>,
  name: string,
  boundaries: ReadonlyArray<number>
): ReadonlyArray<number> | undefined => {
  const group = groupsOf(context).get(name)
  return group === undefined || sameBoundaries(group.boundaries, boundaries) ? undefined : group.boundaries
}

const register = (group: SeriesGroup, name: string, context: Context.Context<never>): void => {
  const attributes = { pool: name }
  const reading = <S>(metric: Metric.Metric<any, S>, get: () => S, extra?: Record<string, string>) => {
    group.registrations.push(
      Metric.registerUnsafe(Metric.withAttributes(metric, extra ? { ...attributes, ...extra } : attributes), context, {
        get,
        update: () => {},
        modify: () => {}
      })
    )
  }
  const counter = (metric: Metric.Counter<number>, field: keyof Counters, extra?: Record<string, string>) =>
    reading(metric, () => ({ count: group.count(field), incremental: false }), extra)
  const gauge = (metric: Metric.Gauge<number>, field: keyof Gauges) =>
    reading(metric, () => ({ value: group.gauge(field) }))
  counter(PoolMetrics.submitted, "submitted")
  counter(PoolMetrics.rejected, "rejectedClosed", { reason: "closed" })
  counter(PoolMetrics.rejected, "rejectedQueueFull", { reason: "queue_full" })
  counter(PoolMetrics.rejected, "rejectedDuplicateId", { reason: "duplicate_id" })
  counter(PoolMetrics.rejected, "rejectedInvalidOptions", { reason: "invalid_options" })
  counter(PoolMetrics.rejected, "dropped", { reason: "dropped" })
  counter(PoolMetrics.succeeded, "succeeded")
  counter(PoolMetrics.failed, "failed")
  counter(PoolMetrics.timedOut, "timedOut")
  counter(PoolMetrics.cancelled, "cancelled")
  counter(PoolMetrics.interrupted, "interrupted")
  counter(PoolMetrics.abandoned, "abandoned")
  counter(PoolMetrics.retries, "retries")
  counter(PoolMetrics.deadLettersDropped, "deadLettersDropped")
  gauge(PoolMetrics.queued, "queued")
  gauge(PoolMetrics.running, "running")
  gauge(PoolMetrics.waiting, "waiting")
  gauge(PoolMetrics.concurrency, "concurrency")
  gauge(PoolMetrics.capacity, "capacity")
  reading(PoolMetrics.waitSeconds, () => group.histogram("wait"))
  reading(PoolMetrics.runSeconds, () => group.histogram("run"))
}

/**
 * The pool's metrics in one registry. Counters and gauges are registered with read hooks over the pool's own
 * counters, and the histograms over the pool's own histograms, so a job costs no metric registry access.
 * Live pools of one name share their series (see `SeriesGroup`); `close` takes the pool out.
 * @internal
 */
export class Instruments {
  readonly wait: Histogram
  readonly run: Histogram
  readonly counters: Counters
  readonly gauges: Gauges
  readonly group: SeriesGroup
  readonly name: string
  readonly byName: Map<string, SeriesGroup>
  constructor(
    name: string,
    context: Context.Context<never>,
    counters: Counters,
    gauges: Gauges,
    boundaries: ReadonlyArray<number>
  ) {
    this.name = name
    this.counters = counters
    this.gauges = gauges
    this.wait = new Histogram(boundaries)
    this.run = new Histogram(boundaries)
    this.byName = groupsOf(context)
    let group = this.byName.get(name)
    if (group === undefined) {
      group = new SeriesGroup(boundaries)
      this.byName.set(name, group)
      register(group, name, context)
    }
    group.members.add(this)
    this.group = group
  }
  observeWait(millis: number): void {
    this.wait.record(millis / 1000)
  }
  observeRun(millis: number): void {
    this.run.record(millis / 1000)
  }
  /** The pool has closed: its counts stay in the series while a pool of its name lives, then the series go. */
  close(): void {
    const group = this.group
    if (!group.members.delete(this)) return
    if (group.members.size === 0) {
      for (const registration of group.registrations) registration.remove()
      if (this.byName.get(this.name) === group) this.byName.delete(this.name)
      return
    }
    for (const field of Object.keys(this.counters) as Array<keyof Counters>) {
      group.retired[field] += this.counters[field]
    }
    group.retiredWait.add(this.wait)
    group.retiredRun.add(this.run)
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
