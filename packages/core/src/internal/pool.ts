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
import type { JobEntry } from "./entry.ts"
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

  /**
   * The live (queued or running) job with this id. A custom id is a map lookup; a generated one
   * (`<pool>-<n>`) a scan of the live jobs, as for an operator's action.
   */
  find(id: string): JobEntry | undefined {
    const custom = this.ids.custom.get(id)
    if (custom !== undefined) return custom
    const seq = this.ids.generatedSeq(id)
    if (seq < 0) return undefined
    for (const entry of this.live(Number.POSITIVE_INFINITY)) {
      if (entry.seq === seq && entry.options.id === undefined) return entry
    }
    return undefined
  }

  /** Up to `limit` live jobs: the running ones (oldest start first), then the queued ones in start order. */
  live(limit: number): Array<JobEntry> {
    const out: Array<JobEntry> = []
    for (let entry = this.runningList.head; entry !== undefined && out.length < limit; entry = entry.next) {
      out.push(entry)
    }
    if (out.length >= limit) return out
    if (!this.queue.ordered) {
      for (let entry = this.queue.list.head; entry !== undefined && out.length < limit; entry = entry.next) {
        out.push(entry)
      }
      return out
    }
    for (const entry of this.queue.toArray(this.limits.keys.values())) {
      if (out.length >= limit) break
      out.push(entry)
    }
    return out
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
