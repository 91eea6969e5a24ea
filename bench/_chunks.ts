// scratch: WorkerPool.run, c callers, 5k warm-up run then one run of n jobs timed in chunks of 10k (µs/job each)
import { WorkerPool } from "@fiberpool/core"
import { Effect } from "effect"
const n = Number(process.argv[2] ?? 100000)
const c = Number(process.argv[3] ?? 256)
const marks: Array<number> = []
const body = (k: number, timed: boolean) =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const pool = yield* WorkerPool.make({ concurrency: c, capacity: 100 })
    let s = 0, done = 0
    yield* Effect.forEach(Array.from({ length: k }, (_, i) => i), (i) =>
      WorkerPool.run(
        pool,
        Effect.sync(() => {
          s += i
          if (timed && ++done % 10000 === 0) marks.push(performance.now())
        })
      ), { concurrency: c + 100, discard: true })
    return s
  })))
await body(5000, false)
;(globalThis as any).gc?.()
const t0 = performance.now()
await body(n, true)
const t1 = performance.now()
const chunks = marks.map((m, i) => ((m - (i === 0 ? t0 : marks[i - 1])) / 10).toFixed(2))
console.log(`${(t1 - t0).toFixed(1)} ms | ${chunks.join(" ")}`)
