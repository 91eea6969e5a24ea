/**
 * The pool: the rooms put together (core → running → admission → shutdown), with the public operations the
 * `WorkerPool` module calls that belong to no single room.
 *
 * - `core.ts`: the pool's state, the operation boundary and outbox, the outcome writer.
 * - `running.ts`: dispatch, a job's start, attempts and exit; pause, resume, resize.
 * - `admission.ts`: submit, backpressure, waiting submitters, cancel of a queued job.
 * - `shutdown.ts`: the shutdown steps and the report.
 */
import type * as Cause from "effect/Cause"
import { type Pipeable, pipeArguments } from "effect/Pipeable"
import * as Queue from "effect/Queue"
import type * as JobEvent from "../JobEvent.ts"
import { PoolShutdown } from "./shutdown.ts"

/** @internal */
export const TypeId = "~@fiberpool/core/WorkerPool" as const

/** @internal */
export class PoolImpl extends PoolShutdown {
  declare readonly [TypeId]: typeof TypeId
  declare readonly pipe: Pipeable["pipe"]

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

  /** The numbers of `WorkerPool.stats`. */
  snapshot() {
    return {
      name: this.name,
      concurrency: this.concurrency,
      capacity: this.capacity,
      queued: this.queue.size,
      running: this.runningList.size,
      waiting: this.pending.length,
      closed: this.closed,
      paused: this.dispatchPaused,
      intakePaused: this.intakePaused,
      deadLettersDropped: this.counters.deadLettersDropped,
      ...this.totals()
    }
  }
}

Object.defineProperty(PoolImpl.prototype, TypeId, { value: TypeId })
Object.defineProperty(PoolImpl.prototype, "pipe", {
  value(this: PoolImpl) {
    return pipeArguments(this, arguments)
  }
})
