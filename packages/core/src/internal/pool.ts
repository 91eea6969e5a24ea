import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import type * as Job from "../Job.ts"
import type * as JobEvent from "../JobEvent.ts"
import {
  DuplicateJobId,
  JobAbandoned,
  JobCancelled,
  JobDropped,
  JobError,
  JobInterrupted,
  JobTimedOut,
  PoolClosed,
  PoolError,
  QueueFull
} from "../PoolError.ts"
import type * as Shutdown from "../Shutdown.ts"
import { type Counters, Instruments, makeCounters, makeEvent } from "./observe.ts"
import type { ResolvedJobOptions, ResolvedPoolOptions, ResolvedShutdown } from "./options.ts"

/** @internal */
export const TypeId = "~@fiberpool/core/WorkerPool" as const

/** The interrupt bound of a forced shutdown, so that a forced process exit can follow within a second. */
const forcedInterruptTimeoutMillis = 500

const terminalEvents: Record<Job.TerminalStatus, JobEvent.Kind> = {
  succeeded: "Succeeded",
  failed: "Failed",
  timedOut: "TimedOut",
  cancelled: "Cancelled",
  interrupted: "Interrupted",
  abandoned: "Abandoned",
  dropped: "Dropped"
}

/** @internal */
export const JobTypeId = "~@fiberpool/core/Job/JobHandle" as const

type AnyExit = Exit.Exit<any, any>
type Waiter = (exit: AnyExit) => void

const State = {
  Waiting: 0,
  Queued: 1,
  Running: 2,
  Done: 3
} as const
type State = typeof State[keyof typeof State]

/**
 * A job inside the pool, and its handle. One object per job: it is a node of the queue (or of the running
 * list), holds the job's program until it starts, and then its result.
 */
export class JobEntry<A = any, E = any> implements Job.JobHandle<A, E> {
  declare readonly [JobTypeId]: typeof JobTypeId
  state: State = State.Waiting as State
  current: Job.Status = "queued"
  effect: Effect.Effect<A, E, any> | undefined
  context: Context.Context<never> | undefined
  fiber: Fiber.Fiber<any, any> | undefined = undefined
  result: Exit.Exit<A, E | JobError> | undefined = undefined
  waiters: Waiter | Array<Waiter> | undefined = undefined
  prev: JobEntry | undefined = undefined
  next: JobEntry | undefined = undefined
  attemptCount = 0
  timedOut = false
  traced = false
  budgetMillis = Number.POSITIVE_INFINITY
  submittedAt = 0
  startedAt: number | undefined = undefined
  readonly pool: PoolImpl
  readonly id: string
  readonly options: ResolvedJobOptions
  constructor(
    pool: PoolImpl,
    id: string,
    effect: Effect.Effect<A, E, any>,
    context: Context.Context<never>,
    options: ResolvedJobOptions
  ) {
    this.pool = pool
    this.id = id
    this.effect = effect
    this.context = context
    this.options = options
  }
  get metadata() {
    return this.options.metadata
  }
  get exit(): Effect.Effect<Exit.Exit<A, E | JobError>> {
    return Effect.callback<Exit.Exit<A, E | JobError>>((resume) => {
      if (this.result !== undefined) return resume(Effect.succeed(this.result))
      const waiter: Waiter = (exit) => resume(Effect.succeed(exit))
      this.addWaiter(waiter)
      return Effect.sync(() => this.removeWaiter(waiter))
    })
  }
  get await(): Effect.Effect<A, E | JobError> {
    if (this.result !== undefined) return this.result
    return Effect.callback<A, E | JobError>((resume) => {
      if (this.result !== undefined) return resume(this.result)
      this.addWaiter(resume)
      return Effect.sync(() => this.removeWaiter(resume))
    })
  }
  get cancel(): Effect.Effect<void> {
    return Effect.suspend(() => {
      switch (this.state) {
        case State.Queued: {
          this.pool.cancelQueued(this, "handle")
          return Effect.void
        }
        case State.Running: {
          this.fiber!.interruptUnsafe()
          return Effect.asVoid(this.exit)
        }
        default:
          return Effect.void
      }
    })
  }
  get status(): Effect.Effect<Job.Status> {
    return Effect.sync(() => this.current)
  }
  get attempts(): Effect.Effect<number> {
    return Effect.sync(() => this.attemptCount)
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

/** A doubly linked list threaded through the entries' `prev`/`next` fields. */
class EntryList {
  head: JobEntry | undefined = undefined
  tail: JobEntry | undefined = undefined
  size = 0
  push(entry: JobEntry): void {
    entry.prev = this.tail
    entry.next = undefined
    if (this.tail === undefined) this.head = entry
    else this.tail.next = entry
    this.tail = entry
    this.size++
  }
  remove(entry: JobEntry): void {
    if (entry.prev === undefined) this.head = entry.next
    else entry.prev.next = entry.next
    if (entry.next === undefined) this.tail = entry.prev
    else entry.next.prev = entry.prev
    entry.prev = entry.next = undefined
    this.size--
  }
  toArray(): Array<JobEntry> {
    const out: Array<JobEntry> = []
    for (let entry = this.head; entry !== undefined; entry = entry.next) out.push(entry)
    return out
  }
}

interface PendingSubmit {
  readonly entry: JobEntry
  readonly resume: (effect: Effect.Effect<JobEntry, PoolError>) => void
}

interface ShutdownState {
  readonly startedAt: number
  readonly mode: Shutdown.Mode
  readonly snapshot: ReadonlyArray<JobEntry>
  readonly force: Deferred.Deferred<void>
  readonly report: Deferred.Deferred<Shutdown.Report>
  interruptTimeoutMillis: number
}

/** @internal */
export class PoolImpl {
  declare readonly [TypeId]: typeof TypeId
  readonly name: string
  readonly concurrency: number
  readonly capacity: number
  readonly options: ResolvedPoolOptions
  readonly context: Context.Context<never>
  readonly clock: Clock.Clock

  readonly queue = new EntryList()
  readonly runningList = new EntryList()
  readonly pending: Array<PendingSubmit> = []
  readonly live = new Map<string, JobEntry>()
  readonly counters: Counters = makeCounters()
  readonly instruments: Instruments
  readonly subscribers = new Set<Queue.Queue<JobEvent.JobEvent, Cause.Done>>()
  idleWaiters: Array<() => void> = []
  closed = false
  dispatching = false
  seq = 0
  shutdownState: ShutdownState | undefined = undefined

  constructor(options: ResolvedPoolOptions, context: Context.Context<never>) {
    this.options = options
    this.name = options.name
    this.concurrency = options.concurrency
    this.capacity = options.capacity
    this.context = context
    this.clock = Context.get(context, Clock.Clock)
    this.instruments = new Instruments(options.name, context, this.counters, {
      queued: () => this.queue.size,
      running: () => this.runningList.size
    })
  }

  // ---- events ----

  emit(kind: JobEvent.Kind, entry: JobEntry, cause?: Cause.Cause<unknown>): void {
    if (this.subscribers.size === 0) return
    const event = makeEvent(kind, this.name, entry, this.clock.currentTimeMillisUnsafe(), cause)
    for (const queue of this.subscribers) Queue.offerUnsafe(queue, event)
  }

  /** Registers a subscriber now; its stream ends once shutdown has finished and it has read everything. */
  subscribe(queue: Queue.Queue<JobEvent.JobEvent, Cause.Done>): () => void {
    if (this.shutdownState !== undefined && Deferred.isDoneUnsafe(this.shutdownState.report)) {
      Queue.endUnsafe(queue)
      return () => {}
    }
    this.subscribers.add(queue)
    return () => {
      this.subscribers.delete(queue)
    }
  }

  get running(): number {
    return this.runningList.size
  }

  // ---- submit ----

  submit(
    effect: Effect.Effect<any, any, any>,
    options: ResolvedJobOptions,
    context: Context.Context<never>
  ): Effect.Effect<JobEntry, PoolError> {
    if (this.closed) return this.reject(new PoolClosed())
    let id = options.id
    if (id === undefined) {
      id = `${this.name}-${++this.seq}`
    }
    if (this.live.has(id)) return this.reject(new DuplicateJobId({ jobId: id }))
    const entry = new JobEntry(this, id, effect, context, options)
    entry.submittedAt = this.clock.currentTimeMillisUnsafe()
    if (this.running < this.concurrency && this.queue.size === 0 && this.pending.length === 0) {
      this.accept(entry)
      this.start(entry)
      return Exit.succeed(entry)
    }
    if (this.queue.size < this.capacity) {
      this.accept(entry)
      this.enqueue(entry)
      return Exit.succeed(entry)
    }
    switch (this.options.backpressure) {
      case "fail": {
        return this.reject(new QueueFull({ capacity: this.capacity }))
      }
      case "dropping": {
        this.countRejection("Dropped")
        entry.state = State.Done
        entry.current = "dropped"
        entry.effect = entry.context = undefined
        entry.result = Exit.fail(new JobError({ jobId: id, reason: new JobDropped({ capacity: this.capacity }) }))
        this.emit("Dropped", entry)
        return Exit.succeed(entry)
      }
      case "sliding": {
        // capacity >= 1 is enforced at construction, so there is an oldest queued job to push out
        this.cancelQueued(this.queue.head!, "sliding")
        this.accept(entry)
        this.enqueue(entry)
        return Exit.succeed(entry)
      }
      default: {
        this.live.set(id, entry)
        return Effect.callback<JobEntry, PoolError>((resume) => {
          const pending: PendingSubmit = { entry, resume }
          this.pending.push(pending)
          return Effect.sync(() => {
            const index = this.pending.indexOf(pending)
            if (index >= 0) {
              this.pending.splice(index, 1)
              // withdrawn by its submitter: never accepted, and not a rejection by the pool
              this.live.delete(entry.id)
            }
          })
        })
      }
    }
  }

  reject(reason: PoolClosed | DuplicateJobId | QueueFull): Effect.Effect<never, PoolError> {
    this.countRejection(reason._tag)
    return Exit.fail(new PoolError({ reason }))
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
    this.live.set(entry.id, entry)
    this.emit("Submitted", entry)
  }

  enqueue(entry: JobEntry): void {
    entry.state = State.Queued
    this.queue.push(entry)
  }

  // ---- running ----

  start(entry: JobEntry): void {
    entry.state = State.Running
    entry.current = "running"
    this.runningList.push(entry)
    const options = entry.options
    const now = this.clock.currentTimeMillisUnsafe()
    entry.startedAt = now
    this.instruments.observeWait(now - entry.submittedAt)
    const timeoutMillis = options.timeoutMillis < this.options.timeoutMillis
      ? options.timeoutMillis
      : this.options.timeoutMillis
    const budget = Math.min(timeoutMillis, options.deadline - now)
    if (budget <= 0) {
      // the deadline passed while the job waited: it never starts
      entry.budgetMillis = options.deadline - entry.submittedAt
      entry.timedOut = true
      this.onJobExit(entry, Exit.void)
      return
    }
    const once = entry.effect! as Effect.Effect<unknown, unknown>
    const context = this.jobContext(entry, entry.context!)
    entry.effect = entry.context = undefined
    let program: Effect.Effect<unknown, unknown> = Effect.suspend(() => this.attempt(entry, once))
    if (options.retry !== undefined) {
      program = Effect.retry(program, options.retry as any) as Effect.Effect<unknown, unknown>
    }
    if (budget !== Number.POSITIVE_INFINITY) {
      entry.budgetMillis = budget
      program = Effect.timeoutOrElse(program, {
        duration: budget,
        orElse: () =>
          Effect.sync(() => {
            entry.timedOut = true
          })
      })
    }
    const fiber = Effect.runForkWith(context)(program)
    if (fiber.pollUnsafe() !== undefined) {
      this.onJobExit(entry, fiber.pollUnsafe()!)
      return
    }
    entry.fiber = fiber
    fiber.addObserver((exit) => this.onJobExit(entry, exit))
  }

  /**
   * The context a job runs in: the submitter's, with the job's log annotations (set once here rather than with
   * `Effect.annotateLogs`, which costs an extra context per job).
   */
  jobContext(entry: JobEntry, context: Context.Context<never>): Context.Context<never> {
    const annotations = Context.get(context, References.CurrentLogAnnotations)
    entry.traced = this.options.spans === "always" ||
      (this.options.spans === "auto" && Context.get(context, Tracer.Tracer) !== Tracer.nativeTracer &&
        Context.get(context, References.TracerEnabled))
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
    if (this.subscribers.size > 0) {
      program = Effect.tapCause(program, (cause) =>
        Effect.sync(() => {
          if (Cause.hasFails(cause)) this.emit("AttemptFailed", entry, cause)
        }))
    }
    if (attempt > 1) program = Effect.annotateLogs(program, "fiberpool.attempt", attempt)
    if (entry.traced) {
      program = Effect.withSpan(program, "fiberpool.job", {
        attributes: { "fiberpool.pool": this.name, "fiberpool.job": entry.id, "fiberpool.attempt": attempt },
        captureStackTrace: false
      })
    }
    return program
  }

  onJobExit(entry: JobEntry, exit: AnyExit): void {
    if (entry.state !== State.Running) return // abandoned at shutdown: already reported
    this.runningList.remove(entry)
    entry.fiber = undefined
    if (entry.timedOut) {
      this.finish(
        entry,
        "timedOut",
        Exit.fail(new JobError({ jobId: entry.id, reason: new JobTimedOut({ timeoutMillis: entry.budgetMillis }) }))
      )
    } else if (exit._tag === "Success") {
      this.finish(entry, "succeeded", exit)
    } else if (Cause.hasInterruptsOnly(exit.cause)) {
      this.finish(entry, "interrupted", Exit.fail(new JobError({ jobId: entry.id, reason: new JobInterrupted() })))
    } else {
      this.finish(entry, "failed", exit)
    }
    this.dispatch()
  }

  finish(entry: JobEntry, status: Job.TerminalStatus, result: AnyExit): void {
    entry.state = State.Done
    entry.current = status
    entry.result = result
    entry.effect = entry.context = undefined
    this.live.delete(entry.id)
    this.counters[status as Exclude<Job.TerminalStatus, "dropped">]++
    if (entry.startedAt !== undefined) {
      this.instruments.observeRun(this.clock.currentTimeMillisUnsafe() - entry.startedAt)
    }
    if (this.subscribers.size > 0) {
      this.emit(terminalEvents[status], entry, status === "failed" && Exit.isFailure(result) ? result.cause : undefined)
    }
    const waiters = entry.waiters
    if (waiters !== undefined) {
      entry.waiters = undefined
      if (typeof waiters === "function") waiters(result)
      else for (let i = 0; i < waiters.length; i++) waiters[i](result)
    }
  }

  cancelQueued(entry: JobEntry, by: "handle" | "sliding" | "shutdown"): void {
    this.queue.remove(entry)
    this.finish(entry, "cancelled", Exit.fail(new JobError({ jobId: entry.id, reason: new JobCancelled({ by }) })))
    if (by !== "shutdown") this.dispatch()
  }

  /**
   * Starts queued jobs while workers are free, then moves waiting submitters into free queue slots.
   * Re-entrant calls (a job that completes synchronously inside `start`) return at once: the outer loop
   * sees the freed worker, so a long run of synchronous jobs never grows the stack.
   */
  dispatch(): void {
    if (this.dispatching) return
    this.dispatching = true
    while (true) {
      if (this.runningList.size < this.concurrency) {
        const next = this.queue.head
        if (next !== undefined) {
          this.queue.remove(next)
          this.start(next)
          continue
        }
        if (this.pending.length > 0) {
          const pending = this.pending.shift()!
          this.counters.submitted++
          this.emit("Submitted", pending.entry)
          this.start(pending.entry)
          pending.resume(Exit.succeed(pending.entry))
          continue
        }
      }
      if (this.pending.length > 0 && this.queue.size < this.capacity) {
        const pending = this.pending.shift()!
        this.counters.submitted++
        this.emit("Submitted", pending.entry)
        this.enqueue(pending.entry)
        pending.resume(Exit.succeed(pending.entry))
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
    return { ...this.counters }
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
    this.closed = true
    const state: ShutdownState = {
      startedAt: this.clock.currentTimeMillisUnsafe(),
      mode: options.mode,
      snapshot: [...this.runningList.toArray(), ...this.queue.toArray()],
      force: Deferred.makeUnsafe<void>(),
      report: Deferred.makeUnsafe<Shutdown.Report>(),
      interruptTimeoutMillis: options.interruptTimeoutMillis
    }
    this.shutdownState = state
    // submitters still waiting for room were never accepted: they get their answer now
    const pending = this.pending.splice(0)
    for (const { entry, resume } of pending) {
      this.live.delete(entry.id)
      this.countRejection("PoolClosed")
      resume(Exit.fail(new PoolError({ reason: new PoolClosed() })))
    }
    if (options.mode === "cancel") this.cancelAllQueued()
    Effect.runForkWith(this.context)(this.runShutdown(state, options.gracePeriodMillis))
    return state
  }

  /** A later call can make a running shutdown more forceful (cancel the queue, end the grace period now). */
  escalate(state: ShutdownState, options: ResolvedShutdown): void {
    if (options.mode === "cancel") this.cancelAllQueued()
    if (options.interruptTimeoutMillis < state.interruptTimeoutMillis) {
      state.interruptTimeoutMillis = options.interruptTimeoutMillis
    }
    if (state.startedAt + options.gracePeriodMillis <= this.clock.currentTimeMillisUnsafe()) {
      Deferred.doneUnsafe(state.force, Exit.void)
    }
  }

  cancelAllQueued(): void {
    for (let entry = this.queue.head; entry !== undefined; entry = this.queue.head) {
      this.queue.remove(entry)
      this.finish(
        entry,
        "cancelled",
        Exit.fail(new JobError({ jobId: entry.id, reason: new JobCancelled({ by: "shutdown" }) }))
      )
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
        yield* this.waitIdleFor(state.interruptTimeoutMillis, undefined)
        for (const entry of this.runningList.toArray()) {
          this.runningList.remove(entry)
          this.finish(
            entry,
            "abandoned",
            Exit.fail(
              new JobError({
                jobId: entry.id,
                reason: new JobAbandoned({ interruptTimeoutMillis: state.interruptTimeoutMillis })
              })
            )
          )
        }
        this.dispatch()
      }
      const finishedAt = this.clock.currentTimeMillisUnsafe()
      const jobs = {
        succeeded: [] as Array<string>,
        failed: [] as Array<string>,
        timedOut: [] as Array<string>,
        interrupted: [] as Array<string>,
        cancelled: [] as Array<string>,
        abandoned: [] as Array<string>
      }
      for (const entry of state.snapshot) {
        const bucket = jobs[entry.current as keyof typeof jobs]
        if (bucket === undefined) return yield* Effect.die(`job ${entry.id} is ${entry.current} after shutdown`)
        bucket.push(entry.id)
      }
      // subscribers read what is buffered, then their streams end
      for (const queue of this.subscribers) Queue.endUnsafe(queue)
      this.subscribers.clear()
      Deferred.doneUnsafe(
        state.report,
        Exit.succeed({
          pool: this.name,
          mode: state.mode,
          startedAt: state.startedAt,
          finishedAt,
          durationMillis: finishedAt - state.startedAt,
          graceExpired,
          jobs,
          totals: this.totals()
        })
      )
    })
  }
}

Object.defineProperty(PoolImpl.prototype, TypeId, { value: TypeId })
