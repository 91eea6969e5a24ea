/**
 * One-at-a-time round trips only, fiberpool and piscina interleaved, with the main thread's CPU time per trip
 * (`process.threadCpuUsage`) and the whole process's: for profiling with `node --cpu-prof`. Not part of `npm test`.
 * Run: `node --conditions=@fiberpool/source packages/node/benchmark/rt-only.ts [rounds] [trips] [fiberpool|piscina]`
 */
import { Effect } from "effect"
import { loadavg } from "node:os"
import { Piscina } from "piscina"
import * as NodeWorkerPool from "../src/NodeWorkerPool.ts"
import { Echo } from "./thread-bench-tasks.ts"

const rounds = Number(process.argv[2] ?? 10)
const trips = Number(process.argv[3] ?? 2000)
const only = process.argv[4]
const workerUrl = new URL("./thread-bench-worker.ts", import.meta.url)
const peerFile = new URL("./thread-bench-peer.ts", import.meta.url).href
const fp: Array<number> = []
const pi: Array<number> = []
const fpCpu: Array<number> = []
const piCpu: Array<number> = []
const fpAll: Array<number> = []
const piAll: Array<number> = []
const all = () => {
  const u = process.cpuUsage()
  return u.user + u.system
}
const cpu = () => {
  const u = process.threadCpuUsage()
  return u.user + u.system
}
const fiber = () =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const pool = yield* NodeWorkerPool.make({ worker: workerUrl, threads: 2, capacity: Infinity })
    for (let i = 0; i < 3000; i++) yield* NodeWorkerPool.run(pool, Echo, i)
    for (let r = 0; r < rounds; r++) {
      const start = performance.now()
      const c = cpu()
      const a = all()
      for (let i = 0; i < (only === "piscina" ? 0 : trips); i++) {
        if ((yield* NodeWorkerPool.run(pool, Echo, i)) !== i) throw new Error("bad")
      }
      fp.push((performance.now() - start) * 1000 / trips)
      fpCpu.push((cpu() - c) / trips)
      fpAll.push((all() - a) / trips)
      yield* Effect.promise(() => piscinaRound())
    }
  })))
let piscinaPool: Piscina | undefined
const piscinaRound = async () => {
  if (only === "fiberpool") return
  piscinaPool ??= new Piscina({ filename: peerFile, minThreads: 2, maxThreads: 2, idleTimeout: 60_000 })
  if (pi.length === 0) { for (let i = 0; i < 3000; i++) await piscinaPool.run(i) }
  const start = performance.now()
  const c = cpu()
  const a = all()
  for (let i = 0; i < trips; i++) if ((await piscinaPool.run(i)) !== i) throw new Error("bad")
  pi.push((performance.now() - start) * 1000 / trips)
  piCpu.push((cpu() - c) / trips)
  piAll.push((all() - a) / trips)
}
const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
console.log(`load ${loadavg().map((x) => x.toFixed(2)).join(" ")}`)
await fiber()
await piscinaPool?.close()
console.log(
  `fiberpool ${median(fp).toFixed(1)} µs [${fp.map((x) => x.toFixed(1)).join(" ")}] main cpu ${
    median(fpCpu).toFixed(1)
  } µs, all ${median(fpAll).toFixed(1)} µs`
)
if (pi.length) {
  console.log(
    `piscina   ${median(pi).toFixed(1)} µs [${pi.map((x) => x.toFixed(1)).join(" ")}]  ratio ${
      (median(fp) / median(pi)).toFixed(2)
    } main cpu ${median(piCpu).toFixed(1)} µs, all ${median(piAll).toFixed(1)} µs`
  )
}
console.log(`load ${loadavg().map((x) => x.toFixed(2)).join(" ")}`)
