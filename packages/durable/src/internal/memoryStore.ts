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
 * A take scans the pending entries (as effect's memory store does): meant for tests and development.
 */
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Latch from "effect/Latch"
import * as PersistedQueue from "effect/persistence/PersistedQueue"
import type { JobStore, Offered, OfferJob, TypeLimits } from "./sqlStore.ts"
import { deadLetterFromCause, jobTypeOf } from "./sqlStore.ts"

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
      readonly pending: Set<Entry>
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
          pending: new Set(),
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
        queue.pending.add(entry)
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
      if (state === "pending") queue.pending.add(entry)
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
          let item: Entry | undefined
          let wakeAt = Infinity
          const room = new Map<string, number>()
          for (const entry of queue.pending) {
            if (entry.attempts >= takeOptions.maxAttempts) continue
            if (entry.visibleAt > now) {
              wakeAt = Math.min(wakeAt, entry.visibleAt)
              continue
            }
            let at = room.get(entry.jobType)
            if (at === undefined) {
              at = roomAt(queue, entry.jobType, now)
              room.set(entry.jobType, at)
            }
            if (at > now) {
              wakeAt = Math.min(wakeAt, at)
              continue
            }
            if (item === undefined || before(entry, item)) item = entry
          }
          if (item === undefined) {
            yield* wakeAt === Infinity
              ? queue.latch.await
              : Effect.race(queue.latch.await, Effect.sleep(Duration.millis(wakeAt - now)))
            continue
          }
          const entry = item
          entry.state = "processing"
          entry.attempts += 1
          queue.pending.delete(entry)
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
              if (cutoff !== undefined && entry.stateChangedAt <= cutoff) queue.entries.delete(id)
            }
          }
        })
    })

    return {
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
  })
