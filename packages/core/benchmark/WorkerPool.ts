/**
 * Micro-benchmark of the pool's hot path (not part of `npm test`): trivial jobs, fire-and-forget and
 * submit-and-await, with a plain `Effect.forEach` baseline row.
 *
 * Run: node packages/core/benchmark/WorkerPool.ts [N]
 */
import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"

const N = Number(process.argv[2] ?? 100_000)

const time = async (name: string, program: Effect.Effect<number, unknown>) => {
  const rounds: Array<number> = []
  for (let round = 0; round < 5; round++) {
    const start = performance.now()
    const checked = await Effect.runPromise(program)
    rounds.push(performance.now() - start)
    if (checked !== N) throw new Error(`${name}: expected ${N} jobs to run, got ${checked}`)
  }
  rounds.sort((a, b) => a - b)
  console.log(
    `${name.padEnd(48)} ${(rounds[2] * 1000 / N).toFixed(3)} µs/job (min ${(rounds[0] * 1000 / N).toFixed(3)})`
  )
}

for (const concurrency of [1, 16, 256]) {
  await time(
    `Effect.forEach, concurrency ${concurrency}`,
    Effect.gen(function*() {
      let ran = 0
      yield* Effect.forEach(Array.from({ length: N }), () => Effect.sync(() => ran++), { concurrency, discard: true })
      return ran
    })
  )
  await time(
    `fire and forget, concurrency ${concurrency}`,
    Effect.gen(function*() {
      let ran = 0
      const pool = yield* WorkerPool.make({ concurrency, capacity: 100 })
      for (let i = 0; i < N; i++) yield* WorkerPool.submit(pool, Effect.sync(() => ran++))
      yield* WorkerPool.awaitIdle(pool)
      return ran
    }).pipe(Effect.scoped)
  )
  await time(
    `submit and await, concurrency ${concurrency}`,
    Effect.gen(function*() {
      let ran = 0
      const pool = yield* WorkerPool.make({ concurrency, capacity: 100 })
      yield* Effect.forEach(
        Array.from({ length: N }),
        () => WorkerPool.run(pool, Effect.sync(() => ++ran)),
        { concurrency: concurrency + 100, discard: true }
      )
      return ran
    }).pipe(Effect.scoped)
  )
}
