/**
 * Throughput of the Redis store: no-op jobs per second with 1 and 4 consumer processes (each at concurrency 32,
 * as in `throughput.ts`), cells interleaved, several rounds, medians with min–max.
 *
 * Each cell: enqueue N jobs (not timed), start the consumer processes and wait until they are connected, then
 * say "go" and time until effect's Redis store records every job completed (the completion time it writes in
 * the queue's `:ids` sorted set: acks included). Checks that every job ran and that nothing is left queued or
 * claimed.
 *
 * Run: `FIBERPOOL_TEST_REDIS_URL=redis://127.0.0.1:6379 node packages/durable/benchmark/redis.ts [--quick] [--rounds 3]`
 * (`eval "$(.ci/redis.sh start)"` starts a throwaway server).
 */
import { NodeRedis } from "@effect/platform-node"
import { DurableQueue, JobType } from "@fiberpool/durable"
import * as DurableRedis from "@fiberpool/durable/DurableRedis"
import { Context, Effect, Layer, Schema } from "effect"
import { Redis } from "effect/persistence"
import * as ChildProcess from "node:child_process"
import * as Os from "node:os"

const args = process.argv.slice(2)
const quick = args.includes("--quick")
const roundsAt = args.indexOf("--rounds")
const rounds = roundsAt >= 0 ? Number(args[roundsAt + 1]) : quick ? 1 : 3
const JOBS = quick ? 500 : 5000
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 32)
const url = process.env.FIBERPOOL_TEST_REDIS_URL ?? process.env.REDIS_URL
if (url === undefined || url === "") {
  console.error("set FIBERPOOL_TEST_REDIS_URL (eval \"$(.ci/redis.sh start)\")")
  process.exit(1)
}
const consumerFile = new URL("./redis-consumer.ts", import.meta.url).pathname
const Noop = JobType.make({ name: "noop", payload: Schema.Int, handler: () => Effect.void })
const cells = [1, 4].map((processes) => ({
  name: `fiberpool, Redis, ${processes} process${processes > 1 ? "es" : ""}`,
  processes
}))
let serial = 0

const runCell = async (processes: number): Promise<number> => {
  const queue = `bench_${process.pid}_${serial++}`
  const prefix = `fpbench:${queue}:`
  const keys = { ids: `${prefix}${queue}:ids`, list: `${prefix}${queue}`, pending: `${prefix}${queue}:pending` }
  const program = Effect.gen(function*() {
    const context = yield* Layer.build(DurableRedis.layer({ url, prefix, name: queue }))
    const redis = Context.get(context, Redis.Redis)
    yield* Effect.forEach(
      Array.from({ length: JOBS }, (_, i) => i),
      (i) => DurableQueue.enqueue(Noop, i, { id: `${queue}-${i}` }),
      { concurrency: 16, discard: true }
    ).pipe(Effect.provideContext(context))

    const children = Array.from({ length: processes }, () => {
      const child = ChildProcess.spawn(process.execPath, [consumerFile, url, prefix, queue, String(CONCURRENCY)], {
        stdio: ["pipe", "pipe", "inherit"]
      })
      const state = { child, count: 0, ready: false }
      let buffer = ""
      child.stdout.on("data", (data) => {
        buffer += String(data)
        const lines = buffer.split("\n")
        buffer = lines.pop()!
        for (const line of lines) {
          if (line === "ready") state.ready = true
          else if (line.startsWith("count ")) state.count = Number(line.slice(6))
        }
      })
      return state
    })
    while (!children.every((c) => c.ready)) yield* Effect.sleep("10 millis")

    // a completed job's id is scored with its completion time; an open one with +inf
    const completed = redis.send<number>("ZCOUNT", keys.ids, "-inf", "(+inf")
    const start = performance.now()
    for (const c of children) c.child.stdin.write("go\n")
    while ((yield* completed) < JOBS) {
      if (performance.now() - start > 120_000) return yield* Effect.die(new Error(`${queue}: timed out`))
      yield* Effect.sleep("10 millis")
    }
    const millis = performance.now() - start

    yield* Effect.promise(() =>
      Promise.all(children.map((c) =>
        new Promise<void>((resolve) => {
          c.child.once("exit", () => resolve())
          c.child.kill("SIGTERM")
        })
      ))
    )
    const ran = children.reduce((sum, c) => sum + c.count, 0)
    if (ran < JOBS) return yield* Effect.die(new Error(`${ran} of ${JOBS} jobs ran`))
    const left = (yield* redis.send<number>("LLEN", keys.list)) + (yield* redis.send<number>("HLEN", keys.pending))
    if (left > 0) return yield* Effect.die(new Error(`${left} jobs left queued or claimed`))
    // the benchmark's keys go
    const all = yield* redis.send<Array<string>>("KEYS", `${prefix}*`)
    if (all.length > 0) yield* redis.send("DEL", ...all)
    return JOBS / (millis / 1000)
  })
  return Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(Layer.orDie(NodeRedis.layer({ url })))))
}

const results = new Map<string, Array<number>>(cells.map((c) => [c.name, []]))
console.log(`Redis throughput: ${JOBS} no-op jobs per cell, consumer concurrency ${CONCURRENCY}, ${rounds} round(s)`)
console.log(`node ${process.version}, ${Os.cpus().length} CPUs (${Os.cpus()[0]?.model ?? "?"})`)
for (let round = 0; round < rounds; round++) {
  for (const cell of cells) {
    const rate = await runCell(cell.processes)
    results.get(cell.name)!.push(rate)
    console.log(`  round ${round + 1}: ${cell.name.padEnd(30)} ${rate.toFixed(0).padStart(6)} jobs/s`)
  }
}
const median = (xs: Array<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
console.log("\n| cell | jobs/s (median) | min–max |\n| --- | ---: | ---: |")
for (const [name, rates] of results) {
  console.log(
    `| ${name} | ${median(rates).toFixed(0)} | ${Math.min(...rates).toFixed(0)}–${Math.max(...rates).toFixed(0)} |`
  )
}
process.exit(0)
