/**
 * The memory store of the durable queue: effect's `layerStoreMemory` (same contract: de-duplication by id until
 * cleanup, retry delays, interruption handed back without counting the attempt, the dead-letter signal, the
 * attempt cap), with what `sqlStore.ts` adds, so tests of code that uses them run in memory too:
 *
 * - priorities with aging: the same order key as the SQL store, `visibleAt / aging - priority`, then
 *   `visibleAt`, then the offer sequence;
 * - dedupe keys: a window (by the `Clock`) or one pending/running job per key;
 * - the limits of a job type (a cap on running jobs, a rate of starts): there is one process, so "shared by
 *   every process" is this store.
 *
 * The pending entries of a queue are kept in binary heaps, so a take is O(log n) (plus the number of job types):
 * one heap of delayed entries by `visibleAt`, moved at each take to one heap per job type of claimable entries by
 * the order key. Per job type, because a type without room (its limits) is passed over as a whole: its head
 * is the best of its entries, and the best claimable entry is the best of the heads of the types with room.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Latch from "effect/Latch"
import * as PersistedQueue from "effect/persistence/PersistedQueue"
import type { JobStore, Offered, OfferJob, TypeLimits } from "./sqlStore.ts"
import { deadLetterFromCause, jobTypeOf } from "./sqlStore.ts"

/**
 * The priority a job of this store was stored with (its latest entry, kept until the cleanup removes it), for a
 * re-queue that stores a copy of a dead letter; 0 for another store or an unknown job.
 */
export const keptPriority = (jobs: JobStore | undefined, queue: string, id: string): Effect.Effect<number> =>
  Effect.sync(() => (jobs === undefined ? undefined : keptPriorities.get(jobs)?.(queue, id)) ?? 0)

const keptPriorities = new WeakMap<JobStore, (queue: string, id: string) => number | undefined>()

export const make = (options: { readonly agingMillis: number }): Effect.Effect<JobStore> =>
  Effect.gen(function*() {
    const clock = yield* Clock.Clock
    type Entry = {
      readonly id: string
      readonly element: unknown
      readonly jobType: string
      readonly priority: number
      readonly seq: number
      readonly dedupeKey: string | undefined
      attempts: number
      state: "pending" | "processing" | "completed" | "failed"
      visibleAt: number
      rank: number
      stateChangedAt: number
    }
    interface QueueState {
      readonly latch: Latch.Latch
      readonly entries: Map<string, Entry>
      /** pending entries not visible yet (at their last move), by `visibleAt` */
      readonly delayed: Heap<Entry>
      /** visible pending entries of each job type, by the order key */
      readonly ready: Map<string, Heap<Entry>>
      /** the latest entry of each job id (the envelope's: a re-queued copy has a store id of its own) */
      readonly byJob: Map<string, Entry>
      /** the pending or processing entry of each active dedupe key */
      readonly active: Map<string, Entry>
      /** window dedupe keys: the job id that took the key, until when */
      readonly windows: Map<string, { readonly id: string; readonly until: number }>
      readonly limits: Map<string, TypeLimits>
      readonly running: Map<string, number>
      readonly starts: Map<string, Array<number>>
    }
    const queues = new Map<string, QueueState>()
    let seq = 0
    const queueOf = (name: string): QueueState => {
      let queue = queues.get(name)
      if (queue === undefined) {
        queue = {
          latch: Latch.makeUnsafe(false),
          entries: new Map(),
          delayed: makeHeap(byVisibleAt),
          ready: new Map(),
          byJob: new Map(),
          active: new Map(),
          windows: new Map(),
          limits: new Map(),
          running: new Map(),
          starts: new Map()
        }
        queues.set(name, queue)
      }
      return queue
    }
    const rankOf = (visibleAt: number, priority: number) =>
      options.agingMillis > 0 ? visibleAt / options.agingMillis - priority : -priority
    const before = (a: Entry, b: Entry) =>
      a.rank < b.rank ||
      (a.rank === b.rank && (a.visibleAt < b.visibleAt || (a.visibleAt === b.visibleAt && a.seq < b.seq)))
    const byVisibleAt = (a: Entry, b: Entry) =>
      a.visibleAt < b.visibleAt || (a.visibleAt === b.visibleAt && a.seq < b.seq)
    const readyOf = (queue: QueueState, type: string): Heap<Entry> => {
      let heap = queue.ready.get(type)
      if (heap === undefined) {
        heap = makeHeap(before)
        queue.ready.set(type, heap)
      }
      return heap
    }
    const addPending = (queue: QueueState, entry: Entry, now: number) => {
      if (entry.visibleAt > now) queue.delayed.push(entry)
      else readyOf(queue, entry.jobType).push(entry)
    }

    const offerJob = (job: OfferJob): Effect.Effect<Offered> =>
      Effect.sync(() => {
        const now = clock.currentTimeMillisUnsafe()
        const queue = queueOf(job.name)
        const dedupe = job.dedupe
        if (dedupe !== undefined && "mode" in dedupe) {
          const holder = queue.active.get(dedupe.key)
          if (holder !== undefined) return { id: holder.id, inserted: false }
        } else if (dedupe !== undefined) {
          const window = queue.windows.get(dedupe.key)
          if (window !== undefined && window.until > now) return { id: window.id, inserted: false }
        }
        if (queue.entries.has(job.id)) return { id: job.id, inserted: false }
        if (dedupe !== undefined && !("mode" in dedupe)) {
          queue.windows.set(dedupe.key, { id: job.id, until: now + dedupe.windowMillis })
        }
        const visibleAt = job.delay === undefined ? now : now + Duration.toMillis(job.delay)
        const entry: Entry = {
          id: job.id,
          element: job.element,
          jobType: job.jobType,
          priority: job.priority,
          seq: seq++,
          dedupeKey: dedupe !== undefined && "mode" in dedupe ? dedupe.key : undefined,
          attempts: 0,
          state: "pending",
          visibleAt,
          rank: rankOf(visibleAt, job.priority),
          stateChangedAt: now
        }
        queue.entries.set(job.id, entry)
        queue.byJob.set(jobIdOf(job.element) ?? job.id, entry)
        addPending(queue, entry, now)
        if (entry.dedupeKey !== undefined) queue.active.set(entry.dedupeKey, entry)
        queue.latch.openUnsafe()
        return { id: job.id, inserted: true }
      })

    /** Whether a job of this type may start now; otherwise when it may (Infinity: when a running one ends). */
    const roomAt = (queue: QueueState, type: string, now: number): number => {
      const limits = queue.limits.get(type)
      if (limits === undefined) return now
      if (limits.global !== undefined && (queue.running.get(type) ?? 0) >= limits.global) return Infinity
      const rate = limits.rate
      if (rate === undefined) return now
      const starts = (queue.starts.get(type) ?? []).filter((at) => at > now - rate.intervalMillis)
      queue.starts.set(type, starts)
      return starts.length < rate.limit ? now : starts[starts.length - rate.limit] + rate.intervalMillis
    }

    const settle = (queue: QueueState, entry: Entry, state: Entry["state"], now: number) => {
      queue.running.set(entry.jobType, (queue.running.get(entry.jobType) ?? 1) - 1)
      entry.state = state
      entry.stateChangedAt = now
      if (state === "pending") addPending(queue, entry, now)
      else if (entry.dedupeKey !== undefined && queue.active.get(entry.dedupeKey) === entry) {
        queue.active.delete(entry.dedupeKey)
      }
      queue.latch.openUnsafe()
    }

    const store = PersistedQueue.PersistedQueueStore.of({
      offer: ({ delay, element, id, name }) =>
        Effect.asVoid(offerJob({ name, id, element, delay, jobType: jobTypeOf(element), priority: 0 })),
      take: Effect.fnUntraced(function*(takeOptions) {
        const queue = queueOf(takeOptions.name)
        while (true) {
          // close before scanning so a change after the scan reopens the latch
          queue.latch.closeUnsafe()
          const now = clock.currentTimeMillisUnsafe()
          while (queue.delayed.size > 0 && queue.delayed.peek()!.visibleAt <= now) {
            const entry = queue.delayed.pop()!
            readyOf(queue, entry.jobType).push(entry)
          }
          let wakeAt = queue.delayed.size > 0 ? queue.delayed.peek()!.visibleAt : Infinity
          // entries that exhausted this take's attempts (a take with fewer `maxAttempts` than earlier ones) stay
          // pending, out of the heaps until the end of this round
          const exhausted: Array<Entry> = []
          let best: Heap<Entry> | undefined
          for (const [type, heap] of queue.ready) {
            while (heap.size > 0 && heap.peek()!.attempts >= takeOptions.maxAttempts) exhausted.push(heap.pop()!)
            if (heap.size === 0) continue
            const at = roomAt(queue, type, now)
            if (at > now) {
              wakeAt = Math.min(wakeAt, at)
              continue
            }
            if (best === undefined || before(heap.peek()!, best.peek()!)) best = heap
          }
          const item = best?.pop()
          for (const entry of exhausted) readyOf(queue, entry.jobType).push(entry)
          if (item === undefined) {
            yield* wakeAt === Infinity
              ? queue.latch.await
              : Effect.race(queue.latch.await, Effect.sleep(Duration.millis(wakeAt - now)))
            continue
          }
          const entry = item
          entry.state = "processing"
          entry.attempts += 1
          queue.running.set(entry.jobType, (queue.running.get(entry.jobType) ?? 0) + 1)
          if (queue.limits.get(entry.jobType)?.rate !== undefined) {
            const starts = queue.starts.get(entry.jobType) ?? []
            starts.push(now)
            queue.starts.set(entry.jobType, starts)
          }
          queue.latch.openUnsafe()
          yield* Effect.addFinalizer(Effect.fnUntraced(function*(exit) {
            const now = clock.currentTimeMillisUnsafe()
            if (exit._tag === "Success") return settle(queue, entry, "completed", now)
            if (deadLetterFromCause(exit.cause) !== undefined) return settle(queue, entry, "failed", now)
            if (Cause.hasInterruptsOnly(exit.cause)) {
              entry.attempts -= 1
            } else if (entry.attempts >= takeOptions.maxAttempts) {
              return settle(queue, entry, "failed", now)
            } else {
              entry.visibleAt = now + Duration.toMillis(yield* takeOptions.retryDelay(entry.attempts))
              entry.rank = rankOf(entry.visibleAt, entry.priority)
            }
            settle(queue, entry, "pending", now)
          }))
          return { id: entry.id, attempts: entry.attempts, element: entry.element }
        }
      }),
      cleanup: (cleanupOptions) =>
        Effect.sync(() => {
          const now = clock.currentTimeMillisUnsafe()
          const completedCutoff = now - Duration.toMillis(cleanupOptions.timeToLive)
          const failedCutoff = cleanupOptions.failedTimeToLive === undefined
            ? undefined
            : now - Duration.toMillis(cleanupOptions.failedTimeToLive)
          for (const queue of queues.values()) {
            for (const [id, entry] of queue.entries) {
              const cutoff = entry.state === "completed"
                ? completedCutoff
                : entry.state === "failed"
                ? failedCutoff
                : undefined
              if (cutoff !== undefined && entry.stateChangedAt <= cutoff) {
                queue.entries.delete(id)
                const jobId = jobIdOf(entry.element) ?? id
                if (queue.byJob.get(jobId) === entry) queue.byJob.delete(jobId)
              }
            }
          }
        })
    })

    const jobs: JobStore = {
      store,
      offerJob,
      prune: (name) =>
        Effect.sync(() => {
          const now = clock.currentTimeMillisUnsafe()
          const queue = queueOf(name)
          for (const [key, window] of queue.windows) {
            if (window.until <= now) queue.windows.delete(key)
          }
        }),
      setLimits: (name, limits) =>
        Effect.sync(() => {
          const queue = queueOf(name)
          for (const [type, limit] of limits) queue.limits.set(type, limit)
          queue.latch.openUnsafe()
        })
    }
    keptPriorities.set(jobs, (name, id) => queues.get(name)?.byJob.get(id)?.priority)
    return jobs
  })

// ---- Internal ----

/** The job id of an envelope (`{ type, id, payload }`). */
const jobIdOf = (element: unknown): string | undefined =>
  typeof element === "object" && element !== null && "id" in element && typeof element.id === "string"
    ? element.id
    : undefined

/** A binary min-heap under `before` (a strict order). */
interface Heap<A> {
  readonly size: number
  readonly peek: () => A | undefined
  readonly push: (item: A) => void
  readonly pop: () => A | undefined
}

const makeHeap = <A>(before: (a: A, b: A) => boolean): Heap<A> => {
  const items: Array<A> = []
  return {
    get size() {
      return items.length
    },
    peek: () => items[0],
    push: (item) => {
      let i = items.push(item) - 1
      while (i > 0) {
        const parent = (i - 1) >> 1
        if (!before(item, items[parent])) break
        items[i] = items[parent]
        i = parent
      }
      items[i] = item
    },
    pop: () => {
      const top = items[0]
      const last = items.pop()
      if (items.length > 0 && last !== undefined) {
        let i = 0
        while (true) {
          const left = 2 * i + 1
          if (left >= items.length) break
          const right = left + 1
          const child = right < items.length && before(items[right], items[left]) ? right : left
          if (!before(items[child], last)) break
          items[i] = items[child]
          i = child
        }
        items[i] = last
      }
      return top
    }
  }
}
