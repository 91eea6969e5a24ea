/**
 * Shared types and helpers of the benchmark cells: the scenario parameters, the contract every peer
 * implements, and the tracker through which every job proves it ran exactly once.
 */
import { Effect } from "effect"

/** Scenario 1: N trivial jobs, either fire-and-forget (wait for idle) or submit-and-await (collect results). */
export interface ThroughputParams {
  readonly n: number
  readonly concurrency: number
  readonly mode: "fire" | "await"
}

/**
 * Scenario 5: `variant` says which scheduling options the fiberpool pool has and the jobs use (see
 * `schedulingVariants`); everything else as in scenario 1 (bounded queue of 100).
 */
export interface SchedulingParams extends ThroughputParams {
  readonly variant: SchedulingVariant
}

/**
 * - `plain`: no option; `unused`: `aging`, `keyConcurrency`, a non-binding `rateLimit` and `deadLetters`
 *   configured, jobs without options; `priority`: jobs with priorities 0–9 (pseudo-random, fixed seed);
 *   `keys`: jobs round-robin over 16 keys, `keyConcurrency: 2`; `rate`: a `rateLimit` too high to bind;
 *   `events`: a `WorkerPool.subscribe` subscriber reads every event (metrics are always on).
 */
export const schedulingVariants = ["plain", "unused", "priority", "keys", "rate", "events"] as const

export type SchedulingVariant = (typeof schedulingVariants)[number]

/** Scenario 2: N jobs that each sleep `sleepMs` (a timer), submit-and-await. */
export interface IoParams {
  readonly n: number
  readonly concurrency: number
  readonly sleepMs: number
}

/** Scenario 3: N jobs queued behind one blocked job (concurrency 1, unbounded queue). */
export interface MemoryParams {
  readonly n: number
  readonly handles: boolean
}

/** Scenario 4: `jobs` in-flight jobs of `jobMs`, then a graceful or a forced shutdown. */
export interface ShutdownParams {
  readonly jobs: number
  readonly jobMs: number
  readonly mode: "graceful" | "forced"
}

/** What a shutdown cell observed. `finalized` is undefined where the peer cannot run finalizers. */
export interface ShutdownOutcome {
  /** From the call that starts the shutdown until it reports done. */
  readonly shutdownMs: number
  /** From the first submission until the shutdown reports done. */
  readonly totalMs: number
  readonly completed: number
  readonly finalized: number | undefined
}

/**
 * Counts every job run: `ran[i]` must end at exactly 1 and `acc` at the sum of all indices, so a peer that
 * skips, repeats or drops a job fails the cell instead of looking fast.
 */
export class Tracker {
  readonly ran: Uint8Array
  acc = 0
  started = 0
  finalized = 0
  readonly n: number
  constructor(n: number) {
    this.n = n
    this.ran = new Uint8Array(n)
  }
  /** The body of every trivial job: mark it run and return its index. */
  hit(i: number): number {
    this.ran[i]++
    this.acc += i
    return i
  }
  get expectedSum(): number {
    return (this.n * (this.n - 1)) / 2
  }
  /** Throws unless every job ran exactly once (and, when given, the awaited results add up). */
  verify(returnedSum: number | undefined): void {
    const { ran, n } = this
    for (let i = 0; i < n; i++) {
      if (ran[i] !== 1) throw new Error(`job ${i} ran ${ran[i]} times`)
    }
    if (this.acc !== this.expectedSum) throw new Error(`side-effect sum ${this.acc} !== ${this.expectedSum}`)
    if (returnedSum !== undefined && returnedSum !== this.expectedSum) {
      throw new Error(`sum of results ${returnedSum} !== ${this.expectedSum}`)
    }
  }
}

/** The operations a peer supports; a missing one means the scenario is not meaningful for that peer. */
export interface Peer {
  /** Runs the N jobs; returns the sum of the awaited results in "await" mode, undefined in "fire" mode. */
  readonly throughput?: (params: ThroughputParams, tracker: Tracker) => Promise<number | undefined>
  /** Runs the N sleeping jobs; returns the sum of their results. */
  readonly io?: (params: IoParams, tracker: Tracker) => Promise<number>
  /**
   * Queues N jobs behind a blocked one, calls `measure` while they are all queued, then releases the
   * blocker and waits until every job ran.
   */
  readonly memory?: (params: MemoryParams, tracker: Tracker, measure: () => void) => Promise<void>
  readonly shutdown?: (params: ShutdownParams, tracker: Tracker) => Promise<ShutdownOutcome>
  /** Like `throughput`, but every job awaits a promise (see `awaited`) before it marks itself. */
  readonly promise?: (params: ThroughputParams, tracker: Tracker) => Promise<number | undefined>
  /** Like `throughput`, with the scheduling options of `params.variant`. */
  readonly scheduling?: (params: SchedulingParams, tracker: Tracker) => Promise<number | undefined>
}

/**
 * Scenario 4's job for the Effect peers: it counts its start, sleeps `jobMs`, marks itself, and counts its
 * finalizer however it ends (completed or interrupted).
 */
export const sleepingJob = (tracker: Tracker, i: number, jobMs: number): Effect.Effect<number> =>
  Effect.suspend(() => {
    tracker.started++
    return Effect.map(Effect.sleep(jobMs), () => tracker.hit(i))
  }).pipe(Effect.ensuring(Effect.sync(() => tracker.finalized++)))

/** How many jobs marked themselves (see `Tracker.hit`). */
export const completedJobs = (tracker: Tracker): number => tracker.ran.reduce((sum, ran) => sum + ran, 0)

/**
 * The body of a job that really waits on a promise: a promise that settles on a later microtask, so the job
 * (fiber or async function) suspends and is resumed once per job.
 */
export const awaited = (tracker: Tracker, i: number): Promise<number> =>
  Promise.resolve(i).then((index) => tracker.hit(index))

/** A small deterministic PRNG (mulberry32), so every run and every process sees the same priorities. */
export const prng = (seed: number): () => number => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/** A promise-returning sleep for the promise-based peers. */
export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** A promise and the function that resolves it, for blocking a job until the measurement is done. */
export const gate = (): { readonly promise: Promise<void>; readonly open: () => void } => {
  let open!: () => void
  const promise = new Promise<void>((resolve) => {
    open = resolve
  })
  return { promise, open }
}

/** The time in milliseconds, monotonic. */
export const now = (): number => performance.now()
