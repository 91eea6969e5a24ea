/**
 * A job inside the pool and its handle (one object per job), the shared error reasons of job outcomes, and
 * the resumption of a job's waiters.
 */
import * as Cause from "effect/Cause"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Option from "effect/Option"
import type * as Stream from "effect/Stream"
import type * as Job from "../Job.ts"
import { JobCancelled, JobError, JobInterrupted, PoolClosed } from "../PoolError.ts"
import type { Where } from "./jobQueue.ts"
import type { ResolvedJobOptions } from "./options.ts"
import { Progress, updates } from "./progress.ts"

/** What a job entry needs of its pool: its name (for generated ids) and the cancellation of a queued job. */
export interface EntryOwner {
  readonly name: string
  /** The pool's creation time on its Clock: job times are kept relative to it (see `JobEntry.submittedRel`). */
  readonly epoch: number
  cancelQueued(entry: JobEntry, by: "handle"): void
}

/**
 * Something the pool owes the outside world once an operation has finished changing its state: a job's waiters
 * to resume, a waiting submitter's answer, an idle waiter. See `PoolCore.settle`.
 * @internal
 */
export interface Notice {
  notify(): void
}

/**
 * Builds an error without capturing a stack trace. Errors that describe a job's outcome or a rejected submission
 * would only show pool internals, and capturing a stack cost ~4 µs each (two per interrupted job).
 * @internal
 */
export const withoutStack = <A>(make: () => A): A => {
  // `stackTraceLimit` is a V8 extension: typed locally so core needs no runtime's type definitions.
  const errorClass = Error as ErrorConstructor & { stackTraceLimit: number | undefined }
  const limit = errorClass.stackTraceLimit
  errorClass.stackTraceLimit = 0
  const value = make()
  errorClass.stackTraceLimit = limit
  return value
}

/** Reasons without per-job fields are shared. @internal */
export const reasons: {
  readonly closed: PoolClosed
  readonly interrupted: JobInterrupted
  readonly cancelled: Record<"handle" | "sliding" | "shutdown", JobCancelled>
} = withoutStack(() => ({
  closed: new PoolClosed(),
  interrupted: new JobInterrupted(),
  cancelled: {
    handle: new JobCancelled({ by: "handle" }),
    sliding: new JobCancelled({ by: "sliding" }),
    shutdown: new JobCancelled({ by: "shutdown" })
  }
}))

/** @internal */
export const jobFailure = (jobId: string, reason: JobError["reason"]): Exit.Exit<never, JobError> =>
  Exit.fail(withoutStack(() => new JobError({ jobId, reason })))

/** @internal */
export const JobTypeId = "~@fiberpool/core/Job/JobHandle" as const

/** @internal */
export type AnyExit = Exit.Exit<any, any>
/** @internal */
export type Waiter = (exit: AnyExit) => void

/** @internal */
export const Flag = {
  TimedOut: 1,
  Traced: 2,
  CancelRequested: 4,
  /** The job has a `Progress` (in `progressStates`). */
  HasProgress: 8,
  /** Where a queued job waits: two bits from this one. */
  WhereShift: 4,
  /** The attempt count is kept in the bits from this one up. */
  AttemptShift: 6
} as const

/**
 * A job's state: `"waiting"` while its submitter waits for room (not accepted yet, no handle given out), then
 * the public `Job.Status`.
 * @internal
 */
export type EntryStatus = "waiting" | Job.Status

/**
 * Whether a job has ended: every state but these three is a terminal status (a key of the outcome table); three
 * comparisons rather than a lookup in the table, as `settled` runs on every await.
 */
const hasEnded = (state: EntryStatus): state is Job.TerminalStatus =>
  state !== "waiting" && state !== "queued" && state !== "running"

/** The progress of the jobs that have one (see `JobEntry.progressState`). */
const progressStates = new WeakMap<JobEntry, Progress>()

/**
 * A job inside the pool, and its handle. One object per job: it is a node of the queue (or of the running
 * list), holds the job's program until it starts, and then its result.
 */
export class JobEntry<A = any, E = any> implements Job.JobHandle<A, E>, Notice {
  declare readonly [JobTypeId]: typeof JobTypeId
  /** The one field of a job's lifecycle; terminal values are written by `end` only. */
  state: EntryStatus = "waiting"
  /**
   * The job's program until it starts, nothing while it runs, its result once it has ended (undefined for a
   * result built when first read, see `settled`): one field for what is never held at the same time.
   */
  body: Effect.Effect<A, E, any> | Exit.Exit<A, E | JobError> | undefined
  /** The submitter's context until the job starts, then its fiber while it runs (see `fiber`). */
  run: Context.Context<never> | Fiber.Fiber<any, any> | undefined
  waiters: Waiter | Array<Waiter> | undefined = undefined
  prev: JobEntry | undefined = undefined
  next: JobEntry | undefined = undefined
  score = 0
  seq = 0
  heapIndex = -1
  /**
   * `Flag` bits, then where the job waits (`Where`, two bits), then the number of attempts started: one field
   * for three (see `where`, `attemptCount`).
   */
  flags = 0
  /**
   * When the job was submitted and started, in milliseconds since the pool's `epoch`: small integers that V8
   * keeps inside the object (an absolute epoch time would be a separate heap number per job, 16 bytes).
   * `startedRel` is -1 until the job starts.
   */
  submittedRel = 0
  startedRel = -1
  readonly pool: EntryOwner
  readonly options: ResolvedJobOptions
  constructor(
    pool: EntryOwner,
    effect: Effect.Effect<A, E, any>,
    context: Context.Context<never>,
    options: ResolvedJobOptions
  ) {
    this.pool = pool
    this.body = effect
    this.run = context
    this.options = options
  }
  /** The job's fiber while it runs; unset while its first synchronous step runs inside `start`. */
  get fiber(): Fiber.Fiber<any, any> | undefined {
    return this.state === "running" ? this.run as Fiber.Fiber<any, any> | undefined : undefined
  }
  /**
   * Made by the first progress report, or the first reader of `progressUpdates`. Few jobs have one: it is kept
   * beside the entry (a flag says whether there is one), not in a field every job would pay for.
   */
  get progressState(): Progress | undefined {
    return this.flags & Flag.HasProgress ? progressStates.get(this) : undefined
  }
  set progressState(progress: Progress) {
    progressStates.set(this, progress)
    this.flags |= Flag.HasProgress
  }
  /** Where a queued job waits (its place in the queue, see `JobQueue`). */
  get where(): Where {
    return ((this.flags >>> Flag.WhereShift) & 3) as Where
  }
  set where(where: Where) {
    this.flags = (this.flags & ~(3 << Flag.WhereShift)) | (where << Flag.WhereShift)
  }
  /** How many attempts have started (the bits above the flags and the place). */
  get attemptCount(): number {
    return this.flags >>> Flag.AttemptShift
  }
  /** Counts a new attempt; returns its number. */
  startAttempt(): number {
    this.flags += 1 << Flag.AttemptShift
    return this.flags >>> Flag.AttemptShift
  }
  get submittedAt(): number {
    return this.pool.epoch + this.submittedRel
  }
  get startedAt(): number | undefined {
    return this.startedRel < 0 ? undefined : this.pool.epoch + this.startedRel
  }
  /** The custom id, or the generated one, made each time it is asked for: queued jobs hold no id string. */
  get id(): string {
    return this.options.id ?? `${this.pool.name}-${this.seq}`
  }
  get key(): string | undefined {
    return this.options.key
  }
  get priority(): number {
    return this.options.priority
  }
  get metadata() {
    return this.options.metadata
  }
  /**
   * The job's result once it has ended. A job cancelled in bulk at shutdown, or interrupted, gets its result
   * when first read: building a `JobError` per job made a shutdown's cost grow with the queue (2.4 µs per job).
   */
  settled(): Exit.Exit<A, E | JobError> | undefined {
    const state = this.state
    if (!hasEnded(state)) return undefined
    if (this.body === undefined) {
      // built when first read: a shutdown that interrupts or cancels many jobs builds no error nobody reads
      // (a `JobError` costs a few microseconds, more before the JIT has warmed up)
      if (state === "cancelled") this.body = jobFailure(this.id, reasons.cancelled.shutdown)
      else if (state === "interrupted") this.body = jobFailure(this.id, reasons.interrupted)
    }
    return this.body as Exit.Exit<A, E | JobError> | undefined
  }
  get exit(): Effect.Effect<Exit.Exit<A, E | JobError>> {
    return Effect.callback<Exit.Exit<A, E | JobError>>((resume) => {
      const result = this.settled()
      if (result !== undefined) return resume(Effect.succeed(result))
      const waiter: Waiter = (exit) => resume(Effect.succeed(exit))
      this.addWaiter(waiter)
      return Effect.sync(() => this.removeWaiter(waiter))
    })
  }
  get await(): Effect.Effect<A, E | JobError> {
    const result = this.settled()
    if (result !== undefined) return result
    return Effect.callback<A, E | JobError>((resume) => {
      const result = this.settled()
      if (result !== undefined) return resume(result)
      this.addWaiter(resume)
      return Effect.sync(() => this.removeWaiter(resume))
    })
  }
  get cancel(): Effect.Effect<void> {
    return Effect.suspend(() => {
      switch (this.state) {
        case "queued": {
          this.pool.cancelQueued(this, "handle")
          return Effect.void
        }
        case "running": {
          // the fiber is unset only while the job's first synchronous step runs inside `start`
          if (this.fiber !== undefined) this.fiber.interruptUnsafe()
          else this.flags |= Flag.CancelRequested
          return Effect.asVoid(this.exit)
        }
        default:
          return Effect.void
      }
    })
  }
  get status(): Effect.Effect<Job.Status> {
    return Effect.sync(() => (this.state === "waiting" ? "queued" : this.state))
  }
  get attempts(): Effect.Effect<number> {
    return Effect.sync(() => this.attemptCount)
  }
  get progress(): Effect.Effect<Option.Option<unknown>> {
    return Effect.sync(() => this.progressState?.value ?? Option.none())
  }
  get progressUpdates(): Stream.Stream<unknown> {
    return updates(() => {
      let progress = this.progressState
      if (progress === undefined) {
        this.progressState = progress = new Progress()
        // a job that ended without reporting: nothing will come
        if (hasEnded(this.state)) progress.ended = true
      }
      return progress
    })
  }
  /**
   * The one writer of a job's terminal state. `result` is undefined for jobs cancelled in bulk at shutdown
   * and interrupted jobs (built when first read, see `settled`).
   */
  end(status: Job.TerminalStatus, result: Exit.Exit<A, E | JobError> | undefined): void {
    this.state = status
    this.body = result
    this.run = undefined
  }
  /** Resumes the job's waiters with its result (queued in the pool's outbox when the job ended). */
  notify(): void {
    const waiters = this.waiters
    if (waiters === undefined) return
    this.waiters = undefined
    const result = this.settled()!
    if (typeof waiters === "function") waiters(result)
    else for (let i = 0; i < waiters.length; i++) waiters[i](result)
  }
  addWaiter(waiter: Waiter): void {
    if (this.waiters === undefined) this.waiters = waiter
    else if (typeof this.waiters === "function") this.waiters = [this.waiters, waiter]
    else this.waiters.push(waiter)
  }
  removeWaiter(waiter: Waiter): void {
    if (this.waiters === waiter) this.waiters = undefined
    else if (Array.isArray(this.waiters)) {
      const index = this.waiters.indexOf(waiter)
      if (index >= 0) this.waiters.splice(index, 1)
    }
  }
}

Object.defineProperty(JobEntry.prototype, JobTypeId, { value: JobTypeId })

/**
 * A time relative to the pool's epoch, as V8 stores it inside the object: the difference of two clock readings
 * is a heap number even when it is a whole number, and `| 0` makes it a small integer (when it is one: within
 * about 12 days of the pool's start, and whole; otherwise it stays as it is, and is only less compact).
 * @internal
 */
export const relative = (at: number, epoch: number): number => {
  const rel = at - epoch
  return rel === (rel | 0) && rel < 0x40000000 ? rel | 0 : rel
}

/**
 * How a job that ran ends, decided from its exit alone (pure): a timeout that fired wins, then success, then an
 * interruption without a failure, else a failure (typed error or defect).
 * @internal
 */
export const outcomeOf = (entry: JobEntry, exit: AnyExit): "succeeded" | "failed" | "timedOut" | "interrupted" => {
  if (entry.flags & Flag.TimedOut) return "timedOut"
  if (exit._tag === "Success") return "succeeded"
  return Cause.hasInterruptsOnly(exit.cause) ? "interrupted" : "failed"
}
