import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
import * as Queue from "effect/Queue"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import type * as Job from "../Job.ts"
import type { DeadLetter } from "../Job.ts"
import type * as JobEvent from "../JobEvent.ts"
import {
  DuplicateJobId,
  JobAbandoned,
  JobDropped,
  JobTimedOut,
  PoolClosed,
  PoolError,
  QueueFull
} from "../PoolError.ts"
import type * as Shutdown from "../Shutdown.ts"
import {
  type AnyExit,
  Flag,
  JobEntry,
  jobFailure,
  outcomeOf,
  reasons,
  resumeWaiters,
  State,
  withoutStack
} from "./entry.ts"
import { LiveIds } from "./ids.ts"
import { JobQueue, KeyState, NodeList, SlidingLog, Where } from "./jobQueue.ts"
import { type Counters, Instruments, makeCounters, makeEvent } from "./observe.ts"
import type { ResolvedJobOptions, ResolvedPoolOptions, ResolvedShutdown } from "./options.ts"
import { type DeadLetterStatus, outcomes } from "./outcome.ts"
import { emptyFates, fatesReport, type Lifecycle, open, type ShutdownState } from "./shutdownState.ts"

/** @internal */
export const TypeId = "~@fiberpool/core/WorkerPool" as const

/** The interrupt bound of a forced shutdown, so that a forced process exit can follow within a second. */
const forcedInterruptTimeoutMillis = 500

interface PendingSubmit {
  readonly entry: JobEntry
  readonly resume: (effect: Effect.Effect<JobEntry, PoolError>) => void
}

/** @internal */
export class PoolImpl {
  declare readonly [TypeId]: typeof TypeId
  declare readonly pipe: Pipeable["pipe"]
  readonly name: string
  concurrency: number
  readonly capacity: number
  readonly options: ResolvedPoolOptions
  readonly context: Context.Context<never>
  readonly clock: Clock.Clock

  readonly queue = new JobQueue<JobEntry>()
  readonly runningList = new NodeList<JobEntry>()
  readonly keys = new Map<string, KeyState<JobEntry>>()
  readonly limiter: SlidingLog | undefined
  /** Keys whose jobs are parked by their rate limit, to unpark when their window reopens. */
  readonly rateBlockedKeys = new Set<KeyState<JobEntry>>()
  /** Unused keys kept only for their rate window, forgotten once it has passed. */
  readonly lingeringKeys = new Set<KeyState<JobEntry>>()
  dispatchPaused = false
  intakePaused = false
  wakeAt = Number.POSITIVE_INFINITY
  wakeFiber: Fiber.Fiber<void> | undefined = undefined
  readonly deadLetterFibers = new Set<Fiber.Fiber<void>>()
  readonly pending: Array<PendingSubmit> = []
  readonly ids: LiveIds
  readonly counters: Counters = makeCounters()
  readonly instruments: Instruments
  readonly subscribers = new Set<Queue.Queue<JobEvent.JobEvent, Cause.Done>>()
  idleWaiters: Array<() => void> = []
  lifecycle: Lifecycle = open
  dispatching = false
  /** Shutdown has begun: no job is accepted any more. */
  get closed(): boolean {
    return this.lifecycle._tag !== "Open"
  }
  /** The running or finished shutdown, if any. */
  get shutdownState(): ShutdownState | undefined {
    return this.lifecycle._tag === "Open" ? undefined : this.lifecycle.shutdown
  }

  constructor(options: ResolvedPoolOptions, context: Context.Context<never>) {
    this.options = options
    this.name = options.name
    this.concurrency = options.concurrency
    this.capacity = options.capacity
    this.context = context
    this.clock = Context.get(context, Clock.Clock)
    this.limiter = options.rateLimit === undefined
      ? undefined
      : new SlidingLog(options.rateLimit.limit, options.rateLimit.intervalMillis)
    this.ids = new LiveIds(
      options.name,
      () => [...this.runningList.toArray(), ...this.queue.toArray(this.keys.values())]
    )
    this.instruments = new Instruments(options.name, context, this.counters, {
      queued: () => this.queue.size,
      running: () => this.runningList.size,
      waiting: () => this.pending.length,
      concurrency: () => this.concurrency,
      capacity: () => this.capacity
    }, options.durationBoundaries)
  }

  // ---- events ----

  emit(kind: JobEvent.Kind, entry: JobEntry, cause?: Cause.Cause<unknown>): void {
    if (this.subscribers.size === 0) return
    const event = makeEvent(kind, this.name, entry, this.clock.currentTimeMillisUnsafe(), cause)
    for (const queue of this.subscribers) Queue.offerUnsafe(queue, event)
  }

  /** Registers a subscriber now; its stream ends once shutdown has finished and it has read everything. */
  subscribe(queue: Queue.Queue<JobEvent.JobEvent, Cause.Done>): () => void {
    if (this.lifecycle._tag === "Closed") {
      Queue.endUnsafe(queue)
      return () => {}
    }
    this.subscribers.add(queue)
    return () => {
      this.subscribers.delete(queue)
    }
  }

  // ---- submit ----

  submit(
    effect: Effect.Effect<any, any, any>,
    options: ResolvedJobOptions,
    context: Context.Context<never>
  ): Effect.Effect<JobEntry, PoolError> {
    if (this.closed) return this.reject(reasons.closed)
    // by construction, and checked against custom ids of the same form in the rare case there are any
    const id = options.id
    if (id !== undefined) {
      if (this.ids.isLive(id)) {
        return this.reject(withoutStack(() => new DuplicateJobId({ jobId: id })))
      }
    }
    const entry = new JobEntry(this, effect, context, options)
    entry.submittedAt = this.clock.currentTimeMillisUnsafe()
    this.ids.number(entry)
    if (!this.queue.ordered && (entry.key !== undefined || entry.priority !== 0)) {
      // jobs queued before the switch get their score now, so they keep their place
      for (let queued = this.queue.list.head; queued !== undefined; queued = queued.next) this.score(queued)
      this.queue.makeOrdered()
    }
    if (this.queue.ordered) this.score(entry)
    if (
      this.runningList.size < this.concurrency && this.queue.size === 0 &&
      (this.pending.length === 0) &&
      !this.intakePaused && this.canStartNow(entry, entry.submittedAt)
    ) {
      this.accept(entry)
      this.start(entry, entry.submittedAt)
      return Exit.succeed(entry)
    }
    if (this.queue.size < this.capacity && !this.intakePaused) {
      this.accept(entry)
      this.enqueue(entry)
      this.dispatch()
      return Exit.succeed(entry)
    }
    switch (this.options.backpressure) {
      case "fail": {
        return this.reject(withoutStack(() => new QueueFull({ capacity: this.capacity })))
      }
      case "dropping": {
        this.countRejection("Dropped")
        entry.end("dropped", jobFailure(entry.id, withoutStack(() => new JobDropped({ capacity: this.capacity }))))
        this.emit(outcomes.dropped.event, entry)
        return Exit.succeed(entry)
      }
      case "sliding": {
        // capacity >= 1 is enforced at construction, so there is a queued job to push out (unless intake is
        // paused on an empty queue: then the new job itself is pushed out)
        const victim = this.queue.victim() ?? this.firstParked()
        if (victim === undefined || this.intakePaused) {
          this.accept(entry)
          this.finish(
            entry,
            "cancelled",
            jobFailure(entry.id, reasons.cancelled.sliding)
          )
          return Exit.succeed(entry)
        }
        this.unqueue(victim)
        this.accept(entry)
        this.enqueue(entry)
        this.finish(
          victim,
          "cancelled",
          jobFailure(victim.id, reasons.cancelled.sliding)
        )
        this.dispatch()
        return Exit.succeed(entry)
      }
      default: {
        // nothing changes until the submitter actually waits, so a waiter interrupted before it registers leaves
        // no trace; the checks are made again at that point
        // a waiting submitter holds no id: ids are unique among live (queued or running) jobs, so its id is
        // checked again when it is admitted
        return Effect.callback<JobEntry, PoolError>((resume) => {
          if (this.closed) return resume(this.reject(reasons.closed))
          if (id !== undefined && (this.ids.isLive(id))) {
            return resume(this.reject(withoutStack(() => new DuplicateJobId({ jobId: id }))))
          }
          const pending: PendingSubmit = { entry, resume }
          this.pending.push(pending)
          this.wakeForRate(entry)
          // room may have appeared since the queue was found full
          this.dispatch()
          return Effect.sync(() => {
            const index = this.pending.indexOf(pending)
            // withdrawn by its submitter: never accepted, and not a rejection by the pool
            if (index >= 0) this.pending.splice(index, 1)
          })
        })
      }
    }
  }

  /** A job's static ordering key: its priority, plus its age in aging intervals when aging is on. */
  score(entry: JobEntry): void {
    entry.score = this.options.agingMillis === 0
      ? entry.priority
      : entry.priority - entry.submittedAt / this.options.agingMillis
  }

  reject(reason: PoolClosed | DuplicateJobId | QueueFull): Effect.Effect<never, PoolError> {
    this.countRejection(reason._tag)
    return Exit.fail(withoutStack(() => new PoolError({ reason })))
  }

  countRejection(reason: PoolError["reason"]["_tag"] | "Dropped"): void {
    this.counters.rejected++
    switch (reason) {
      case "PoolClosed":
        this.counters.rejectedClosed++
        break
      case "QueueFull":
        this.counters.rejectedQueueFull++
        break
      case "DuplicateJobId":
        this.counters.rejectedDuplicateId++
        break
      case "InvalidOptions":
        this.counters.rejectedInvalidOptions++
        break
      case "Dropped":
        this.counters.dropped++
        break
    }
  }

  accept(entry: JobEntry): void {
    this.counters.submitted++
    if (entry.options.id !== undefined) this.ids.keep(entry.options.id, entry)
    this.emit("Submitted", entry)
  }

  enqueue(entry: JobEntry): void {
    entry.state = State.Queued
    this.queue.push(entry)
  }

  keyState(key: string): KeyState<JobEntry> {
    let state = this.keys.get(key)
    if (state === undefined) {
      const rate = this.options.keyRateLimit
      state = new KeyState(key, rate === undefined ? undefined : new SlidingLog(rate.limit, rate.intervalMillis))
      this.keys.set(key, state)
    }
    return state
  }

  /** Forgets a key with nothing running or parked, once its rate window (if any) holds no recent start. */
  dropKeyIfUnused(state: KeyState<JobEntry>): void {
    if (state.running > 0 || state.parked.head !== undefined) return
    if (state.limiter !== undefined && state.limiter.idleAt() > this.clock.currentTimeMillisUnsafe()) {
      this.lingeringKeys.add(state)
      this.wakeUpAt(state.limiter.idleAt())
      return
    }
    this.lingeringKeys.delete(state)
    this.keys.delete(state.key)
    this.rateBlockedKeys.delete(state)
  }

  firstParked(): JobEntry | undefined {
    for (const state of this.keys.values()) if (state.parked.head !== undefined) return state.parked.head
    return undefined
  }

  /** Whether a job may start now as far as dispatch, rate and key limits go (a free worker aside). */
  canStartNow(entry: JobEntry, now = this.clock.currentTimeMillisUnsafe()): boolean {
    if (this.dispatchPaused) return false
    if (this.limiter !== undefined && !this.limiter.allows(now)) return false
    if (entry.key === undefined) return true
    const state = this.keys.get(entry.key)
    if (state === undefined) return true // a key with nothing running, queued or in its rate window
    return state.running < this.options.keyConcurrency && (state.limiter === undefined || state.limiter.allows(now))
  }

  /** Sets a wake-up for when the rate limits that hold `entry` back let it start. */
  wakeForRate(entry: JobEntry): void {
    const now = this.clock.currentTimeMillisUnsafe()
    if (this.limiter !== undefined && !this.limiter.allows(now)) this.wakeUpAt(this.limiter.nextAt())
    const state = entry.key === undefined ? undefined : this.keys.get(entry.key)
    if (state?.limiter !== undefined && !state.limiter.allows(now)) this.wakeUpAt(state.limiter.nextAt())
  }

  // ---- running ----

  start(entry: JobEntry, startedAt?: number): void {
    const options = entry.options
    const now = startedAt ?? this.clock.currentTimeMillisUnsafe()
    const budget = this.budget(entry, now)
    if (budget <= 0) {
      // the deadline passed while the job waited: it never starts, and uses no worker, key slot or rate
      this.finish(
        entry,
        "timedOut",
        jobFailure(
          entry.id,
          withoutStack(() => new JobTimedOut({ timeoutMillis: options.deadline - entry.submittedAt }))
        )
      )
      this.dispatch()
      return
    }
    entry.state = State.Running
    entry.current = "running"
    this.runningList.push(entry)
    this.limiter?.record(now)
    if (entry.key !== undefined) {
      const state = this.keyState(entry.key)
      state.running++
      state.limiter?.record(now)
      // the key's next parked job is looked at again: it starts, or parks with a wake-up for its window
      if (
        state.parked.head !== undefined && state.running < this.options.keyConcurrency &&
        !this.rateBlockedKeys.has(state)
      ) this.queue.unparkHead(state)
    }
    entry.startedAt = now
    this.instruments.observeWait(now - entry.submittedAt)
    const once = entry.effect! as Effect.Effect<unknown, unknown>
    const context = this.jobContext(entry, entry.context!)
    entry.effect = entry.context = undefined
    // without retries the single attempt is set up here; with them, at the start of each attempt
    let program: Effect.Effect<unknown, unknown>
    if (options.retry !== undefined) {
      program = Effect.retry(Effect.suspend(() => this.attempt(entry, once)), options.retry as any) as Effect.Effect<
        unknown,
        unknown
      >
    } else {
      program = this.attempt(entry, once)
    }
    if (budget !== Number.POSITIVE_INFINITY) {
      program = Effect.timeoutOrElse(program, {
        duration: budget,
        orElse: () =>
          Effect.sync(() => {
            entry.flags |= Flag.TimedOut
          })
      })
    }
    const fiber = Effect.runForkWith(context)(program)
    if (fiber.pollUnsafe() !== undefined) {
      // it ran to the end in this step: no time passed on the Clock, so no second clock read
      this.onJobExit(entry, fiber.pollUnsafe()!, now)
      return
    }
    entry.fiber = fiber
    fiber.addObserver((exit) => this.onJobExit(entry, exit))
    if (entry.flags & Flag.CancelRequested) fiber.interruptUnsafe()
  }

  /**
   * The context a job runs in: the submitter's, with the job's log annotations (set once here rather than with
   * `Effect.annotateLogs`, which costs an extra context per job).
   */
  jobContext(entry: JobEntry, context: Context.Context<never>): Context.Context<never> {
    const annotations = Context.get(context, References.CurrentLogAnnotations)
    if (
      this.options.spans === "always" ||
      (this.options.spans === "auto" && Context.get(context, Tracer.Tracer) !== Tracer.nativeTracer &&
        Context.get(context, References.TracerEnabled))
    ) entry.flags |= Flag.Traced
    return Context.add(context, References.CurrentLogAnnotations, {
      ...annotations,
      "fiberpool.pool": this.name,
      "fiberpool.job": entry.id
    })
  }

  /**
   * One attempt of a job, with its events, and its span (a child of the submitter's span) when the job is
   * traced. Retries add the attempt number to the log annotations.
   */
  attempt(entry: JobEntry, job: Effect.Effect<unknown, unknown, never>): Effect.Effect<unknown, unknown> {
    const attempt = ++entry.attemptCount
    if (attempt > 1) this.counters.retries++
    this.emit("Started", entry)
    let program = job
    // a single attempt's failure is reported by `finish`; only retried attempts need watching here
    if (this.subscribers.size > 0 && entry.options.retry !== undefined) {
      program = Effect.tapCause(program, (cause) =>
        Effect.sync(() => {
          if (Cause.hasFails(cause)) this.emit("AttemptFailed", entry, cause)
        }))
    }
    if (attempt > 1) program = Effect.annotateLogs(program, "fiberpool.attempt", attempt)
    if (entry.flags & Flag.Traced) {
      program = Effect.withSpan(program, "fiberpool.job", {
        attributes: { "fiberpool.pool": this.name, "fiberpool.job": entry.id, "fiberpool.attempt": attempt },
        captureStackTrace: false
      })
    }
    return program
  }

  onJobExit(entry: JobEntry, exit: AnyExit, endedAt?: number): void {
    if (entry.state !== State.Running) return // abandoned at shutdown: already reported
    this.release(entry)
    entry.fiber = undefined
    const status = outcomeOf(entry, exit)
    let result: AnyExit = exit
    if (status === "timedOut") {
      result = jobFailure(
        entry.id,
        withoutStack(() => new JobTimedOut({ timeoutMillis: this.budget(entry, entry.startedAt!) }))
      )
    } else if (status === "interrupted") {
      result = jobFailure(entry.id, reasons.interrupted)
    }
    this.finish(entry, status, result, endedAt)
    this.dispatch()
  }

  /** The time a job starting at `startedAt` has: its timeout (the pool's, or its own if shorter), or less if its deadline is closer. */
  budget(entry: JobEntry, startedAt: number): number {
    const options = entry.options
    return Math.min(options.timeoutMillis, this.options.timeoutMillis, options.deadline - startedAt)
  }

  /** A running job stops holding its worker and its key's slot. */
  release(entry: JobEntry): void {
    this.runningList.remove(entry)
    if (entry.key !== undefined) {
      const state = this.keys.get(entry.key)!
      state.running--
      if (state.parked.head !== undefined && !this.rateBlockedKeys.has(state)) this.queue.unparkHead(state)
      else this.dropKeyIfUnused(state)
    }
  }

  /** A job ends: its terminal state, then the outcome table's counter, report list, events and dead letter. */
  finish(entry: JobEntry, status: Job.TerminalStatus, result: AnyExit, endedAt?: number): void {
    entry.end(status, result)
    if (entry.options.id !== undefined) this.ids.drop(entry.options.id)
    const outcome = outcomes[status]
    this.counters[outcome.counter]++
    if (outcome.fate !== undefined) this.shutdownState?.fates[outcome.fate].push(entry)
    if (entry.startedAt !== undefined) {
      this.instruments.observeRun((endedAt ?? this.clock.currentTimeMillisUnsafe()) - entry.startedAt)
    }
    if (this.subscribers.size > 0) {
      const cause = status === "failed" && Exit.isFailure(result) ? result.cause : undefined
      if (cause !== undefined && entry.options.retry === undefined && Cause.hasFails(cause)) {
        this.emit("AttemptFailed", entry, cause)
      }
      this.emit(outcome.event, entry, cause)
    }
    if (this.options.deadLetters !== undefined && outcome.deadLetter && Exit.isFailure(result)) {
      this.deadLetter(entry, status as DeadLetterStatus, result.cause)
    }
    if (entry.waiters !== undefined) resumeWaiters(entry, result)
  }

  cancelQueued(entry: JobEntry, by: "handle" | "sliding" | "shutdown"): void {
    this.unqueue(entry)
    this.finish(entry, "cancelled", jobFailure(entry.id, reasons.cancelled[by]))
    if (by !== "shutdown") this.dispatch()
  }

  /** Takes a job out of the queue, wherever it waits. */
  unqueue(entry: JobEntry): void {
    const state = entry.where === Where.Parked ? this.keys.get(entry.key!) : undefined
    this.queue.remove(entry, state)
    if (state !== undefined) this.dropKeyIfUnused(state)
  }

  /**
   * Starts queued jobs while workers are free and limits allow, then moves waiting submitters into free
   * queue slots. Re-entrant calls (a job that completes synchronously inside `start`) return at once: the
   * outer loop sees the freed worker, so a long run of synchronous jobs never grows the stack.
   */
  dispatch(): void {
    if (this.dispatching) return
    this.dispatching = true
    while (true) {
      if (this.runningList.size < this.concurrency && !this.dispatchPaused) {
        const next = this.queue.peek()
        if (next !== undefined) {
          const now = this.clock.currentTimeMillisUnsafe()
          if (this.limiter !== undefined && !this.limiter.allows(now)) {
            this.wakeUpAt(this.limiter.nextAt())
          } else if (next.key !== undefined && !this.keyAllows(next, now)) {
            continue
          } else {
            this.queue.remove(next)
            this.start(next, now)
            continue
          }
        } else if (this.pending.length > 0 && !this.intakePaused) {
          const index = this.startablePending()
          if (index >= 0) {
            this.admit(this.pending.splice(index, 1)[0])
            continue
          }
        }
      }
      if (this.pending.length > 0 && this.queue.size < this.capacity && !this.intakePaused) {
        this.admit(this.pending.shift()!)
        continue
      }
      break
    }
    this.dispatching = false
    if (this.runningList.size === 0 && this.queue.size === 0 && this.idleWaiters.length > 0) {
      const waiters = this.idleWaiters
      this.idleWaiters = []
      for (const waiter of waiters) waiter()
    }
  }

  /** A waiting submitter gets its queue slot, unless its id has become live meanwhile. */
  admit(pending: PendingSubmit): void {
    const entry = pending.entry
    const id = entry.options.id
    if (id !== undefined && (this.ids.isLive(id))) {
      pending.resume(this.reject(withoutStack(() => new DuplicateJobId({ jobId: id }))))
      return
    }
    if (id === undefined) this.ids.skipTaken(entry)
    this.accept(entry)
    this.enqueue(entry)
    pending.resume(Exit.succeed(entry))
  }

  /**
   * The first waiting submitter whose job could start now (its key may be busy while a later one's is free),
   * or -1; those held by a rate window get a wake-up for it.
   */
  startablePending(): number {
    for (let i = 0; i < this.pending.length; i++) {
      const entry = this.pending[i].entry
      if (this.canStartNow(entry)) return i
      this.wakeForRate(entry)
    }
    return -1
  }

  /**
   * Whether the key of the job at the head of the queue lets it start; if not, the job is parked on its key
   * (and a wake-up is set for the key's rate window), so that it never blocks other keys.
   */
  keyAllows(entry: JobEntry, now: number): boolean {
    const state = this.keyState(entry.key!)
    if (state.running >= this.options.keyConcurrency) {
      this.queue.park(entry, state)
      return false
    }
    if (state.limiter !== undefined && !state.limiter.allows(now)) {
      this.queue.park(entry, state)
      this.rateBlockedKeys.add(state)
      this.wakeUpAt(state.limiter.nextAt())
      return false
    }
    return true
  }

  /** Makes sure dispatch runs again at `at` (a rate window reopens). One timer at a time, the earliest. */
  wakeUpAt(at: number): void {
    if (at >= this.wakeAt) return
    this.wakeAt = at
    this.wakeFiber?.interruptUnsafe()
    const delay = Math.max(0, at - this.clock.currentTimeMillisUnsafe())
    this.wakeFiber = Effect.runForkWith(this.context)(
      Effect.andThen(
        Effect.sleep(delay),
        Effect.sync(() => {
          this.wakeFiber = undefined
          this.wakeAt = Number.POSITIVE_INFINITY
          this.onWake()
        })
      )
    )
  }

  onWake(): void {
    const now = this.clock.currentTimeMillisUnsafe()
    for (const state of this.lingeringKeys) {
      if (this.keys.get(state.key) !== state) this.lingeringKeys.delete(state)
      else this.dropKeyIfUnused(state)
    }
    for (const state of this.rateBlockedKeys) {
      if (state.limiter!.allows(now)) {
        this.rateBlockedKeys.delete(state)
        if (state.running < this.options.keyConcurrency) this.queue.unparkHead(state)
      } else {
        this.wakeUpAt(state.limiter!.nextAt())
      }
    }
    this.dispatch()
  }

  // ---- operator controls ----

  pause(intake: boolean): void {
    if (intake) this.intakePaused = true
    else this.dispatchPaused = true
  }

  resume(intake: boolean): void {
    if (intake) this.intakePaused = false
    else this.dispatchPaused = false
    this.dispatch()
  }

  resize(concurrency: number): void {
    this.concurrency = concurrency
    this.dispatch()
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
    if (typeof sink === "function") {
      const fiber = Effect.runForkWith(this.context)(Effect.ignoreCause(sink(letter)))
      if (fiber.pollUnsafe() === undefined) {
        this.deadLetterFibers.add(fiber)
        fiber.addObserver(() => this.deadLetterFibers.delete(fiber))
      }
    } else if (!Queue.offerUnsafe(sink, letter)) {
      this.counters.deadLettersDropped++
    }
  }

  get isIdle(): boolean {
    return this.runningList.size === 0 && this.queue.size === 0
  }

  /** Completes when no job is queued or running. */
  readonly awaitIdle: Effect.Effect<void> = Effect.callback<void>((resume) => {
    if (this.isIdle) return resume(Effect.void)
    const waiter = () => resume(Effect.void)
    this.idleWaiters.push(waiter)
    return Effect.sync(() => {
      const index = this.idleWaiters.indexOf(waiter)
      if (index >= 0) this.idleWaiters.splice(index, 1)
    })
  })

  // ---- stats ----

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

  // ---- shutdown ----

  /** Follows an application-wide shutdown controller; returns the unsubscription. */
  follow(controller: Shutdown.Controller): () => void {
    const onPhase = (phase: Shutdown.Phase) => {
      if (phase === "running") return
      const defaults = this.options.shutdown
      const options: ResolvedShutdown = phase === "graceful" ? defaults : {
        mode: "cancel",
        gracePeriodMillis: 0,
        interruptTimeoutMillis: Math.min(defaults.interruptTimeoutMillis, forcedInterruptTimeoutMillis)
      }
      if (this.shutdownState === undefined) this.beginShutdown(options)
      else this.escalate(this.shutdownState, options)
    }
    onPhase(controller.phase)
    return controller.subscribeUnsafe(onPhase)
  }

  shutdown(options: ResolvedShutdown): Effect.Effect<Shutdown.Report> {
    return Effect.suspend(() => {
      const state = this.shutdownState
      if (state === undefined) return Deferred.await(this.beginShutdown(options).report)
      this.escalate(state, options)
      return Deferred.await(state.report)
    })
  }

  beginShutdown(options: ResolvedShutdown): ShutdownState {
    const state: ShutdownState = {
      startedAt: this.clock.currentTimeMillisUnsafe(),
      mode: options.mode,
      fates: emptyFates(),
      force: Deferred.makeUnsafe<void>(),
      report: Deferred.makeUnsafe<Shutdown.Report>(),
      interruptTimeoutMillis: options.interruptTimeoutMillis,
      shorten: undefined
    }
    this.lifecycle = { _tag: "Draining", shutdown: state }
    // submitters still waiting for room were never accepted: they get their answer now
    const pending = this.pending.splice(0)
    for (const { resume } of pending) {
      this.countRejection("PoolClosed")
      resume(Exit.fail(withoutStack(() => new PoolError({ reason: reasons.closed }))))
    }
    if (options.mode === "cancel") this.cancelAllQueued()
    // draining means running the queue: a paused dispatch resumes
    this.dispatchPaused = false
    this.dispatch()
    Effect.runForkWith(this.context)(this.runShutdown(state, options.gracePeriodMillis))
    return state
  }

  /** A later call can make a running shutdown more forceful (cancel the queue, end the grace period now). */
  escalate(state: ShutdownState, options: ResolvedShutdown): void {
    if (options.mode === "cancel") this.cancelAllQueued()
    if (options.interruptTimeoutMillis < state.interruptTimeoutMillis) {
      state.interruptTimeoutMillis = options.interruptTimeoutMillis
      if (state.shorten !== undefined) Deferred.doneUnsafe(state.shorten, Exit.void)
    }
    if (state.startedAt + options.gracePeriodMillis <= this.clock.currentTimeMillisUnsafe()) {
      Deferred.doneUnsafe(state.force, Exit.void)
    }
  }

  /**
   * Cancels the whole queue at shutdown in one pass: every job is marked ended first (its result is built when
   * first read), then events go out and waiters resume, so a waiter never sees a half-cancelled queue.
   */
  cancelAllQueued(): void {
    if (this.queue.size > 0) {
      const entries = this.queue.drain(this.keys.values())
      for (const state of [...this.keys.values()]) this.dropKeyIfUnused(state)
      this.counters.cancelled += entries.length
      this.shutdownState?.fates.cancelled.push(entries)
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i]
        entry.end("cancelled", undefined)
        if (entry.options.id !== undefined) this.ids.drop(entry.options.id)
      }
      const emit = this.subscribers.size > 0
      for (let i = 0; i < entries.length; i++) {
        const entry = entries[i]
        if (emit) this.emit("Cancelled", entry)
        if (entry.waiters !== undefined) resumeWaiters(entry, entry.settled()!)
      }
    }
    this.dispatch()
  }

  waitIdleFor(millis: number, force: Deferred.Deferred<void> | undefined): Effect.Effect<void> {
    if (this.isIdle || millis <= 0) return Effect.void
    const sleep = Effect.sleep(millis)
    return Effect.raceFirst(
      this.awaitIdle,
      force === undefined ? sleep : Effect.raceFirst(sleep, Deferred.await(force))
    )
  }

  runShutdown(state: ShutdownState, gracePeriodMillis: number): Effect.Effect<void> {
    return Effect.gen({ self: this }, function*() {
      yield* this.waitIdleFor(gracePeriodMillis, state.force)
      const graceExpired = !this.isIdle
      if (graceExpired) {
        this.cancelAllQueued()
        for (const entry of this.runningList.toArray()) entry.fiber?.interruptUnsafe()
        const interruptedAt = this.clock.currentTimeMillisUnsafe()
        while (!this.isIdle) {
          const left = interruptedAt + state.interruptTimeoutMillis - this.clock.currentTimeMillisUnsafe()
          if (left <= 0) break
          state.shorten = Deferred.makeUnsafe<void>()
          yield* this.waitIdleFor(left, state.shorten)
        }
        for (const entry of this.runningList.toArray()) {
          if (entry.state !== State.Running) continue
          this.release(entry)
          this.finish(
            entry,
            "abandoned",
            jobFailure(
              entry.id,
              withoutStack(() => new JobAbandoned({ interruptTimeoutMillis: state.interruptTimeoutMillis }))
            )
          )
        }
        this.dispatch()
      }
      this.wakeFiber?.interruptUnsafe()
      if (this.deadLetterFibers.size > 0) {
        // dead letters being delivered get the interrupt bound too
        yield* Effect.timeoutOption(
          Effect.forEach([...this.deadLetterFibers], (fiber) => Fiber.await(fiber)),
          Math.max(1, state.interruptTimeoutMillis)
        )
      }
      const finishedAt = this.clock.currentTimeMillisUnsafe()
      if (!this.isIdle) return yield* Effect.die(`pool ${this.name}: jobs are live after shutdown`)
      const jobs = fatesReport(state.fates)
      // subscribers read what is buffered, then their streams end
      for (const queue of this.subscribers) Queue.endUnsafe(queue)
      this.subscribers.clear()
      // the pool has closed: its metric series go (or stay with another live pool of its name)
      this.instruments.close()
      const report: Shutdown.Report = {
        pool: this.name,
        mode: state.mode,
        startedAt: state.startedAt,
        finishedAt,
        durationMillis: finishedAt - state.startedAt,
        graceExpired,
        jobs,
        totals: this.totals()
      }
      this.lifecycle = { _tag: "Closed", shutdown: state, report }
      Deferred.doneUnsafe(state.report, Exit.succeed(report))
    })
  }
}

Object.defineProperty(PoolImpl.prototype, TypeId, { value: TypeId })
Object.defineProperty(PoolImpl.prototype, "pipe", {
  value(this: PoolImpl) {
    return pipeArguments(this, arguments)
  }
})
