/**
 * What a flow costs its children: N jobs run as plain jobs, then as the children of one flow (each child's
 * completion also recorded in the flow, one more transaction), then the parent. Cells: SQLite and PostgreSQL
 * (with `FIBERPOOL_TEST_PG_URL`), interleaved, several rounds, medians (min–max). One worker in this process,
 * concurrency 16; the jobs are enqueued first, timed from the worker's start until every job (the parent, for the
 * flow) has completed. Checks that every job ran and the parent saw every result.
 *
 * Run: `FIBERPOOL_TEST_PG_URL=postgres://... node packages/durable/benchmark/flows.ts [--quick] [--rounds 3]`
 */
import { PgClient } from "@effect/sql-pg"
import { DurableFlow, DurableQueue, DurableWorker, JobType, SqliteClient } from "@fiberpool/durable"
import { Effect, Layer, Redacted, Schema } from "effect"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const args = process.argv.slice(2)
const quick = args.includes("--quick")
const roundsAt = args.indexOf("--rounds")
const rounds = roundsAt >= 0 ? Number(args[roundsAt + 1]) : quick ? 1 : 3
const N = quick ? 200 : 2000
const pgUrl = process.env.FIBERPOOL_TEST_PG_URL ?? process.env.DATABASE_URL
if (!pgUrl) console.warn("FIBERPOOL_TEST_PG_URL is not set: PostgreSQL cells skipped")

const sqliteFile = Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "fiberpool-flow-bench-")), "queue.db")
const stores = [
  { name: "SQLite", sql: () => SqliteClient.layer({ filename: sqliteFile }) },
  ...(pgUrl
    ? [{ name: "PostgreSQL", sql: () => PgClient.layer({ url: Redacted.make(pgUrl), maxConnections: 8 }) }]
    : [])
]

let serial = 0
let ran = 0
const Square = JobType.make({
  name: "square",
  payload: Schema.Int,
  result: Schema.Int,
  handler: (n) => Effect.sync(() => (ran++, n * n))
})
let parentSum = -1
const Sum = JobType.make({
  name: "sum",
  payload: Schema.Null,
  result: Schema.Int,
  handler: (_, context) =>
    Effect.map(DurableFlow.results(context, Square), (squares) => {
      parentSum = squares.reduce((sum, one) => sum + one.result, 0)
      return parentSum
    })
})

const cell = (store: (typeof stores)[number], mode: "plain jobs" | "flow children") =>
  Effect.gen(function*() {
    const name = `bench-${process.pid}-${serial++}`
    const queue = yield* Layer.build(
      DurableQueue.layerSql({ name, pollInterval: "50 millis" }).pipe(Layer.provide(store.sql()))
    )
    const ids = Array.from({ length: N }, (_, n) => `${name}-${n}`)
    return yield* Effect.gen(function*() {
      if (mode === "plain jobs") {
        yield* Effect.forEach(ids, (id, n) => DurableQueue.enqueue(Square, n, { id }), { discard: true })
      } else {
        yield* DurableFlow.enqueue(Sum, null, {
          id: `${name}-parent`,
          children: ids.map((id, n) => DurableFlow.child(Square, n, { id }))
        })
      }
      ran = 0
      parentSum = -1
      const start = performance.now()
      yield* DurableWorker.make({ types: [Square, Sum], concurrency: 16 })
      if (mode === "plain jobs") {
        while (ran < N) yield* Effect.sleep("5 millis")
        yield* Effect.forEach(ids, (id) => DurableQueue.result(Square, id, { pollInterval: "5 millis" }), {
          concurrency: 8,
          discard: true
        })
      } else {
        yield* DurableQueue.result(Sum, `${name}-parent`, { pollInterval: "5 millis" })
      }
      const seconds = (performance.now() - start) / 1000
      const expected = Array.from({ length: N }, (_, n) => n * n).reduce((a, b) => a + b)
      if (ran < N || (mode === "flow children" && parentSum !== expected)) {
        return yield* Effect.die(new Error(`${store.name} ${mode}: ran ${ran} of ${N}, parent sum ${parentSum}`))
      }
      return N / seconds
    }).pipe(Effect.provideContext(queue))
  }).pipe(Effect.scoped)

const median = (xs: ReadonlyArray<number>) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const fmt = (n: number) => Math.round(n).toLocaleString("en-US")

const main = Effect.gen(function*() {
  const results = new Map<string, Array<number>>()
  for (let round = 0; round < rounds; round++) {
    for (const store of stores) {
      for (const mode of ["plain jobs", "flow children"] as const) {
        const key = `${store.name}|${mode}`
        const rate = yield* cell(store, mode)
        results.set(key, [...(results.get(key) ?? []), rate])
        console.log(`round ${round + 1}: ${store.name}, ${N} ${mode}: ${fmt(rate)} jobs/s`)
      }
    }
  }
  console.log(`\n| store | ${N} plain jobs, jobs/s | ${N} children of one flow, jobs/s | flow ÷ plain |`)
  console.log("| --- | --- | --- | --- |")
  for (const store of stores) {
    const plain = results.get(`${store.name}|plain jobs`) ?? []
    const flow = results.get(`${store.name}|flow children`) ?? []
    const range = (xs: Array<number>) => `${fmt(Math.min(...xs))}–${fmt(Math.max(...xs))}`
    console.log(
      `| ${store.name} | ${fmt(median(plain))} (${range(plain)}) | ${fmt(median(flow))} (${range(flow)}) | ${
        (median(flow) / median(plain)).toFixed(2)
      } |`
    )
  }
})

Effect.runPromise(main).then(() => process.exit(0), (error) => {
  console.error(error)
  process.exit(1)
})
