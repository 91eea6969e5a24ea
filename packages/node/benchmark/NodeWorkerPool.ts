/**
 * NodeWorkerPool against piscina and tinypool, in one run, rounds interleaved (medians, min–max).
 *
 * - "64 jobs of ~20 ms CPU on 2 threads": wall time, and the speed-up over running them on the main thread.
 * - "10k tiny tasks at once": time per task, all submitted together.
 * - "one-at-a-time round trips": time per task, each awaited before the next; the main thread's CPU time per
 *   task (`process.threadCpuUsage`): what the pool itself costs, apart from waiting for the thread; and the CPU time
 *   of the process' other threads per task (`process.cpuUsage` minus the main thread's: the pool's threads, and
 *   V8's and libuv's helper threads). The three pools run side by side for this case, in batches of 250 round trips
 *   taken in turn, so that a change in the machine's load (or in where the kernel puts the threads) hits all three
 *   alike; a sample is a round's batches of one pool.
 * - "graceful close with 100 in flight": 100 jobs of ~5 ms submitted, then the pool is closed at once; how
 *   many completed and how long the close took, against the ideal 100 × 5 ms / 2 threads.
 *
 * Every case checks its results (a skipped or lost job shows). Not part of `npm test`.
 * Run: `node packages/node/benchmark/NodeWorkerPool.ts [--quick | --rounds N] [--only CASES] [--trips N]` (default 3
 * rounds). `--only` runs some of the cases (`cpu`, `burst`, `trip`, `close`, comma-separated), e.g.
 * `--only trip --rounds 15 --trips 10000` for more round-trip samples; `--trips` sets the round trips per sample
 * (default 2000).
 */
import { Effect, Exit, Scope } from "effect"
import assert from "node:assert"
import { cpus, loadavg } from "node:os"
import { Piscina } from "piscina"
import Tinypool from "tinypool"
import * as NodeWorkerPool from "../src/NodeWorkerPool.ts"
import { Echo, Work } from "./thread-bench-tasks.ts"
import { work } from "./thread-work.ts"

const quick = process.argv.includes("--quick")
const flag = (name: string): string | undefined => {
  const index = process.argv.indexOf(name)
  return index > 0 ? process.argv[index + 1] : undefined
}
const rounds = quick ? 1 : Number(flag("--rounds") ?? 3)
type Case = "cpu" | "burst" | "trip" | "close"
const cases = new Set<string>((flag("--only") ?? "cpu,burst,trip,close").split(","))
for (const name of cases) assert.ok(["cpu", "burst", "trip", "close"].includes(name), `--only: unknown case ${name}`)
const runs = (name: Case): boolean => cases.has(name)
const cpuJobs = quick ? 8 : 64
const burst = quick ? 500 : 10_000
const trips = quick ? 200 : Number(flag("--trips") ?? 2_000)
const tripBatch = Math.min(250, trips)
const closeJobs = quick ? 20 : 100
// every pool first runs this many tiny tasks (and 4 CPU jobs), so that all are measured with their code warm
const warmup = quick ? 200 : 3_000
const threads = 2
const workerUrl = new URL("./thread-bench-worker.ts", import.meta.url)
const peerFile = new URL("./thread-bench-peer.ts", import.meta.url).href

// iterations of `work` that take ~`millis` on the main thread
const calibrate = (millis: number): number => {
  let iterations = 100_000
  for (let i = 0; i < 5; i++) {
    const start = performance.now()
    work(1, iterations)
    const took = performance.now() - start
    iterations = Math.max(10_000, Math.round(iterations * millis / Math.max(took, 0.1)))
  }
  return iterations
}
const iters20 = calibrate(20)
const iters5 = Math.round(iters20 / 4)
const inputs = Array.from({ length: cpuJobs }, (_, i) => ({ seed: i + 1, iterations: iters20 }))
const expected = inputs.reduce((sum, input) => sum + work(input.seed, input.iterations), 0)
const burstSum = (burst * (burst - 1)) / 2

interface Sample {
  cpuMillis: number
  mainMillis: number
  burstMicros: number
  tripMicros: number
  tripCpuMicros: number
  tripOtherCpuMicros: number
  closeCompleted: number
  closeMillis: number
}
type Peer = "fiberpool" | "piscina" | "tinypool"
const samples: Record<Peer, Array<Sample>> = { fiberpool: [], piscina: [], tinypool: [] }

/** The main thread's CPU time so far, in µs. */
const mainCpu = (): number => {
  const usage = process.threadCpuUsage()
  return usage.user + usage.system
}

/** The whole process' CPU time so far, in µs. */
const processCpu = (): number => {
  const usage = process.cpuUsage()
  return usage.user + usage.system
}

const timeMain = () => {
  const start = performance.now()
  let sum = 0
  for (const input of inputs) sum += work(input.seed, input.iterations)
  assert.strictEqual(sum, expected)
  return performance.now() - start
}

// the figures of a case that did not run
const skipped = { cpuMillis: NaN, burstMicros: NaN, closeCompleted: NaN, closeMillis: NaN }
const noTrips = { tripMicros: NaN, tripCpuMicros: NaN, tripOtherCpuMicros: NaN }

const fiberpool = (mainMillis: number): Promise<Sample> =>
  Effect.runPromise(Effect.scoped(Effect.gen(function*() {
    const pool = yield* NodeWorkerPool.make({ worker: workerUrl, threads, capacity: Infinity })
    const all = <A>(n: number, f: (i: number) => Effect.Effect<A, unknown>) =>
      Effect.forEach(Array.from({ length: n }, (_, i) => i), f, { concurrency: "unbounded" })
    yield* all(warmup, (i) => NodeWorkerPool.run(pool, Echo, i))
    yield* all(4, (i) => NodeWorkerPool.run(pool, Work, inputs[i % inputs.length]))
    const sample: Sample = { mainMillis, ...skipped, ...noTrips }
    let jobs = warmup + 4

    if (runs("cpu")) {
      const start = performance.now()
      const results = yield* all(cpuJobs, (i) => NodeWorkerPool.run(pool, Work, inputs[i]))
      sample.cpuMillis = performance.now() - start
      assert.strictEqual(results.reduce((a, b) => a + b, 0), expected)
      jobs += cpuJobs
    }

    if (runs("burst")) {
      const start = performance.now()
      const echoes = yield* all(burst, (i) => NodeWorkerPool.run(pool, Echo, i))
      sample.burstMicros = (performance.now() - start) * 1000 / burst
      assert.strictEqual(echoes.reduce((a, b) => a + b, 0), burstSum)
      jobs += burst
    }

    if (runs("close")) {
      const handles = yield* all(
        closeJobs,
        (i) => NodeWorkerPool.submit(pool, Work, { seed: i + 1, iterations: iters5 })
      )
      const start = performance.now()
      const report = yield* NodeWorkerPool.shutdown(pool, { mode: "drain", gracePeriod: "60 seconds" })
      sample.closeMillis = performance.now() - start
      let closeCompleted = 0
      for (const handle of handles) if ((yield* handle.status) === "succeeded") closeCompleted++
      sample.closeCompleted = closeCompleted
      assert.strictEqual(report.totals.succeeded, closeCompleted + jobs)
    }
    return sample
  })))

interface PromisePool {
  run(input: unknown): Promise<number>
}
const peer = async (
  pool: PromisePool,
  mainMillis: number,
  close: () => Promise<void>
): Promise<Sample> => {
  const all = (n: number, f: (i: number) => Promise<number>) => Promise.all(Array.from({ length: n }, (_, i) => f(i)))
  await all(warmup, (i) => pool.run(i))
  await all(4, (i) => pool.run(inputs[i % inputs.length]))
  const sample: Sample = { mainMillis, ...skipped, ...noTrips }

  if (runs("cpu")) {
    const start = performance.now()
    const results = await all(cpuJobs, (i) => pool.run(inputs[i]))
    sample.cpuMillis = performance.now() - start
    assert.strictEqual(results.reduce((a, b) => a + b, 0), expected)
  }

  if (runs("burst")) {
    const start = performance.now()
    const echoes = await all(burst, (i) => pool.run(i))
    sample.burstMicros = (performance.now() - start) * 1000 / burst
    assert.strictEqual(echoes.reduce((a, b) => a + b, 0), burstSum)
  }

  if (runs("close")) {
    let closeCompleted = 0
    const inFlight = Array.from(
      { length: closeJobs },
      (_, i) => pool.run({ seed: i + 1, iterations: iters5 }).then(() => closeCompleted++, () => undefined)
    )
    const start = performance.now()
    await close()
    sample.closeMillis = performance.now() - start
    await Promise.allSettled(inFlight)
    sample.closeCompleted = closeCompleted
  } else {
    await close()
  }
  return sample
}

const newPiscina = () =>
  new Piscina({ filename: peerFile, minThreads: threads, maxThreads: threads, idleTimeout: 60_000 })
const newTinypool = () =>
  new Tinypool({ filename: peerFile, minThreads: threads, maxThreads: threads, idleTimeout: 60_000 })

const piscina = (mainMillis: number) => {
  const pool = newPiscina()
  return peer({ run: (input) => pool.run(input) }, mainMillis, () => pool.close())
}

const tinypool = (mainMillis: number) => {
  const pool = newTinypool()
  // tinypool has no graceful close: `destroy` is all there is
  return peer({ run: (input) => pool.run(input) }, mainMillis, () => pool.destroy())
}

/** A pool for the round trips: `trips(from, n)` runs the round trips of inputs `from` to `from + n - 1`. */
interface Tripper {
  readonly trips: (from: number, n: number) => Promise<void>
  readonly close: () => Promise<void>
}

const fiberpoolTripper = async (): Promise<Tripper> => {
  const scope = Effect.runSync(Scope.make())
  const pool = await Effect.runPromise(
    Scope.provide(scope)(NodeWorkerPool.make({ worker: workerUrl, threads, capacity: Infinity }))
  )
  await Effect.runPromise(
    Effect.forEach(Array.from({ length: warmup }, (_, i) => i), (i) => NodeWorkerPool.run(pool, Echo, i), {
      concurrency: "unbounded",
      discard: true
    })
  )
  return {
    trips: (from, n) =>
      Effect.runPromise(Effect.gen(function*() {
        for (let i = from; i < from + n; i++) assert.strictEqual(yield* NodeWorkerPool.run(pool, Echo, i), i)
      })),
    close: () => Effect.runPromise(Scope.close(scope, Exit.void))
  }
}

const promiseTripper = async (pool: PromisePool, close: () => Promise<void>): Promise<Tripper> => {
  await Promise.all(Array.from({ length: warmup }, (_, i) => pool.run(i)))
  return {
    trips: async (from, n) => {
      for (let i = from; i < from + n; i++) assert.strictEqual(await pool.run(i), i)
    },
    close
  }
}

const trippers: Record<Peer, () => Promise<Tripper>> = {
  fiberpool: fiberpoolTripper,
  piscina: () => {
    const pool = newPiscina()
    return promiseTripper({ run: (input) => pool.run(input) }, () => pool.destroy())
  },
  tinypool: () => {
    const pool = newTinypool()
    return promiseTripper({ run: (input) => pool.run(input) }, () => pool.destroy())
  }
}

/**
 * The round trips of one round: the three pools side by side, in batches of `tripBatch` taken in turn (the order
 * rotating each batch), after `warmup` untimed round trips each (a fresh thread's code is cold: a burst alone
 * leaves the one-at-a-time path of fiberpool's threads partly so). Per pool: its batches' time, main-thread CPU time and other
 * threads' CPU time, per round trip.
 */
const roundTrips = async (order: ReadonlyArray<Peer>) => {
  const pools = new Map<Peer, Tripper>()
  for (const name of order) pools.set(name, await trippers[name]())
  for (const name of order) await pools.get(name)!.trips(0, warmup)
  const totals = new Map(order.map((name) => [name, { wall: 0, main: 0, all: 0 }]))
  for (let batch = 0; batch * tripBatch < trips; batch++) {
    const n = Math.min(tripBatch, trips - batch * tripBatch)
    for (let k = 0; k < order.length; k++) {
      const name = order[(batch + k) % order.length]
      const total = totals.get(name)!
      const start = performance.now()
      const cpu = mainCpu()
      const all = processCpu()
      await pools.get(name)!.trips(batch * tripBatch, n)
      total.wall += performance.now() - start
      total.main += mainCpu() - cpu
      total.all += processCpu() - all
    }
  }
  for (const pool of pools.values()) await pool.close()
  return new Map(
    [...totals].map(([name, total]) => [name, {
      tripMicros: total.wall * 1000 / trips,
      tripCpuMicros: total.main / trips,
      tripOtherCpuMicros: (total.all - total.main) / trips
    }])
  )
}

console.log(
  `NodeWorkerPool benchmark: node ${process.version}, ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ` +
    `${threads} threads, ${rounds} round(s), ${trips} round trips per sample; one job ≈ 20 ms = ${iters20} ` +
    `iterations; ` +
    `load average ${loadavg().map((x) => x.toFixed(2)).join(" ")}`
)
const order: Array<Peer> = ["fiberpool", "piscina", "tinypool"]
const perPool = runs("cpu") || runs("burst") || runs("close")
for (let round = 0; round < rounds; round++) {
  const sampled = new Map<Peer, Sample>()
  for (const name of order) {
    const mainMillis = runs("cpu") ? timeMain() : NaN
    sampled.set(
      name,
      perPool
        ? await (name === "fiberpool" ? fiberpool : name === "piscina" ? piscina : tinypool)(mainMillis)
        : { mainMillis, ...skipped, ...noTrips }
    )
  }
  if (runs("trip")) {
    for (const [name, figures] of await roundTrips(order)) Object.assign(sampled.get(name)!, figures)
  }
  for (const [name, sample] of sampled) samples[name].push(sample)
  order.push(order.shift()!)
}

console.log(`load average at the end: ${loadavg().map((x) => x.toFixed(2)).join(" ")}`)

const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const cell = (xs: Array<number>, digits = 1) =>
  rounds === 1
    ? xs[0].toFixed(digits)
    : `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`
const rows: Array<[Case, string, (s: Sample) => number, number]> = [
  ["cpu", `${cpuJobs} jobs × 20 ms, speed-up over main`, (s) => s.mainMillis / s.cpuMillis, 2],
  ["burst", `${burst} tiny tasks at once, µs/task`, (s) => s.burstMicros, 1],
  ["trip", `one-at-a-time round trip, µs/task`, (s) => s.tripMicros, 1],
  ["trip", `one-at-a-time round trip, main-thread CPU µs/task`, (s) => s.tripCpuMicros, 1],
  ["trip", `one-at-a-time round trip, other threads' CPU µs/task`, (s) => s.tripOtherCpuMicros, 1],
  ["close", `close with ${closeJobs} in flight: completed`, (s) => s.closeCompleted, 0],
  [
    "close",
    `close with ${closeJobs} in flight: ms (ideal ${(closeJobs * 5 / threads).toFixed(0)})`,
    (s) => s.closeMillis,
    0
  ]
]
console.log(`| case | fiberpool | piscina | tinypool | fiberpool ÷ piscina |`)
console.log(`| --- | --- | --- | --- | --- |`)
for (const [, label, f, digits] of rows.filter(([name]) => runs(name))) {
  const fp = samples.fiberpool.map(f)
  const pi = samples.piscina.map(f)
  const tp = samples.tinypool.map(f)
  console.log(
    `| ${label} | ${cell(fp, digits)} | ${cell(pi, digits)} | ${cell(tp, digits)} | ${
      (median(fp) / median(pi)).toFixed(2)
    } |`
  )
}
