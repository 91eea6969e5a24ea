/**
 * The `DurableMetrics` gauges of one worker: registered with read hooks over the last sample of
 * `DurableQueue.stats`, one series per job type seen, removed when the worker's scope closes.
 */
import * as Effect from "effect/Effect"
import * as Metric from "effect/Metric"
import type * as Scope from "effect/Scope"
import type { StoreError } from "../DurableError.ts"
import * as DurableMetrics from "../DurableMetrics.ts"
import type { DurableQueue, TypeStats } from "../DurableQueue.ts"
import { Service, stats } from "../DurableQueue.ts"

export interface QueueMetrics {
  readonly sample: (queue: DurableQueue) => Effect.Effect<void, StoreError>
}

export const make = (queueName: string): Effect.Effect<QueueMetrics, never, Scope.Scope> =>
  Effect.gen(function*() {
    const context = yield* Effect.context<never>()
    const latest = new Map<string, TypeStats>()
    const registrations: Array<{ remove(): void }> = []
    yield* Effect.addFinalizer(() => Effect.sync(() => registrations.forEach((registration) => registration.remove())))
    const register = (type: string) => {
      const attributes = { queue: queueName, type }
      const gauge = (metric: Metric.Gauge<number>, read: (stats: TypeStats) => number) =>
        registrations.push(Metric.registerUnsafe(Metric.withAttributes(metric, attributes), context, {
          get: () => {
            const current = latest.get(type)
            return { value: current === undefined ? 0 : read(current) }
          },
          update: () => {},
          modify: () => {}
        }))
      gauge(DurableMetrics.backlog, (s) => s.pending)
      gauge(DurableMetrics.delayed, (s) => s.delayed)
      gauge(DurableMetrics.claimed, (s) => s.claimed)
      gauge(DurableMetrics.backlogAge, (s) => (s.oldestPendingMillis ?? 0) / 1000)
      gauge(DurableMetrics.deadLetters, (s) => s.deadLetters)
    }
    const seen = new Set<string>()
    return {
      sample: (queue) =>
        Effect.gen(function*() {
          const sampled = yield* Effect.provideService(stats, Service, queue)
          latest.clear()
          for (const type of sampled.types) {
            latest.set(type.type, type)
            if (!seen.has(type.type)) {
              seen.add(type.type)
              register(type.type)
            }
          }
        })
    }
  })
