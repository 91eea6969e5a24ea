/**
 * The pool core: the pool's state, the boundary every operation goes through, the outbox of notifications, and
 * the one place a job's outcome is recorded.
 *
 * **The boundary.** Every operation (a submission, a cancel, a job's exit, the rate timer, pause/resume/resize,
 * each shutdown step) runs as `this.depth++; try { … } finally { this.leave() }`. Inside, it only changes
 * state, and queues what it owes the outside world (a job's waiters, a waiting submitter's answer, idle
 * waiters, dead letters for a callback) in the outbox. When the outermost operation ends, `settle` runs
 * `dispatch` once and then flushes the outbox. Resuming a waiter runs that fiber's code in place (Effect's
 * resume is synchronous), so user code only ever meets the pool between operations, never halfway through
 * one; an operation it starts from there is a new outermost one, whose notices join the flush already
 * running (the stack stays flat however long the chain). A job that ends still completes its waiters in the
 * same tick: no scheduler hop.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import type * as Job from "../Job.ts"
import type { DeadLetter } from "../Job.ts"
import type * as JobEvent from "../JobEvent.ts"
import type * as Shutdown from "../Shutdown.ts"
import { type AnyExit, Flag, type JobEntry, type Notice } from "./entry.ts"
import { LiveIds } from "./ids.ts"
import { JobQueue, NodeList } from "./jobQueue.ts"
import { Limits } from "./limits.ts"
import { type Counters, Instruments, makeCounters, makeEvent } from "./observe.ts"
import type { ResolvedPoolOptions } from "./options.ts"
import { type DeadLetterStatus, outcomes } from "./outcome.ts"
import { Progress } from "./progress.ts"
import { type Lifecycle, open, type ShutdownState } from "./shutdownState.ts"

/** A submitter waiting for room in a full queue (`"suspend"`): not accepted yet, so it holds no id. */
export class PendingSubmit implements Notice {
  readonly entry: JobEntry
  readonly resume: (effect: Effect.Effect<JobEntry, any>) => void
  answer: Effect.Effect<JobEntry, any> | undefined = undefined
  constructor(entry: JobEntry, resume: (effect: Effect.Effect<JobEntry, any>) => void) {
    this.entry = entry
    this.resume = resume
  }
  notify(): void {
    this.resume(this.answer!)
  }
}

/** @internal */
export abstract class PoolCore {
  readonly name: string
  concurrency: number
  readonly capacity: number
  readonly options: ResolvedPoolOptions
  readonly context: Context.Context<never>
  readonly clock: Clock.Clock
  /** The pool's creation time: job times are kept relative to it. */
  readonly epoch: number

  readonly queue = new JobQueue<JobEntry>()
  readonly runningList = new NodeList<JobEntry>()
  readonly limits: Limits
  readonly pending: Array<PendingSubmit> = []
  readonly ids: LiveIds
  readonly counters: Counters = makeCounters()
  readonly instruments: Instruments
  readonly subscribers = new Set<Queue.Queue<JobEvent.JobEvent, Cause.Done>>()
  readonly deadLetterFibers = new Set<Fiber.Fiber<void>>()
  idleWaiters: Array<Notice> = []
  dispatchPaused = false
  intakePaused = false
  lifecycle: Lifecycle = open

  /** How many operations are open on the stack; the outermost one settles. */
  depth = 0
  /** What the current operations owe the outside world, delivered by `settle`. */
  readonly outbox: Array<Notice> = []
  flushing = false

  constructor(options: ResolvedPoolOptions, context: Context.Context<never>) {
    this.options = options
    this.name = options.name
    this.concurrency = options.concurrency
    this.capacity = options.capacity
    this.context = context
    this.clock = Context.get(context, Clock.Clock)
    this.epoch = this.clock.currentTimeMillisUnsafe()
    this.limits = new Limits(options, this.queue, this.clock, context, () => this.onWake())
    this.ids = new LiveIds(
      options.name,
      () => [...this.runningList.toArray(), ...this.queue.toArray(this.limits.keys.values())]
    )
    this.instruments = new Instruments(options.name, context, this.counters, {
      queued: () => this.queue.size,
      running: () => this.runningList.size,
      waiting: () => this.pending.length,
      concurrency: () => this.concurrency,
      capacity: () => this.capacity
    }, options.durationBoundaries)
  }

  /** Starts queued jobs while workers are free and limits allow; admits waiting submitters to free room. */
  abstract dispatch(): void
  abstract cancelQueued(entry: JobEntry, by: "handle" | "sliding"): void

  /** Shutdown has begun: no job is accepted any more. */
  get closed(): boolean {
    return this.lifecycle._tag !== "Open"
  }

  /** The running or finished shutdown, if any. */
  get shutdownState(): ShutdownState | undefined {
    return this.lifecycle._tag === "Open" ? undefined : this.lifecycle.shutdown
  }

  get isIdle(): boolean {
    return this.runningList.size === 0 && this.queue.size === 0
  }

  // ---- the boundary ----

  /** Ends an operation; the outermost one settles the pool. */
  leave(): void {
    if (--this.depth === 0) this.settle()
  }

  /** Runs `body` as one operation. For the rare operations; the hot ones inline the same three lines. */
  transact(body: () => void): void {
    this.depth++
    try {
      body()
    } finally {
      this.leave()
    }
  }

  /**
   * After the outermost operation: one dispatch (jobs that end synchronously inside it only record their
   * outcome), then the notifications, in the order they were queued. A flush already running (this settle
   * comes from user code resumed by it) takes the new notices on.
   */
  settle(): void {
    // nothing queued and no submitter waiting: nothing to dispatch (the common end of a job that ran in place)
    if (this.queue.size !== 0 || this.pending.length !== 0) {
      this.depth++
      try {
        this.dispatch()
      } finally {
        this.depth--
      }
    }
    if (this.idleWaiters.length > 0 && this.isIdle) {
      const waiters = this.idleWaiters
      this.idleWaiters = []
      for (let i = 0; i < waiters.length; i++) this.outbox.push(waiters[i])
    }
    if (this.flushing || this.outbox.length === 0) return
    this.flushing = true
    const outbox = this.outbox
    try {
      for (let i = 0; i < outbox.length; i++) outbox[i].notify()
    } finally {
      outbox.length = 0
      this.flushing = false
    }
  }

  /** The rate timer's operation: windows that reopened let their jobs come back. */
  onWake(): void {
    this.transact(() => this.limits.reopen())
  }

  // ---- events ----

  emit(kind: JobEvent.Kind, entry: JobEntry, cause?: Cause.Cause<unknown>): void {
    if (this.subscribers.size === 0) return
    const event = makeEvent(kind, this.name, entry, this.clock.currentTimeMillisUnsafe(), cause)
    // an offer never runs a reader in place (Queue schedules the release of takers)
    for (const queue of this.subscribers) Queue.offerUnsafe(queue, event)
  }

  // ---- progress ----

  /** `Job.Info.progress`: kept on the job, sent at most once per interval (see `Progress`). */
  reportProgress(entry: JobEntry, value: unknown): void {
    if (entry.state !== "running") return
    const progress = entry.progressState ??= new Progress()
    progress.last = value
    progress.reported = true
    const now = this.clock.currentTimeMillisUnsafe()
    const wait = progress.sentAt + this.options.progressIntervalMillis - now
    if (wait > 0) {
      // held back: sent when the interval has passed, unless a later report or the job's end sends it first
      if (!progress.held) {
        progress.held = true
        Effect.runForkWith(this.context)(Effect.andThen(
          Effect.sleep(wait),
          Effect.sync(() => {
            if (!progress.held || progress.ended) return
            progress.sentAt = this.clock.currentTimeMillisUnsafe()
            this.sendProgress(entry, progress)
          })
        ))
      }
      return
    }
    progress.sentAt = now
    this.sendProgress(entry, progress)
  }

  sendProgress(entry: JobEntry, progress: Progress): void {
    progress.send()
    if (this.subscribers.size === 0) return
    const event = {
      ...makeEvent("Progress", this.name, entry, this.clock.currentTimeMillisUnsafe()),
      progress: progress.last
    }
    for (const queue of this.subscribers) Queue.offerUnsafe(queue, event)
  }

  // ---- outcomes ----

  /**
   * A job ends: its terminal state (written by `entry.end`, the one writer), then what the outcome table says
   * of its status: the counter, the shutdown report's list, the event, the dead letter; its waiters are
   * queued in the outbox.
   */
  finish(entry: JobEntry, status: Job.TerminalStatus, result: AnyExit | undefined, endedAt?: number): void {
    entry.end(status, result)
    if (entry.options.id !== undefined) this.ids.drop(entry.options.id, entry)
    const outcome = outcomes[status]
    this.counters[outcome.counter]++
    const lifecycle = this.lifecycle
    if (outcome.fate !== undefined && lifecycle._tag !== "Open") lifecycle.shutdown.fates[outcome.fate].push(entry)
    if (entry.startedRel >= 0) {
      this.instruments.observeRun((endedAt ?? this.clock.currentTimeMillisUnsafe()) - this.epoch - entry.startedRel)
    }
    const progress = entry.flags & Flag.HasProgress ? entry.progressState : undefined
    if (progress !== undefined) {
      // the value held back by the interval goes out before the outcome
      if (progress.held) this.sendProgress(entry, progress)
      progress.end()
    }
    if (this.subscribers.size > 0) {
      const cause = status === "failed" && result !== undefined && Exit.isFailure(result) ? result.cause : undefined
      if (cause !== undefined && entry.options.retry === undefined && Cause.hasFails(cause)) {
        this.emit("AttemptFailed", entry, cause)
      }
      this.emit(outcome.event, entry, cause)
    }
    if (
      this.options.deadLetters !== undefined && outcome.deadLetter && result !== undefined && Exit.isFailure(result)
    ) {
      this.deadLetter(entry, status as DeadLetterStatus, result.cause)
    }
    if (entry.waiters !== undefined) this.outbox.push(entry)
  }

  deadLetter(entry: JobEntry, status: DeadLetterStatus, cause: Cause.Cause<unknown>): void {
    const letter: DeadLetter = {
      pool: this.name,
      jobId: entry.id,
      status,
      cause,
      attempts: entry.attemptCount,
      metadata: entry.metadata,
      submittedAt: entry.submittedAt,
      startedAt: entry.startedAt,
      endedAt: this.clock.currentTimeMillisUnsafe()
    }
    const sink = this.options.deadLetters!
    if (typeof sink !== "function") {
      if (!Queue.offerUnsafe(sink, letter)) this.counters.deadLettersDropped++
      return
    }
    // the callback is user code: it runs after the operation, like a waiter
    this.outbox.push({
      notify: () => {
        const fiber = Effect.runForkWith(this.context)(Effect.ignoreCause(sink(letter)))
        if (fiber.pollUnsafe() !== undefined) return
        this.deadLetterFibers.add(fiber)
        fiber.addObserver(() => this.deadLetterFibers.delete(fiber))
      }
    })
  }

  // ---- idle ----

  /** Completes when no job is queued or running. */
  readonly awaitIdle: Effect.Effect<void> = Effect.callback<void>((resume) => {
    if (this.isIdle) return resume(Effect.void)
    const waiter: Notice = { notify: () => resume(Effect.void) }
    this.idleWaiters.push(waiter)
    return Effect.sync(() => {
      const index = this.idleWaiters.indexOf(waiter)
      if (index >= 0) this.idleWaiters.splice(index, 1)
    })
  })

  totals(): Shutdown.Totals {
    const c = this.counters
    return {
      submitted: c.submitted,
      rejected: c.rejected,
      succeeded: c.succeeded,
      failed: c.failed,
      timedOut: c.timedOut,
      interrupted: c.interrupted,
      cancelled: c.cancelled,
      abandoned: c.abandoned,
      retries: c.retries
    }
  }
}
