/**
 * Admission: a submission is started at once, queued, or met by the backpressure strategy (rejected, dropped,
 * pushing out the oldest, or waiting for room); waiting submitters are admitted as room appears; queued jobs
 * are cancelled from their handle.
 */
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { DuplicateJobId, JobDropped, PoolError, QueueFull } from "../PoolError.ts"
import type { PoolClosed } from "../PoolError.ts"
import { PendingSubmit } from "./core.ts"
import { JobEntry, jobFailure, reasons, relative, type Waiter, withoutStack } from "./entry.ts"
import { Where } from "./jobQueue.ts"
import type { ResolvedJobOptions } from "./options.ts"
import { PoolRunning } from "./running.ts"

type AnyEffect = Effect.Effect<any, any, any>

/** @internal */
export abstract class PoolAdmission extends PoolRunning {
  /** A submission (an operation). Under `"suspend"` with a full queue, the returned effect waits for room. */
  submit(
    effect: AnyEffect,
    options: ResolvedJobOptions,
    context: Context.Context<never>
  ): Effect.Effect<JobEntry, PoolError> {
    this.depth++
    try {
      return this.admitNow(effect, options, context)
    } finally {
      this.leave()
    }
  }

  /**
   * `submit` then the job's result, for `WorkerPool.run`: submitting and registering the wait happen in one
   * step, so no interruption can fall between them; interrupting the caller cancels the job and waits for it
   * to stop.
   */
  submitAndAwait(
    effect: AnyEffect,
    options: ResolvedJobOptions,
    context: Context.Context<never>
  ): Effect.Effect<any, any> {
    return Effect.callback<any, any>((resume) => {
      const submitted = this.submit(effect, options, context)
      if (!Exit.isExit(submitted)) {
        // waiting for room in the queue: the handle arrives later
        return resume(Effect.uninterruptibleMask((restore) =>
          Effect.flatMap(
            restore(submitted),
            (handle) => Effect.onInterrupt(restore(handle.await), () => handle.cancel)
          )
        ))
      }
      const exit = submitted as Exit.Exit<JobEntry, PoolError>
      if (Exit.isFailure(exit)) return resume(exit)
      const entry = exit.value
      const result = entry.settled()
      if (result !== undefined) return resume(result)
      const waiter: Waiter = resume
      entry.addWaiter(waiter)
      return Effect.suspend(() => {
        entry.removeWaiter(waiter)
        return entry.cancel
      })
    })
  }

  admitNow(
    effect: AnyEffect,
    options: ResolvedJobOptions,
    context: Context.Context<never>
  ): Effect.Effect<JobEntry, PoolError> {
    // the hot path reads fields rather than getters and helpers: a fresh process runs it before V8 inlines them
    if (this.lifecycle._tag !== "Open") return this.reject(reasons.closed)
    const id = options.id
    if (id !== undefined && this.ids.isLive(id)) {
      return this.reject(withoutStack(() => new DuplicateJobId({ jobId: id })))
    }
    const entry = new JobEntry(this, effect, context, options)
    const now = this.clock.currentTimeMillisUnsafe()
    entry.submittedRel = relative(now, this.epoch)
    this.ids.number(entry)
    if (!this.queue.ordered && (entry.key !== undefined || entry.priority !== 0)) {
      // jobs queued before the switch get their score now, so they keep their place
      for (let queued = this.queue.list.head; queued !== undefined; queued = queued.next) this.score(queued)
      this.queue.makeOrdered()
    }
    if (this.queue.ordered) this.score(entry)
    if (
      this.runningList.size < this.concurrency && this.queue.size === 0 && this.pending.length === 0 &&
      !this.intakePaused && !this.dispatchPaused &&
      // (the limits are called only when there is one: until V8 has inlined them, each call is a cost a fresh
      // process pays per job)
      ((this.limits.limiter === undefined && options.key === undefined) || this.limits.allows(entry, now))
    ) {
      this.accept(entry)
      this.start(entry, now)
      return Exit.succeed(entry)
    }
    if (this.queue.size < this.capacity && !this.intakePaused) {
      this.accept(entry)
      this.enqueue(entry)
      return Exit.succeed(entry)
    }
    switch (this.options.backpressure) {
      case "fail":
        return this.reject(withoutStack(() => new QueueFull({ capacity: this.capacity })))
      case "dropping": {
        // never accepted: a rejection, whose handle is already finished
        this.counters.rejected++
        this.finish(
          entry,
          "dropped",
          jobFailure(entry.id, withoutStack(() => new JobDropped({ capacity: this.capacity })))
        )
        return Exit.succeed(entry)
      }
      case "sliding": {
        // capacity >= 1 is enforced at construction, so there is a queued job to push out (unless intake is
        // paused on an empty queue: then the new job itself is pushed out)
        const victim = this.queue.victim() ?? this.limits.firstParked()
        this.accept(entry)
        if (victim === undefined || this.intakePaused) {
          this.finish(entry, "cancelled", jobFailure(entry.id, reasons.cancelled.sliding))
          return Exit.succeed(entry)
        }
        this.unqueue(victim)
        this.enqueue(entry)
        this.finish(victim, "cancelled", jobFailure(victim.id, reasons.cancelled.sliding))
        return Exit.succeed(entry)
      }
      default:
        // nothing changes until the submitter actually waits, so a waiter interrupted before it registers leaves
        // no trace; the checks are made again at that point
        return Effect.callback<JobEntry, PoolError>((resume) => {
          const pending = new PendingSubmit(entry, resume)
          this.depth++
          try {
            this.wait(pending)
          } finally {
            this.leave()
          }
          return Effect.sync(() => {
            const index = this.pending.indexOf(pending)
            // withdrawn by its submitter: never accepted, and not a rejection by the pool
            if (index >= 0) this.pending.splice(index, 1)
          })
        })
    }
  }

  /**
   * A submitter starts waiting for room. It holds no id: ids are unique among live (queued or running) jobs,
   * so its id is checked again when it is admitted. Room that appeared since the queue was found full is
   * given by the dispatch that ends this operation.
   */
  wait(pending: PendingSubmit): void {
    const id = pending.entry.options.id
    if (this.closed) return this.answer(pending, this.reject(reasons.closed))
    if (id !== undefined && this.ids.isLive(id)) {
      return this.answer(pending, this.reject(withoutStack(() => new DuplicateJobId({ jobId: id }))))
    }
    this.pending.push(pending)
    this.limits.wakeForRate(pending.entry)
  }

  /** Queues a waiting submitter's answer for the outbox. */
  answer(pending: PendingSubmit, answer: Effect.Effect<JobEntry, PoolError>): void {
    pending.answer = answer
    this.outbox.push(pending)
  }

  /** A job's static ordering key: its priority, plus its age in aging intervals when aging is on. */
  score(entry: JobEntry): void {
    entry.score = this.options.agingMillis === 0
      ? entry.priority
      : entry.priority - entry.submittedRel / this.options.agingMillis
  }

  /** Whether a job may start now as far as dispatch, rate and key limits go (a free worker aside). */
  canStartNow(entry: JobEntry, now: number): boolean {
    return !this.dispatchPaused && this.limits.allows(entry, now)
  }

  reject(reason: PoolClosed | DuplicateJobId | QueueFull): Exit.Exit<never, PoolError> {
    this.countRejection(reason._tag)
    return Exit.fail(withoutStack(() => new PoolError({ reason })))
  }

  countRejection(reason: PoolError["reason"]["_tag"]): void {
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
    }
  }

  accept(entry: JobEntry): void {
    this.counters.submitted++
    entry.state = "queued"
    if (entry.options.id !== undefined) this.ids.keep(entry.options.id, entry)
    if (this.subscribers.size > 0) this.emit("Submitted", entry)
  }

  enqueue(entry: JobEntry): void {
    this.queue.push(entry)
  }

  admitStartable(): boolean {
    if (this.pending.length === 0 || this.intakePaused) return false
    const now = this.clock.currentTimeMillisUnsafe()
    for (let i = 0; i < this.pending.length; i++) {
      const entry = this.pending[i].entry
      if (this.canStartNow(entry, now)) {
        this.admit(this.pending.splice(i, 1)[0])
        return true
      }
      this.limits.wakeForRate(entry)
    }
    return false
  }

  admitIntoRoom(): boolean {
    if (this.pending.length === 0 || this.queue.size >= this.capacity || this.intakePaused) return false
    this.admit(this.pending.shift()!)
    return true
  }

  /** A waiting submitter gets its queue slot, unless its id has become live meanwhile. */
  admit(pending: PendingSubmit): void {
    const entry = pending.entry
    const id = entry.options.id
    if (id !== undefined && this.ids.isLive(id)) {
      return this.answer(pending, this.reject(withoutStack(() => new DuplicateJobId({ jobId: id }))))
    }
    if (id === undefined) this.ids.skipTaken(entry)
    this.accept(entry)
    this.enqueue(entry)
    this.answer(pending, Exit.succeed(entry))
  }

  /** A queued job cancelled from its handle or pushed out by `"sliding"` (an operation). */
  cancelQueued(entry: JobEntry, by: "handle" | "sliding"): void {
    this.depth++
    try {
      if (entry.state !== "queued") return
      this.unqueue(entry)
      this.finish(entry, "cancelled", jobFailure(entry.id, reasons.cancelled[by]))
    } finally {
      this.leave()
    }
  }

  /** Takes a job out of the queue, wherever it waits. */
  unqueue(entry: JobEntry): void {
    const state = entry.where === Where.Parked ? this.limits.parkedOn(entry) : undefined
    this.queue.remove(entry, state)
    if (state !== undefined) this.limits.dropIfUnused(state)
  }
}
