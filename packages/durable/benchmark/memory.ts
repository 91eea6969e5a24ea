/**
 * Draining a backlog through the memory store: N no-op jobs enqueued first (not timed), then one `DurableWorker`
 * (concurrency 32) started and timed until every job ran. A take that scans every pending job makes this
 * quadratic in N; one from a heap, O(N log N).
 *
 * Run: `node --conditions=@fiberpool/source packages/durable/benchmark/memory.ts [jobs]` (default 20,000)
 */
import { DurableQueue, DurableWorker, JobType } from "@fiberpool/durable"
import { Deferred, Effect, Schema } from "effect"

const JOBS = Number(process.argv[2] ?? 20_000)

const program = Effect.gen(function*() {
  let ran = 0
  const done = yield* Deferred.make<void>()
  const Noop = JobType.make({
    name: "noop",
    payload: Schema.Int,
    handler: () => Effect.suspend(() => ++ran === JOBS ? Deferred.succeed(done, undefined) : Effect.void)
  })
  for (let i = 0; i < JOBS; i++) yield* DurableQueue.enqueue(Noop, i, { id: `j${i}` })
  const start = performance.now()
  yield* DurableWorker.make({ types: [Noop], concurrency: 32 })
  yield* Deferred.await(done)
  const millis = performance.now() - start
  console.log(
    `${JOBS} no-op jobs through layerMemory: ${millis.toFixed(0)} ms (${(JOBS / millis * 1000).toFixed(0)} jobs/s)`
  )
})

Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(DurableQueue.layerMemory()))).catch((error) => {
  console.error(error)
  process.exit(1)
})
