/**
 * Heap per queued job (not part of `npm test`): 200k jobs queued behind a blocked worker, sharing one job
 * effect, so the figure is the pool's own cost per job (entry, id, bookkeeping).
 *
 * Run: node --expose-gc packages/core/benchmark/memory.ts
 */
import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
const N = 200_000
const gc = (globalThis as any).gc as () => void
const job = Effect.void
const program = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ concurrency: 1, capacity: Infinity })
  yield* WorkerPool.submit(pool, Effect.never)
  gc()
  gc()
  const before = process.memoryUsage().heapUsed
  for (let i = 0; i < N; i++) yield* WorkerPool.submit(pool, job)
  gc()
  gc()
  const after = process.memoryUsage().heapUsed
  console.log(`${((after - before) / N).toFixed(0)} B per queued job (shared job effect)`)
  yield* WorkerPool.shutdown(pool, { mode: "cancel", gracePeriod: 0 })
})
await Effect.runPromise(Effect.scoped(program))
