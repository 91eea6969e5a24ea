import { assert, describe, it } from "@effect/vitest"
import { PoolError, WorkerPool } from "@fiberpool/core"
import { DurableFlow, DurableQueue, JobType, SqliteClient } from "@fiberpool/durable"
import { Context, Data, Deferred, Duration, Effect, Layer, Schedule, Schema } from "effect"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"
import { StoreError } from "../src/DurableError.ts"
import { applyRetention, settleFlowChild } from "../src/DurableQueue.ts"
import { connectProducer, startConsumer, stores, waitUntil } from "./utils/stores.ts"

class Boom extends Data.TaggedError("Boom")<{ readonly source: string }> {
  override get message() {
    return `cannot fetch ${this.source}`
  }
}

const Fetched = Schema.Struct({ source: Schema.String, rows: Schema.Int })

describe.each(stores.filter((store) => store.flows))("DurableFlow on $name", (store) => {
  const test = store.skip ? it.live.skip : it.live

  test("the parent runs once, after all its children, and reads their typed results", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const events: Array<string> = []
      const release = yield* Deferred.make<void>()
      const Fetch = JobType.make({
        name: "fetch",
        payload: Schema.Struct({ source: Schema.String }),
        result: Fetched,
        handler: ({ source }) =>
          Effect.gen(function*() {
            if (source === "slow") yield* Deferred.await(release)
            events.push(`child ${source}`)
            return { source, rows: source.length }
          })
      })
      const Report = JobType.make({
        name: "report",
        payload: Schema.Struct({ month: Schema.String }),
        result: Schema.Struct({ month: Schema.String, sources: Schema.Array(Schema.String), rows: Schema.Int }),
        handler: ({ month }, context) =>
          Effect.gen(function*() {
            events.push("parent")
            const fetched = yield* DurableFlow.results(context, Fetch)
            return {
              month,
              sources: fetched.map((one) => `${one.id}:${one.result.source}`),
              rows: fetched.reduce((sum, one) => sum + one.result.rows, 0)
            }
          })
      })
      yield* startConsumer(connect(), { types: [Fetch, Report], concurrency: 4 })
      // a failed assertion must not leave the held child holding the consumer's shutdown
      yield* Effect.addFinalizer(() => Deferred.succeed(release, undefined))
      const producer = yield* connectProducer(connect())
      const id = yield* DurableFlow.enqueue(Report, { month: "2026-10" }, {
        id: "report-1",
        children: [
          DurableFlow.child(Fetch, { source: "sales" }, { id: "f-sales" }),
          DurableFlow.child(Fetch, { source: "slow" }, { id: "f-slow" }),
          DurableFlow.child(Fetch, { source: "costs" }, { id: "f-costs" })
        ]
      }).pipe(Effect.provideContext(producer))
      assert.strictEqual(id, "report-1")

      yield* waitUntil("the fast children ran", Effect.sync(() => events.length === 2))
      // the slow child holds the parent back
      yield* Effect.sleep("500 millis")
      assert.deepStrictEqual([...events].sort(), ["child costs", "child sales"])
      const waiting = yield* DurableFlow.children({ id }).pipe(Effect.provideContext(producer))
      assert.deepStrictEqual(waiting.map((child) => [child.id, child.status]), [
        ["f-sales", "succeeded"],
        ["f-slow", "pending"],
        ["f-costs", "succeeded"]
      ])

      yield* Deferred.succeed(release, undefined)
      const report = yield* DurableQueue.result(Report, id, { pollInterval: "50 millis" }).pipe(
        Effect.provideContext(producer)
      )
      assert.deepStrictEqual(report, {
        month: "2026-10",
        sources: ["f-sales:sales", "f-slow:slow", "f-costs:costs"],
        rows: 5 + 4 + 5
      })
      assert.strictEqual(events.at(-1), "parent")
      yield* Effect.sleep("300 millis")
      assert.strictEqual(events.filter((event) => event === "parent").length, 1)
    }), 30_000)

  test(
    "a child that completes twice (redelivered) counts once: the parent waits for the others, runs once",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const runs: Array<string> = []
        const release = yield* Deferred.make<void>()
        const Fetch = JobType.make({
          name: "fetch",
          payload: Schema.String,
          result: Schema.Int,
          handler: (source, { id }) =>
            Effect.gen(function*() {
              if (source === "held") yield* Deferred.await(release)
              runs.push(id)
              return runs.filter((run) => run === id).length
            })
        })
        const Report = JobType.make({
          name: "report",
          payload: Schema.Null,
          result: Schema.Array(Schema.Tuple([Schema.String, Schema.Int])),
          handler: (_, context) =>
            Effect.gen(function*() {
              runs.push("parent")
              const fetched = yield* DurableFlow.results(context, Fetch)
              return fetched.map((one) => [one.id, one.result] as const)
            })
        })
        const consumer = yield* startConsumer(connect(), { types: [Fetch, Report], concurrency: 4 })
        yield* Effect.addFinalizer(() => Deferred.succeed(release, undefined))
        const producer = yield* connectProducer(connect())
        yield* DurableFlow.enqueue(Report, null, {
          id: "report-2",
          children: [DurableFlow.child(Fetch, "once", { id: "a" }), DurableFlow.child(Fetch, "held", { id: "b" })]
        }).pipe(Effect.provideContext(producer))
        const statusOf = (id: string) =>
          Effect.map(
            DurableFlow.children({ id: "report-2" }).pipe(Effect.provideContext(producer)),
            (children) => children.find((child) => child.id === id)?.status
          )
        yield* waitUntil(
          "child a's completion is recorded",
          Effect.map(statusOf("a"), (status) => status === "succeeded")
        )

        // child a is delivered again, as after a crash between its completion and the acknowledgement of its claim
        const queue = Context.get(producer, DurableQueue.Service)
        yield* queue.store.offer({
          name: queue.name,
          id: "a~redelivered",
          element: { type: "fetch", id: "a", payload: "once", parent: "report-2" },
          isCustomId: true
        })
        yield* waitUntil("child a ran twice", Effect.sync(() => runs.filter((run) => run === "a").length === 2))
        yield* waitUntil(
          "both runs of a ended",
          Effect.map(WorkerPool.stats(consumer.worker.pool), (stats) => stats.succeeded >= 2)
        )
        // the second run reports after its handler ended: within milliseconds
        yield* Effect.sleep("500 millis")
        assert.isFalse(runs.includes("parent"), "the parent must wait for child b")
        assert.strictEqual(yield* statusOf("b"), "pending")

        // and its completion is reported once more, directly
        yield* settleFlowChild(queue, "a", { status: "succeeded", result: "3" })
        yield* Effect.sleep("200 millis")
        assert.isFalse(runs.includes("parent"), "the parent must wait for child b")

        yield* Deferred.succeed(release, undefined)
        const report = yield* DurableQueue.result(Report, "report-2", { pollInterval: "50 millis" }).pipe(
          Effect.provideContext(producer)
        )
        // the first completion of a is the one its flow kept
        assert.deepStrictEqual(report, [["a", 1], ["b", 1]])
        yield* Effect.sleep("500 millis")
        assert.strictEqual(runs.filter((run) => run === "parent").length, 1)
        if (connect.sql !== undefined) {
          const rows = yield* Effect.flatMap(
            SqlClient.SqlClient,
            (sql) =>
              sql<{ readonly n: number | string }>`
              SELECT COUNT(*) AS n FROM ${
                sql("effect_queue")
              } WHERE queue_name = ${connect.queueName} AND id = 'report-2'`
          ).pipe(Effect.provide(connect.sql))
          assert.strictEqual(Number(rows[0].n), 1, "the parent is enqueued once")
        }
      }),
    30_000
  )

  test("children run by two consumers at once: the parent runs once, with every result", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      let parentRuns = 0
      const Square = JobType.make({
        name: "square",
        payload: Schema.Int,
        result: Schema.Int,
        handler: (n) => Effect.sleep(`${n % 3 * 5} millis`).pipe(Effect.as(n * n))
      })
      const Sum = JobType.make({
        name: "sum",
        payload: Schema.Null,
        result: Schema.Struct({ count: Schema.Int, sum: Schema.Int }),
        handler: (_, context) =>
          Effect.gen(function*() {
            parentRuns++
            const squares = yield* DurableFlow.results(context, Square)
            return { count: squares.length, sum: squares.reduce((sum, one) => sum + one.result, 0) }
          })
      })
      const first = yield* startConsumer(connect(), { types: [Square, Sum], concurrency: 4 })
      const second = yield* startConsumer(connect(), { types: [Square, Sum], concurrency: 4 })
      const producer = yield* connectProducer(connect())
      const n = 40
      yield* DurableFlow.enqueue(Sum, null, {
        id: "sum-1",
        children: Array.from({ length: n }, (_, i) => DurableFlow.child(Square, i, { id: `sq-${i}` }))
      }).pipe(Effect.provideContext(producer))
      const result = yield* DurableQueue.result(Sum, "sum-1", { pollInterval: "50 millis" }).pipe(
        Effect.provideContext(producer),
        Effect.timeoutOrElse({
          duration: "15 seconds",
          orElse: () => Effect.fail(new Error("the parent did not run within 15 s"))
        })
      )
      assert.deepStrictEqual(result, {
        count: n,
        sum: Array.from({ length: n }, (_, i) => i * i).reduce((a, b) => a + b)
      })
      yield* Effect.sleep("300 millis")
      assert.strictEqual(parentRuns, 1)
      const ran = [
        (yield* WorkerPool.stats(first.worker.pool)).succeeded,
        (yield* WorkerPool.stats(second.worker.pool)).succeeded
      ]
      assert.strictEqual(ran[0] + ran[1], n + 1)
      assert.isTrue(ran[0] > 0 && ran[1] > 0, `both consumers ran children: ${ran}`)
    }), 30_000)

  test(
    "a dead-lettered child dead-letters the parent, naming it; re-queued, the parent runs with it visible",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        let parentRuns = 0
        const Fetch = JobType.make({
          name: "fetch",
          payload: Schema.String,
          result: Schema.Int,
          maxAttempts: 1,
          handler: (source) => source === "broken" ? Effect.fail(new Boom({ source })) : Effect.succeed(source.length)
        })
        const Report = JobType.make({
          name: "report",
          payload: Schema.Struct({ month: Schema.String }),
          result: Schema.Struct({ ok: Schema.Array(Schema.String), failed: Schema.Array(Schema.String) }),
          handler: (_, context) =>
            Effect.gen(function*() {
              parentRuns++
              const ok = yield* DurableFlow.results(context, Fetch)
              const all = yield* DurableFlow.children(context)
              return {
                ok: ok.map((one) => one.id),
                failed: all.filter((one) => one.status === "dead").map((one) => `${one.id}: ${one.error}`)
              }
            })
        })
        yield* startConsumer(connect(), { types: [Fetch, Report], concurrency: 2 })
        const producer = yield* connectProducer(connect())
        yield* DurableFlow.enqueue(Report, { month: "2026-10" }, {
          id: "report-3",
          children: [
            DurableFlow.child(Fetch, "sales", { id: "good" }),
            DurableFlow.child(Fetch, "broken", { id: "bad" })
          ]
        }).pipe(Effect.provideContext(producer))

        const dead = yield* Effect.flip(
          DurableQueue.result(Report, "report-3", { pollInterval: "50 millis" }).pipe(Effect.provideContext(producer))
        )
        assert(dead._tag === "JobDeadLettered", dead.message)
        assert.match(
          dead.error,
          /^Job report-3 \(report\): child bad \(fetch\) was dead-lettered: .*cannot fetch broken/s
        )
        assert.strictEqual(parentRuns, 0)
        const letters = yield* DurableQueue.deadLetters({ type: "report" }).pipe(Effect.provideContext(producer))
        assert.deepStrictEqual(letters.map((letter) => [letter.id, letter.payload]), [["report-3", {
          month: "2026-10"
        }]])

        // re-queued, the parent runs with its children as they are
        assert.isTrue(yield* DurableQueue.requeue("report-3").pipe(Effect.provideContext(producer)))
        const report = yield* DurableQueue.result(Report, "report-3", { pollInterval: "50 millis" }).pipe(
          Effect.provideContext(producer)
        )
        assert.deepStrictEqual(report.ok, ["good"])
        assert.strictEqual(report.failed.length, 1)
        assert.match(report.failed[0], /^bad: .*cannot fetch broken/s)
        assert.strictEqual(parentRuns, 1)
      }),
    30_000
  )

  test(
    "onChildFailure \"run-parent\": the parent runs once every child has finished, the failures visible",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const Fetch = JobType.make({
          name: "fetch",
          payload: Schema.String,
          result: Schema.Int,
          maxAttempts: 1,
          handler: (source) => source === "broken" ? Effect.fail(new Boom({ source })) : Effect.succeed(source.length)
        })
        const Report = JobType.make({
          name: "report",
          payload: Schema.Null,
          result: Schema.Struct({ rows: Schema.Int, failed: Schema.Array(Schema.String) }),
          handler: (_, context) =>
            Effect.gen(function*() {
              const ok = yield* DurableFlow.results(context, Fetch)
              const all = yield* DurableFlow.children(context)
              return {
                rows: ok.reduce((sum, one) => sum + one.result, 0),
                failed: all.filter((one) => one.status === "dead").map((one) => one.id)
              }
            })
        })
        yield* startConsumer(connect(), { types: [Fetch, Report], concurrency: 2 })
        const producer = yield* connectProducer(connect())
        yield* DurableFlow.enqueue(Report, null, {
          id: "report-4",
          onChildFailure: "run-parent",
          children: [
            DurableFlow.child(Fetch, "broken", { id: "bad" }),
            DurableFlow.child(Fetch, "sales", { id: "good" }),
            DurableFlow.child(Fetch, "costs", { id: "good-2" })
          ]
        }).pipe(Effect.provideContext(producer))
        const report = yield* DurableQueue.result(Report, "report-4", { pollInterval: "50 millis" }).pipe(
          Effect.provideContext(producer)
        )
        assert.deepStrictEqual(report, { rows: 10, failed: ["bad"] })
      }),
    30_000
  )

  test(
    "a dead child, re-queued and succeeding, revives its failed flow: the parent runs",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        let broken = true
        const Fetch = JobType.make({
          name: "fetch",
          payload: Schema.String,
          result: Schema.Int,
          maxAttempts: 1,
          handler: (source) => broken ? Effect.fail(new Boom({ source })) : Effect.succeed(source.length)
        })
        const Report = JobType.make({
          name: "report",
          payload: Schema.Null,
          result: Schema.Int,
          handler: (_, context) =>
            Effect.map(DurableFlow.results(context, Fetch), (ok) => ok.reduce((sum, one) => sum + one.result, 0))
        })
        yield* startConsumer(connect(), { types: [Fetch, Report], concurrency: 2 })
        const producer = yield* connectProducer(connect())
        yield* DurableFlow.enqueue(Report, null, {
          id: "report-5",
          children: [DurableFlow.child(Fetch, "sales", { id: "c1" })]
        }).pipe(Effect.provideContext(producer))
        const dead = yield* Effect.flip(
          DurableQueue.result(Report, "report-5", { pollInterval: "50 millis" }).pipe(Effect.provideContext(producer))
        )
        assert.strictEqual(dead._tag, "JobDeadLettered")

        broken = false
        assert.isTrue(yield* DurableQueue.requeue("c1").pipe(Effect.provideContext(producer)))
        yield* waitUntil(
          "the parent's dead letter is gone",
          Effect.map(
            DurableQueue.deadLetters().pipe(Effect.provideContext(producer)),
            (letters) => letters.length === 0
          )
        )
        assert.strictEqual(
          yield* DurableQueue.result(Report, "report-5", { pollInterval: "50 millis" }).pipe(
            Effect.provideContext(producer)
          ),
          5
        )
      }),
    30_000
  )

  test(
    "a child that is a flow itself: its parent waits for it, and its failure reaches the top",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const ran: Array<string> = []
        const Fetch = JobType.make({
          name: "fetch",
          payload: Schema.String,
          result: Schema.Int,
          maxAttempts: 1,
          handler: (source, { id }) =>
            Effect.suspend(() => {
              ran.push(id)
              return source === "broken" ? Effect.fail(new Boom({ source })) : Effect.succeed(source.length)
            })
        })
        const Region = JobType.make({
          name: "region",
          payload: Schema.String,
          result: Schema.Int,
          handler: (_, context) =>
            Effect.gen(function*() {
              ran.push(context.id)
              const fetched = yield* DurableFlow.results(context, Fetch)
              return fetched.reduce((sum, one) => sum + one.result, 0)
            })
        })
        const Report = JobType.make({
          name: "report",
          payload: Schema.Null,
          result: Schema.Struct({ regions: Schema.Array(Schema.Int), direct: Schema.Array(Schema.Int) }),
          handler: (_, context) =>
            Effect.gen(function*() {
              ran.push(context.id)
              return {
                regions: (yield* DurableFlow.results(context, Region)).map((one) => one.result),
                direct: (yield* DurableFlow.results(context, Fetch)).map((one) => one.result)
              }
            })
        })
        yield* startConsumer(connect(), { types: [Fetch, Region, Report], concurrency: 4 })
        const producer = yield* connectProducer(connect())
        const tree = (prefix: string, leaf: string) => [
          DurableFlow.child(Region, "eu", {
            id: `${prefix}-eu`,
            children: [
              DurableFlow.child(Fetch, "sales", { id: `${prefix}-eu-sales` }),
              DurableFlow.child(Fetch, leaf, { id: `${prefix}-eu-leaf` })
            ]
          }),
          DurableFlow.child(Fetch, "us", { id: `${prefix}-us` })
        ]
        yield* DurableFlow.enqueue(Report, null, { id: "ok", children: tree("ok", "costs") }).pipe(
          Effect.provideContext(producer)
        )
        const report = yield* DurableQueue.result(Report, "ok", { pollInterval: "50 millis" }).pipe(
          Effect.provideContext(producer)
        )
        assert.deepStrictEqual(report, { regions: [5 + 5], direct: [2] })
        // each parent ran once, after its own children
        const order = ran.filter((id) => id.startsWith("ok"))
        assert.strictEqual(order.filter((id) => id === "ok-eu").length, 1)
        assert.isTrue(order.indexOf("ok-eu") > Math.max(order.indexOf("ok-eu-sales"), order.indexOf("ok-eu-leaf")))
        assert.deepStrictEqual(order.filter((id) => id === "ok"), ["ok"])
        assert.isTrue(order.indexOf("ok") > Math.max(order.indexOf("ok-eu"), order.indexOf("ok-us")))

        yield* DurableFlow.enqueue(Report, null, { id: "bad", children: tree("bad", "broken") }).pipe(
          Effect.provideContext(producer)
        )
        const dead = yield* Effect.flip(
          DurableQueue.result(Report, "bad", { pollInterval: "50 millis" }).pipe(Effect.provideContext(producer))
        )
        assert(dead._tag === "JobDeadLettered", dead.message)
        assert.match(
          dead.error,
          /^Job bad \(report\): child bad-eu \(region\) was dead-lettered: Job bad-eu \(region\): child bad-eu-leaf \(fetch\)/
        )
        assert.isFalse(ran.includes("bad") || ran.includes("bad-eu"), "neither parent ran")
      }),
    30_000
  )

  test(
    "bad input is a typed error naming the option, and stores nothing; a second enqueue is a no-op",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const producer = yield* connectProducer(connect())
        const Fetch = JobType.define({ name: "fetch", payload: Schema.String, result: Schema.Int })
        const Notify = JobType.define({ name: "notify", payload: Schema.String })
        const Report = JobType.define({ name: "report", payload: Schema.Null })
        const enqueue = (options: DurableFlow.EnqueueOptions) =>
          Effect.flip(DurableFlow.enqueue(Report, null, { id: "r", ...options })).pipe(Effect.provideContext(producer))
        const option = (error: { readonly _tag: string }) =>
          error instanceof PoolError.InvalidOptions ? error.option : error._tag

        assert.strictEqual(option(yield* enqueue({ children: [] })), "children")
        assert.strictEqual(
          option(yield* enqueue({ children: [DurableFlow.child(Fetch, "a", { children: [] })] })),
          "children[0].children"
        )
        assert.strictEqual(
          option(
            yield* enqueue({
              children: [
                DurableFlow.child(Fetch, "a", { id: "x", children: [DurableFlow.child(Fetch, "b", { id: "x" })] })
              ]
            })
          ),
          "children[0].children[0].id"
        )
        assert.strictEqual(
          option(
            yield* enqueue({
              children: [DurableFlow.child(Fetch, "a", { id: "x" }), DurableFlow.child(Fetch, "b", { id: "x" })]
            })
          ),
          "children[1].id"
        )
        assert.strictEqual(
          option(yield* enqueue({ children: [DurableFlow.child(Fetch, "a", { id: "r" })] })),
          "children[0].id"
        )
        // @ts-expect-error a type without a `result` schema cannot be a flow's child
        const noResult = DurableFlow.child(Notify, "hi")
        assert.strictEqual(
          option(yield* enqueue({ children: [DurableFlow.child(Fetch, "a"), noResult] })),
          "children[1].type"
        )
        assert.strictEqual(
          option(yield* enqueue({ children: [DurableFlow.child(Fetch, "a")], onChildFailure: "ignore" as never })),
          "onChildFailure"
        )
        assert.strictEqual(option(yield* enqueue({ children: [DurableFlow.child(Fetch, 1 as never)] })), "EncodeFailed")
        // over the queue's maxPayloadBytes (1 MiB by default)
        assert.strictEqual(
          option(yield* enqueue({ children: [DurableFlow.child(Fetch, "x".repeat(2 * 1024 * 1024))] })),
          "PayloadTooLarge"
        )
        assert.strictEqual(
          option(yield* enqueue({ children: [DurableFlow.child(Fetch, "a", { id: "y".repeat(256) })] })),
          "InvalidJobId"
        )
        const notFound = yield* Effect.flip(DurableFlow.children({ id: "r" })).pipe(Effect.provideContext(producer))
        assert.strictEqual(notFound._tag, "FlowNotFound")

        // stored once: the second enqueue of the id changes nothing (its children are not enqueued)
        yield* DurableFlow.enqueue(Report, null, { id: "r", children: [DurableFlow.child(Fetch, "a", { id: "c-1" })] })
          .pipe(Effect.provideContext(producer))
        yield* DurableFlow.enqueue(Report, null, { id: "r", children: [DurableFlow.child(Fetch, "b", { id: "c-2" })] })
          .pipe(Effect.provideContext(producer))
        const children = yield* DurableFlow.children({ id: "r" }).pipe(Effect.provideContext(producer))
        assert.deepStrictEqual(children.map((child) => child.id), ["c-1"])
        // a child id belongs to one flow
        const taken = yield* Effect.flip(
          DurableFlow.enqueue(Report, null, { id: "r2", children: [DurableFlow.child(Fetch, "a", { id: "c-1" })] })
        ).pipe(Effect.provideContext(producer))
        assert.strictEqual(option(taken), "children[0].id")
        assert.strictEqual(
          (yield* Effect.flip(DurableFlow.children({ id: "r2" })).pipe(Effect.provideContext(producer)))._tag,
          "FlowNotFound"
        )
        // nor may it be another flow's parent, nor a parent another flow's child: the queue would de-duplicate them
        const parentAsChild = yield* Effect.flip(
          DurableFlow.enqueue(Report, null, { id: "r3", children: [DurableFlow.child(Fetch, "a", { id: "r" })] })
        ).pipe(Effect.provideContext(producer))
        assert.strictEqual(option(parentAsChild), "children[0].id")
        const childAsParent = yield* Effect.flip(
          DurableFlow.enqueue(Report, null, { id: "c-1", children: [DurableFlow.child(Fetch, "a", { id: "r4" })] })
        ).pipe(Effect.provideContext(producer))
        assert.strictEqual(option(childAsParent), "id")
        // results of a type that keeps none
        assert.strictEqual(
          option(yield* Effect.flip(DurableFlow.results({ id: "r" }, Notify)).pipe(Effect.provideContext(producer))),
          "type"
        )

        // a queue whose store keeps no flows
        const queue = Context.get(producer, DurableQueue.Service)
        const noFlows = yield* Effect.flip(
          DurableFlow.enqueue(Report, null, { children: [DurableFlow.child(Fetch, "a")] })
        ).pipe(Effect.provideService(DurableQueue.Service, { ...queue, flows: undefined }))
        assert.strictEqual(noFlows._tag, "FlowsUnsupported")
      }),
    30_000
  )
})

describe.each(stores.filter((store) => store.flows))("DurableFlow retention on $name", (store) => {
  ;(store.skip ? it.live.skip : it.live)(
    "a finished flow goes with the queue's retention; a waiting one stays",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const Fetch = JobType.make({
          name: "fetch",
          payload: Schema.String,
          result: Schema.Int,
          handler: (s) => Effect.succeed(s.length)
        })
        const Report = JobType.make({
          name: "report",
          payload: Schema.Null,
          result: Schema.Int,
          handler: () => Effect.succeed(0)
        })
        const producer = yield* connectProducer(connect())
        yield* DurableFlow.enqueue(Report, null, { id: "done", children: [DurableFlow.child(Fetch, "a")] }).pipe(
          Effect.provideContext(producer)
        )
        const consumer = yield* startConsumer(connect(), { types: [Fetch, Report], concurrency: 2 })
        yield* DurableQueue.result(Report, "done", { pollInterval: "50 millis" }).pipe(Effect.provideContext(producer))
        yield* consumer.close
        yield* DurableFlow.enqueue(Report, null, { id: "waiting", children: [DurableFlow.child(Fetch, "b")] }).pipe(
          Effect.provideContext(producer)
        )
        const queue = Context.get(producer, DurableQueue.Service)
        yield* Effect.sleep("10 millis")
        yield* applyRetention({
          ...queue,
          retention: { ...queue.retention, completed: Duration.zero, deadLetters: Duration.zero }
        })
        const gone = yield* Effect.flip(DurableFlow.children({ id: "done" })).pipe(Effect.provideContext(producer))
        assert.strictEqual(gone._tag, "FlowNotFound")
        const kept = yield* DurableFlow.children({ id: "waiting" }).pipe(Effect.provideContext(producer))
        assert.deepStrictEqual(kept.map((child) => child.status), ["pending"])
      }),
    30_000
  )
})

describe.each(stores.filter((store) => store.sql))("DurableFlow cancellation on $name", (store) => {
  ;(store.skip ? it.live.skip : it.live)(
    "cancelling a waiting parent or a pending child",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        let parentRuns = 0
        const Fetch = JobType.make({
          name: "fetch",
          payload: Schema.String,
          result: Schema.Int,
          handler: (s) => Effect.succeed(s.length)
        })
        const Report = JobType.make({
          name: "report",
          payload: Schema.Null,
          result: Schema.Int,
          handler: () => Effect.sync(() => ++parentRuns)
        })
        const producer = yield* connectProducer(connect())
        const run = <A, E>(effect: Effect.Effect<A, E, DurableQueue.Service>) => Effect.provideContext(effect, producer)
        yield* run(
          DurableFlow.enqueue(Report, null, { id: "p1", children: [DurableFlow.child(Fetch, "a", { id: "p1-a" })] })
        )
        yield* run(DurableFlow.enqueue(Report, null, {
          id: "p2",
          children: [DurableFlow.child(Fetch, "a", { id: "p2-a" }), DurableFlow.child(Fetch, "b", { id: "p2-b" })]
        }))
        // the parent waits in the flow table: cancelled there
        assert.strictEqual(yield* run(DurableQueue.cancel("p1")), "cancelled")
        assert.strictEqual(yield* run(DurableQueue.cancel("p1")), "failed")
        const cancelled = yield* Effect.flip(run(DurableQueue.result(Report, "p1", { pollInterval: "50 millis" })))
        assert.strictEqual(cancelled._tag, "JobCancelled")
        // a cancelled child is a dead child: its parent is dead-lettered, naming it
        assert.strictEqual(yield* run(DurableQueue.cancel("p2-b")), "cancelled")
        const dead = yield* Effect.flip(run(DurableQueue.result(Report, "p2", { pollInterval: "50 millis" })))
        assert(dead._tag === "JobDeadLettered", dead.message)
        assert.match(dead.error, /child p2-b \(fetch\) was dead-lettered: cancelled/)

        const consumer = yield* startConsumer(connect(), { types: [Fetch, Report], concurrency: 2 })
        yield* waitUntil(
          "the remaining children ran",
          Effect.map(WorkerPool.stats(consumer.worker.pool), (stats) => stats.succeeded === 2)
        )
        yield* Effect.sleep("500 millis")
        assert.strictEqual(parentRuns, 0, "neither parent runs")
        const children = yield* run(DurableFlow.children({ id: "p1" }))
        assert.deepStrictEqual(children.map((child) => child.status), ["succeeded"])
      }),
    30_000
  )
})

describe.each(stores.filter((store) => store.flows))("DurableFlow review fixes on $name", (store) => {
  const test = store.skip ? it.live.skip : it.live

  if (store.ordering) {
    test("children take their type's priority, and so does the parent the flow offers", () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const runs: Array<string> = []
        const Filler = JobType.make({
          name: "filler",
          payload: Schema.Int,
          handler: (n) => Effect.sync(() => runs.push(`filler-${n}`))
        })
        const Fetch = JobType.make({
          name: "fetch",
          payload: Schema.String,
          result: Schema.Int,
          priority: 10,
          handler: (source, { id }) => Effect.sync(() => runs.push(id)).pipe(Effect.as(source.length))
        })
        const Report = JobType.make({
          name: "report",
          payload: Schema.Null,
          result: Schema.Int,
          priority: 10,
          handler: (_, context) =>
            Effect.gen(function*() {
              runs.push(context.id)
              return (yield* DurableFlow.results(context, Fetch)).length
            })
        })
        const producer = yield* connectProducer(connect())
        const run = <A, E>(effect: Effect.Effect<A, E, DurableQueue.Service>) => Effect.provideContext(effect, producer)
        for (let n = 0; n < 3; n++) yield* run(DurableQueue.enqueue(Filler, n, { id: `filler-${n}` }))
        yield* run(DurableFlow.enqueue(Report, null, {
          id: "report",
          children: [DurableFlow.child(Fetch, "a", { id: "fetch-a" }), DurableFlow.child(Fetch, "b", { id: "fetch-b" })]
        }))
        // one job at a time: the claim order is the run order
        yield* startConsumer(connect(), { types: [Filler, Fetch, Report], concurrency: 1 })
        yield* waitUntil("every job ran", Effect.sync(() => runs.length === 6))
        assert.deepStrictEqual(runs, ["fetch-a", "fetch-b", "report", "filler-0", "filler-1", "filler-2"])
      }), 30_000)
  }
  // Redis: a nested parent can be re-queued while its revived flow offers it too (see the README's Redis section)
  if (store.atomic) {
    test(
      "requeueAll brings a failed flow back through its dead children: the parent runs once, every child succeeded",
      () =>
        Effect.gen(function*() {
          const connect = yield* store.open
          let broken = true
          const parentRuns: Array<ReadonlyArray<string>> = []
          const Fetch = JobType.make({
            name: "fetch",
            payload: Schema.String,
            result: Schema.Int,
            maxAttempts: 1,
            handler: (source) =>
              broken && source === "flaky" ? Effect.fail(new Boom({ source })) : Effect.succeed(source.length)
          })
          const Region = JobType.make({
            name: "region",
            payload: Schema.Null,
            result: Schema.Int,
            handler: (_, context) =>
              Effect.map(DurableFlow.results(context, Fetch), (ok) => ok.reduce((sum, one) => sum + one.result, 0))
          })
          const Report = JobType.make({
            name: "report",
            payload: Schema.Null,
            result: Schema.Array(Schema.String),
            handler: (_, context) =>
              Effect.gen(function*() {
                const all = yield* DurableFlow.children(context)
                const seen = all.map((child) => `${child.id}:${child.status}`)
                parentRuns.push(seen)
                return seen
              })
          })
          yield* startConsumer(connect(), { types: [Fetch, Region, Report], concurrency: 2 })
          const producer = yield* connectProducer(connect())
          const run = <A, E>(effect: Effect.Effect<A, E, DurableQueue.Service>) =>
            Effect.provideContext(effect, producer)
          yield* run(DurableFlow.enqueue(Report, null, {
            id: "t",
            children: [
              DurableFlow.child(Fetch, "flaky", { id: "a" }),
              DurableFlow.child(Fetch, "fine", { id: "b" }),
              DurableFlow.child(Region, null, {
                id: "r",
                children: [DurableFlow.child(Fetch, "flaky", { id: "r-a" })]
              })
            ]
          }))
          yield* waitUntil(
            "a, r-a, r and t are dead letters",
            Effect.map(run(DurableQueue.deadLetters()), (letters) => letters.length === 4)
          )
          assert.deepStrictEqual(parentRuns, [])

          broken = false
          // the dead children are re-queued; the parents (t, r) come back when they succeed
          assert.strictEqual(yield* run(DurableQueue.requeueAll()), 2)
          yield* waitUntil(
            "the parents' dead letters are gone",
            Effect.map(run(DurableQueue.deadLetters()), (letters) => letters.length === 0)
          )
          assert.deepStrictEqual(yield* run(DurableQueue.result(Report, "t", { pollInterval: "50 millis" })), [
            "a:succeeded",
            "b:succeeded",
            "r:succeeded"
          ])
          yield* Effect.sleep("300 millis")
          assert.strictEqual(parentRuns.length, 1, `the parent ran ${parentRuns.length} times: ${parentRuns}`)
        }),
      30_000
    )
  }
  if (store.atomic) {
    test(
      "a flow whose nested node fails to store leaves nothing behind, and can be enqueued again",
      () =>
        Effect.gen(function*() {
          const connect = yield* store.open
          const ran: Array<string> = []
          const Fetch = JobType.make({
            name: "fetch",
            payload: Schema.String,
            result: Schema.Int,
            handler: (source, { id }) => Effect.sync(() => ran.push(id)).pipe(Effect.as(source.length))
          })
          const Region = JobType.make({
            name: "region",
            payload: Schema.Null,
            result: Schema.Int,
            handler: () => Effect.succeed(0)
          })
          const Report = JobType.make({
            name: "report",
            payload: Schema.Null,
            result: Schema.Array(Schema.String),
            handler: (_, context) => Effect.map(DurableFlow.children(context), (all) => all.map((child) => child.id))
          })
          const producer = yield* connectProducer(connect())
          const run = <A, E>(effect: Effect.Effect<A, E, DurableQueue.Service>) =>
            Effect.provideContext(effect, producer)
          // "x" is another flow's child
          yield* run(
            DurableFlow.enqueue(Report, null, { id: "other", children: [DurableFlow.child(Fetch, "x", { id: "x" })] })
          )
          const failed = yield* Effect.flip(run(DurableFlow.enqueue(Report, null, {
            id: "t",
            children: [
              DurableFlow.child(Fetch, "a", { id: "a" }),
              DurableFlow.child(Region, null, { id: "m", children: [DurableFlow.child(Fetch, "x", { id: "x" })] })
            ]
          })))
          assert(failed instanceof PoolError.InvalidOptions, failed._tag)
          assert.strictEqual(failed.option, "children[1].children[0].id")
          for (const id of ["t", "m"]) {
            assert.strictEqual((yield* Effect.flip(run(DurableFlow.children({ id }))))._tag, "FlowNotFound")
          }
          // enqueued again (fixed), the flow is stored as given this time
          assert.strictEqual(
            yield* run(
              DurableFlow.enqueue(Report, null, { id: "t", children: [DurableFlow.child(Fetch, "a", { id: "a" })] })
            ),
            "t"
          )
          assert.deepStrictEqual((yield* run(DurableFlow.children({ id: "t" }))).map((child) => child.id), ["a"])
          yield* startConsumer(connect(), { types: [Fetch, Region, Report], concurrency: 2 })
          assert.deepStrictEqual(yield* run(DurableQueue.result(Report, "t", { pollInterval: "50 millis" })), ["a"])
          yield* run(DurableQueue.result(Report, "other", { pollInterval: "50 millis" }))
          yield* Effect.sleep("300 millis")
          assert.deepStrictEqual([...ran].sort(), ["a", "x"], "each child ran once")
        }),
      30_000
    )
  }
  test("retention keeps an offered flow until its parent has run", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const Fetch = JobType.make({
        name: "fetch",
        payload: Schema.String,
        result: Schema.Int,
        handler: (s) => Effect.succeed(s.length)
      })
      const Report = JobType.make({
        name: "report",
        payload: Schema.Null,
        result: Schema.Array(Schema.Int),
        handler: (_, context) => Effect.map(DurableFlow.results(context, Fetch), (ok) => ok.map((one) => one.result))
      })
      const producer = yield* connectProducer(connect())
      const run = <A, E>(effect: Effect.Effect<A, E, DurableQueue.Service>) => Effect.provideContext(effect, producer)
      const queue = Context.get(producer, DurableQueue.Service)
      const retention = applyRetention({
        ...queue,
        retention: { ...queue.retention, completed: Duration.zero, deadLetters: Duration.zero }
      })
      yield* run(
        DurableFlow.enqueue(Report, null, { id: "p", children: [DurableFlow.child(Fetch, "abc", { id: "c" })] })
      )
      // the child succeeds (as a worker records it): the parent is offered, and waits in the queue
      yield* settleFlowChild(queue, "c", { status: "succeeded", result: "3" })
      yield* Effect.sleep("10 millis")
      yield* retention
      assert.deepStrictEqual((yield* run(DurableFlow.children({ id: "p" }))).map((child) => child.status), [
        "succeeded"
      ])
      yield* startConsumer(connect(), { types: [Fetch, Report], concurrency: 2 })
      assert.deepStrictEqual(yield* run(DurableQueue.result(Report, "p", { pollInterval: "50 millis" })), [3])
      // the parent has run: its flow goes with the next retention
      yield* Effect.sleep("10 millis")
      yield* retention
      assert.strictEqual((yield* Effect.flip(run(DurableFlow.children({ id: "p" }))))._tag, "FlowNotFound")
    }), 30_000)

  if (store.atomic) {
    test(
      "a child id that is a job already stored fails the enqueue, naming it, and stores no flow",
      () =>
        Effect.gen(function*() {
          const connect = yield* store.open
          const ran: Array<string> = []
          const Fetch = JobType.make({
            name: "fetch",
            payload: Schema.String,
            result: Schema.Int,
            handler: (source, { id }) => Effect.sync(() => ran.push(id)).pipe(Effect.as(source.length))
          })
          const Report = JobType.define({ name: "report", payload: Schema.Null, result: Schema.Int })
          const producer = yield* connectProducer(connect())
          const run = <A, E>(effect: Effect.Effect<A, E, DurableQueue.Service>) =>
            Effect.provideContext(effect, producer)
          yield* run(DurableQueue.enqueue(Fetch, "plain", { id: "busy" }))
          const failed = yield* Effect.flip(run(DurableFlow.enqueue(Report, null, {
            id: "p",
            children: [DurableFlow.child(Fetch, "a", { id: "a" }), DurableFlow.child(Fetch, "b", { id: "busy" })]
          })))
          assert(failed instanceof PoolError.InvalidOptions, failed._tag)
          assert.strictEqual(failed.option, "children[1].id")
          assert.match(failed.message, /an id not already stored/)
          assert.strictEqual((yield* Effect.flip(run(DurableFlow.children({ id: "p" }))))._tag, "FlowNotFound")
          yield* startConsumer(connect(), { types: [Fetch], concurrency: 2 })
          yield* waitUntil("the plain job ran", Effect.sync(() => ran.includes("busy")))
          yield* Effect.sleep("300 millis")
          // the SQL stores roll the child "a" back with the flow; the memory store cannot take back a job it queued
          // (it runs once, as a plain job, and reports to no flow)
          assert.deepStrictEqual([...ran].sort(), store.sql ? ["busy"] : ["a", "busy"])
        }),
      30_000
    )
  }
})

describe.each(stores.filter((store) => store.flows && store.sql))("DurableFlow outcome and flow on $name", (store) => {
  ;(store.skip ? it.live.skip : it.live)(
    "a child's outcome and its flow's record are one transaction: a failed settlement keeps neither",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        let runs = 0
        const Fetch = JobType.make({
          name: "fetch",
          payload: Schema.String,
          result: Schema.Int,
          maxAttempts: 2,
          retry: Schedule.spaced("10 millis"),
          handler: (source) => Effect.sync(() => ++runs).pipe(Effect.as(source.length))
        })
        const Report = JobType.make({
          name: "report",
          payload: Schema.Null,
          result: Schema.Array(Schema.Int),
          handler: (_, context) => Effect.map(DurableFlow.results(context, Fetch), (ok) => ok.map((one) => one.result))
        })
        const producer = yield* connectProducer(connect())
        const run = <A, E>(effect: Effect.Effect<A, E, DurableQueue.Service>) => Effect.provideContext(effect, producer)
        const queue = Context.get(producer, DurableQueue.Service)
        yield* run(
          DurableFlow.enqueue(Report, null, { id: "p", children: [DurableFlow.child(Fetch, "abc", { id: "c" })] })
        )
        // a consumer whose flow settlements fail (the database refused them, or the process died mid-way)
        const flows = queue.flows!
        const broken = {
          ...queue,
          flows: {
            ...flows,
            settle: () => Effect.fail(new StoreError({ operation: "settle flow child", cause: new Error("refused") }))
          }
        }
        const consumer = yield* startConsumer(Layer.succeed(DurableQueue.Service, broken), {
          types: [Fetch, Report],
          concurrency: 1
        })
        yield* waitUntil("the child ran", Effect.sync(() => runs >= 1))
        yield* consumer.close
        // the outcome does not say "succeeded" while the flow still waits for the child
        const outcome = yield* queue.outcomes.get(queue.name, "c")
        assert.strictEqual(outcome?.status, undefined, JSON.stringify(outcome))
        assert.deepStrictEqual((yield* run(DurableFlow.children({ id: "p" }))).map((child) => child.status), [
          "pending"
        ])
        // a healthy consumer runs the child's second attempt: the flow completes
        yield* startConsumer(connect(), { types: [Fetch, Report], concurrency: 1 })
        assert.deepStrictEqual(yield* run(DurableQueue.result(Report, "p", { pollInterval: "50 millis" })), [3])
        assert.strictEqual(runs, 2)
      }),
    30_000
  )
})

describe("DurableFlow on a SQL database other than SQLite and PostgreSQL", () => {
  it.live("the queue keeps no flows: enqueue fails with FlowsUnsupported", () =>
    Effect.gen(function*() {
      const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "fiberpool-flows-dialect-"))
      // SQLite, seen as a database of another dialect (MySQL, MSSQL...): `onDialectOrElse` takes `orElse`
      const otherDialect = Layer.effect(
        SqlClient.SqlClient,
        Effect.map(SqlClient.SqlClient, (client) =>
          new Proxy(client, {
            get: (target, key, receiver) =>
              key === "onDialectOrElse"
                ? (cases: { readonly orElse: () => unknown }) => cases.orElse()
                : Reflect.get(target, key, receiver)
          }))
      ).pipe(Layer.provide(SqliteClient.layer({ filename: Path.join(dir, "queue.db") })))
      const Fetch = JobType.define({ name: "fetch", payload: Schema.String, result: Schema.Int })
      const Report = JobType.define({ name: "report", payload: Schema.Null })
      const error = yield* Effect.flip(
        DurableFlow.enqueue(Report, null, { children: [DurableFlow.child(Fetch, "a")] })
      ).pipe(Effect.provide(DurableQueue.layerSql({ name: "other-dialect" }).pipe(Layer.provide(otherDialect))))
      assert.strictEqual(error._tag, "FlowsUnsupported")
    }), 30_000)
})
