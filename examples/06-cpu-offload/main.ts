/**
 * @title CPU offload: a prime-counting batch on the main thread, then on a thread pool
 *
 * Counts the primes below 3,000,000 in 24 chunks, first on the main thread and then as CPU jobs on worker
 * threads (one per core), and prints both times and the speed-up. The thread pool is an ordinary fiberpool:
 * each chunk is a job with a handle, a timeout that would preempt its thread, and a graceful close.
 *
 * Run: `npm run example:06`
 */
import { NodeShutdown } from "@fiberpool/node"
import * as NodeWorkerPool from "@fiberpool/node/NodeWorkerPool"
import { Console, Effect } from "effect"
import { availableParallelism } from "node:os"
import { CountPrimes, countPrimes } from "./primes.ts"

const limit = 3_000_000
const chunks = 24
const size = limit / chunks
const ranges = Array.from({ length: chunks }, (_, i) => ({ from: i * size, to: (i + 1) * size }))

const program = Effect.gen(function*() {
  yield* Console.log(`06-cpu-offload: counting the primes below ${limit.toLocaleString("en")} in ${chunks} chunks`)

  let start = performance.now()
  const onMain = ranges.reduce((sum, { from, to }) => sum + countPrimes(from, to), 0)
  const mainMillis = performance.now() - start
  yield* Console.log(`main thread:  ${onMain} primes in ${mainMillis.toFixed(0)} ms`)

  const threads = yield* NodeWorkerPool.make({
    worker: new URL("./primes.worker.ts", import.meta.url),
    threads: availableParallelism(),
    timeout: "30 seconds"
  })
  yield* Console.log(`thread pool:  ${threads.threads} threads started`)

  start = performance.now()
  let done = 0
  const counts = yield* Effect.forEach(
    ranges,
    (range) =>
      NodeWorkerPool.run(threads, CountPrimes, range).pipe(
        Effect.tap(() => {
          done++
          return done % 6 === 0 ? Console.log(`progress:     ${done}/${chunks} chunks`) : Effect.void
        })
      ),
    { concurrency: "unbounded" }
  )
  const onThreads = counts.reduce((sum, n) => sum + n, 0)
  const poolMillis = performance.now() - start
  yield* Console.log(`thread pool:  ${onThreads} primes in ${poolMillis.toFixed(0)} ms`)
  if (onThreads !== onMain) return yield* Effect.die(new Error(`the counts differ: ${onMain} vs ${onThreads}`))
  yield* Console.log(`speed-up:     ${(mainMillis / poolMillis).toFixed(2)}x on ${threads.threads} threads`)

  const report = yield* NodeWorkerPool.shutdown(threads)
  yield* Console.log(`closed:       ${report.totals.succeeded} jobs succeeded, threads ended`)
}).pipe(Effect.scoped)

NodeShutdown.runMain(program)
