/**
 * Shutdown: stop accepting, drain or cancel the queue, wait out the grace period, interrupt, abandon what
 * outlives the interrupt bound, then the report. Each step that changes the pool is one operation.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as Queue from "effect/Queue"
import { JobAbandoned, PoolError } from "../PoolError.ts"
import type * as Shutdown from "../Shutdown.ts"
import { PoolAdmission } from "./admission.ts"
import { type JobEntry, jobFailure, reasons, withoutStack } from "./entry.ts"
import { Where } from "./jobQueue.ts"
import type { ResolvedShutdown } from "./options.ts"
import { outcomes } from "./outcome.ts"
import { emptyFates, fatesReport, type ShutdownState } from "./shutdownState.ts"

/** The interrupt bound of a forced shutdown, so that a forced process exit can follow within a second. */
const forcedInterruptTimeoutMillis = 500

/** @internal */
export abstract class PoolShutdown extends PoolAdmission {
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
      const state = this.shutdownState
      if (state === undefined) this.beginShutdown(options)
      else this.escalate(state, options)
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

  /** Intake closes (an operation): waiting submitters are rejected, a paused dispatch resumes. */
  beginShutdown(options: ResolvedShutdown): ShutdownState {
    const state: ShutdownState = {
      startedAt: this.clock.currentTimeMillisUnsafe(),
      mode: options.mode,
      fates: emptyFates(),
      force: Deferred.makeUnsafe<void>(),
      report: Deferred.makeUnsafe<Shutdown.Report>(),
      interruptTimeoutMillis: options.interruptTimeoutMillis,
      shorten: undefined,
      interrupted: false
    }
    this.transact(() => {
      this.lifecycle = { _tag: "Draining", shutdown: state }
      // submitters still waiting for room were never accepted: they get their answer now
      for (const pending of this.pending.splice(0)) {
        this.countRejection("PoolClosed")
        this.answer(pending, Exit.fail(withoutStack(() => new PoolError({ reason: reasons.closed }))))
      }
      if (options.mode === "cancel") this.cancelAllQueued()
      // draining means running the queue: a paused dispatch resumes
      this.dispatchPaused = false
      // no grace period: the interrupts go out now, in the caller's step, not after the shutdown fiber starts
      if (options.gracePeriodMillis <= 0 && !this.isIdle) {
        state.interrupted = true
        this.interruptAll()
      }
    })
    Effect.runForkWith(this.context)(runShutdown(this, state, options.gracePeriodMillis))
    return state
  }

  /** A later call can make a running shutdown more forceful (cancel the queue, end the grace period now). */
  escalate(state: ShutdownState, options: ResolvedShutdown): void {
    this.transact(() => {
      if (options.mode !== "cancel") return
      state.mode = "cancel"
      this.cancelAllQueued()
    })
    if (options.interruptTimeoutMillis < state.interruptTimeoutMillis) {
      state.interruptTimeoutMillis = options.interruptTimeoutMillis
      if (state.shorten !== undefined) Deferred.doneUnsafe(state.shorten, Exit.void)
    }
    if (state.startedAt + options.gracePeriodMillis <= this.clock.currentTimeMillisUnsafe()) {
      Deferred.doneUnsafe(state.force, Exit.void)
    }
  }

  /**
   * Cancels the whole queue in one pass (inside an operation). No result is built per job (it is made when
   * first read, see `JobEntry.settled`), nor any id string (see `fatesReport`): the cost per queued job is a
   * few field writes.
   */
  cancelAllQueued(): void {
    if (this.queue.size === 0) return
    const outcome = outcomes.cancelled
    const fates = this.shutdownState?.fates[outcome.fate]
    const chain = this.queue.takeChain()
    if (chain !== undefined) {
      // FIFO: the queue's own chain is walked once, and kept as it is for the report
      this.counters[outcome.counter] += chain.size
      fates?.push(chain)
      for (let entry = chain.head; entry !== undefined; entry = entry.next as JobEntry | undefined) {
        entry.where = Where.None
        this.cancelled(entry)
      }
      return
    }
    const entries = this.queue.drain(this.limits.keys.values())
    this.limits.dropAllUnused()
    this.counters[outcome.counter] += entries.length
    fates?.push(entries)
    for (let i = 0; i < entries.length; i++) this.cancelled(entries[i])
  }

  /** One job of a whole queue cancelled at once: its state, id, event and waiters. */
  cancelled(entry: JobEntry): void {
    entry.end("cancelled", undefined)
    if (entry.options.id !== undefined) this.ids.drop(entry.options.id, entry)
    if (this.subscribers.size > 0) this.emit("Cancelled", entry)
    if (entry.waiters !== undefined) this.outbox.push(entry)
  }

  waitIdleFor(millis: number, force: Deferred.Deferred<void> | undefined): Effect.Effect<void> {
    if (this.isIdle || millis <= 0) return Effect.void
    const sleep = Effect.sleep(millis)
    return Effect.raceFirst(
      this.awaitIdle,
      force === undefined ? sleep : Effect.raceFirst(sleep, Deferred.await(force))
    )
  }

  /** The grace period expired: the queue is cancelled and every running job interrupted (an operation). */
  interruptAll(): void {
    this.transact(() => {
      this.cancelAllQueued()
      for (const entry of this.runningList.toArray()) entry.fiber?.interruptUnsafe()
    })
  }

  /** Jobs still running after the interrupt bound are abandoned: reported, and their workers released. */
  abandonAll(interruptTimeoutMillis: number): void {
    this.transact(() => {
      for (const entry of this.runningList.toArray()) {
        this.release(entry)
        this.finish(
          entry,
          "abandoned",
          jobFailure(entry.id, withoutStack(() => new JobAbandoned({ interruptTimeoutMillis })))
        )
      }
    })
  }
}

/** The shutdown's own fiber: the grace period, the interrupt phase, the report. */
const runShutdown = Effect.fnUntraced(function*(pool: PoolShutdown, state: ShutdownState, gracePeriodMillis: number) {
  yield* pool.waitIdleFor(gracePeriodMillis, state.force)
  // with no grace period the interrupts went out in the caller's step, and the jobs may have stopped already
  const graceExpired = state.interrupted || !pool.isIdle
  if (graceExpired) {
    if (!state.interrupted) pool.interruptAll()
    const interruptedAt = pool.clock.currentTimeMillisUnsafe()
    while (!pool.isIdle) {
      const left = interruptedAt + state.interruptTimeoutMillis - pool.clock.currentTimeMillisUnsafe()
      if (left <= 0) break
      state.shorten = Deferred.makeUnsafe<void>()
      yield* pool.waitIdleFor(left, state.shorten)
    }
    pool.abandonAll(state.interruptTimeoutMillis)
  }
  pool.limits.stop()
  if (pool.deadLetterFibers.size > 0) {
    // dead letters being delivered get the interrupt bound too
    yield* Effect.timeoutOption(
      Effect.forEach([...pool.deadLetterFibers], (fiber) => Fiber.await(fiber)),
      Math.max(1, state.interruptTimeoutMillis)
    )
  }
  const finishedAt = pool.clock.currentTimeMillisUnsafe()
  if (!pool.isIdle) return yield* Effect.die(`pool ${pool.name}: jobs are live after shutdown`)
  // subscribers read what is buffered, then their streams end
  for (const queue of pool.subscribers) Queue.endUnsafe(queue)
  pool.subscribers.clear()
  // the pool has closed: its metric series go (or stay with another live pool of its name)
  pool.instruments.close()
  const report: Shutdown.Report = {
    pool: pool.name,
    mode: state.mode,
    startedAt: state.startedAt,
    finishedAt,
    durationMillis: finishedAt - state.startedAt,
    graceExpired,
    jobs: fatesReport(state.fates),
    totals: pool.totals()
  }
  pool.lifecycle = { _tag: "Closed", shutdown: state, report }
  Deferred.doneUnsafe(state.report, Exit.succeed(report))
})
