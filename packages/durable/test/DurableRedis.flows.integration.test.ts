/**
 * Flows on the Redis store (`internal/flowsRedis.ts`), beyond the suite over `stores` (flows.integration.test.ts,
 * which runs on Redis too): what is particular to Redis: a process that dies between a child's settlement and its parent's offer (or dead letter)
 * loses nothing, and the keys stay under the prefix. Needs FIBERPOOL_TEST_REDIS_URL (`eval "$(.ci/redis.sh start)"`).
 */
import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { DurableFlow, DurableQueue, JobType } from "@fiberpool/durable"
import { Context, Effect, Layer, Schema } from "effect"
import { Redis } from "effect/persistence"
import { applyRetention, maintain } from "../src/DurableQueue.ts"
import { connectProducer, redisUrl, startConsumer, stores, waitUntil } from "./utils/stores.ts"

const test = redisUrl === undefined || redisUrl === "" ? it.live.skip : it.live
const redisStore = stores.find((store) => store.name === "redis")!

const client = Effect.map(
  Layer.build(NodeRedis.layer({ url: redisUrl ?? "" })),
  (context) => Context.get(context, Redis.Redis)
)

const Fetched = Schema.Struct({ source: Schema.String, rows: Schema.Int })

/** A fetch child and a report parent that records its runs and the results it read. */
const makeTypes = () => {
  const runs: Array<string> = []
  const Fetch = JobType.make({
    name: "fetch",
    payload: Schema.String,
    result: Fetched,
    maxAttempts: 1,
    handler: (source) =>
      source === "broken"
        ? Effect.fail(`cannot fetch ${source}`)
        : Effect.sync(() => (runs.push(`child ${source}`), { source, rows: source.length }))
  })
  const Report = JobType.make({
    name: "report",
    payload: Schema.Struct({ month: Schema.String }),
    result: Schema.Array(Schema.String),
    handler: (_, context) =>
      Effect.gen(function*() {
        const fetched = yield* DurableFlow.results(context, Fetch)
        const line = fetched.map((one) => `${one.id}=${one.result.source}:${one.result.rows}`)
        runs.push(`parent ${context.id} ${line.join(",")}`)
        return line
      })
  })
  return { runs, Fetch, Report }
}

describe("flows on redis", () => {
  test(
    "a process that dies between the last child's settlement and the parent's offer: the maintenance offers it after the lease, once",
    () =>
      Effect.gen(function*() {
        const connect = yield* redisStore.open
        const { Fetch, Report, runs } = makeTypes()
        const producer = yield* connectProducer(connect())
        const queue = Context.get(producer, DurableQueue.Service)
        const flows = queue.flows!
        yield* DurableFlow.enqueue(Report, { month: "10" }, {
          id: "report-2",
          children: [DurableFlow.child(Fetch, "sales", { id: "c-1" }), DurableFlow.child(Fetch, "costs", { id: "c-2" })]
        }).pipe(Effect.provideContext(producer))
        // what a worker does when its children complete, up to the script; then it dies (no offer, no clear)
        const now = Date.now()
        yield* Effect.orDie(
          flows.settle(queue.name, "c-1", { status: "succeeded", result: "{\"source\":\"x\",\"rows\":1}" }, now)
        )
        const last = yield* Effect.orDie(
          flows.settle(queue.name, "c-2", { status: "succeeded", result: "{\"source\":\"y\",\"rows\":2}" }, now)
        )
        assert.strictEqual(last._tag, "Runnable")
        const settledAt = Date.now()
        // a consumer starts: it runs the two children still queued (their reports are no-ops now)
        yield* startConsumer(connect(), { types: [Fetch, Report], concurrency: 2 })
        yield* waitUntil("the children ran again", Effect.sync(() => runs.length >= 2))
        // within the lease (3 s, testDefaults), the mark is the dead process's: nobody offers the parent
        assert.isBelow(Date.now() - settledAt, 2_500)
        yield* Effect.orDie(maintain(queue))
        yield* Effect.sleep("300 millis")
        assert.deepStrictEqual(runs.filter((r) => r.startsWith("parent")), [])
        // after the lease, the next maintenance round (here by hand; the consumer's own runs every 5 s) offers it
        yield* Effect.sleep(`${Math.max(0, settledAt + 3_200 - Date.now())} millis`)
        yield* Effect.orDie(maintain(queue))
        const result = yield* DurableQueue.result(Report, "report-2", { pollInterval: "50 millis" }).pipe(
          Effect.provideContext(producer)
        )
        assert.deepStrictEqual(result, ["c-1=x:1", "c-2=y:2"], "the results of the first settlements")
        // further rounds, here and in the consumer, do not offer it again
        yield* Effect.orDie(maintain(queue))
        yield* Effect.sleep("500 millis")
        assert.deepStrictEqual(runs.filter((r) => r.startsWith("parent")), ["parent report-2 c-1=x:1,c-2=y:2"])
        const redis = yield* client
        assert.strictEqual(Number(yield* redis.send("ZCARD", `${connect.prefix}${connect.queueName}:fp:flow:marks`)), 0)
      }),
    20_000
  )

  test(
    "a process that dies between a child's failure and the parent's dead letter: a worker's maintenance writes it",
    () =>
      Effect.gen(function*() {
        const connect = yield* redisStore.open
        const { Fetch, Report } = makeTypes()
        const producer = yield* connectProducer(connect())
        const queue = Context.get(producer, DurableQueue.Service)
        yield* DurableFlow.enqueue(Report, { month: "10" }, {
          id: "report-3",
          children: [
            DurableFlow.child(Fetch, "sales", { id: "d-1" }),
            DurableFlow.child(Fetch, "broken", { id: "d-2" })
          ]
        }).pipe(Effect.provideContext(producer))
        const failed = yield* Effect.orDie(
          queue.flows!.settle(queue.name, "d-2", { status: "dead", error: "disk full" }, Date.now())
        )
        assert.strictEqual(failed._tag, "Failed")
        assert.isUndefined(yield* Effect.orDie(queue.outcomes.get(queue.name, "report-3")))
        // the consumer's own maintenance (d-2 fails again when it runs: a second "dead" report is a no-op) (every 5 s) takes the mark over once the 3 s lease has passed
        yield* startConsumer(connect(), { types: [Fetch, Report], concurrency: 2 })
        const dead = yield* Effect.flip(
          DurableQueue.result(Report, "report-3", { pollInterval: "100 millis" }).pipe(Effect.provideContext(producer))
        )
        assert(dead._tag === "JobDeadLettered", dead.message)
        assert.match(dead.error, /^Job report-3 \(report\): child d-2 \(fetch\) was dead-lettered: disk full/)
        const redis = yield* client
        yield* waitUntil(
          "the mark is cleared",
          Effect.map(
            redis.send("ZCARD", `${connect.prefix}${connect.queueName}:fp:flow:marks`),
            (n) => Number(n) === 0
          )
        )
      }),
    20_000
  )

  test(
    "a process that dies inside DurableFlow.enqueue, before offering the children: enqueuing it again completes it",
    () =>
      Effect.gen(function*() {
        const connect = yield* redisStore.open
        const { Fetch, Report, runs } = makeTypes()
        const producer = yield* connectProducer(connect())
        const queue = Context.get(producer, DurableQueue.Service)
        const children = [
          DurableFlow.child(Fetch, "sales", { id: "e-1" }),
          DurableFlow.child(Fetch, "costs", { id: "e-2" })
        ]
        // the flow's script ran, no child was offered: what a process killed right after it leaves
        const envelope = { type: "report", id: "report-4", payload: { month: "10" } }
        assert.strictEqual(
          yield* Effect.orDie(queue.flows!.create(queue.name, {
            parentId: "report-4",
            parentOf: undefined,
            parentType: "report",
            envelope: JSON.stringify(envelope),
            onChildFailure: "fail-parent",
            children: [{ childId: "e-1", childType: "fetch" }, { childId: "e-2", childType: "fetch" }]
          }, Date.now())),
          "created"
        )
        yield* startConsumer(connect(), { types: [Fetch, Report], concurrency: 2 })
        yield* Effect.sleep("500 millis")
        assert.deepStrictEqual(runs, [], "nothing to run")
        // the producer retries its enqueue: the children are offered, the parent runs once
        yield* DurableFlow.enqueue(Report, { month: "10" }, { id: "report-4", children }).pipe(
          Effect.provideContext(producer)
        )
        assert.deepStrictEqual(
          yield* DurableQueue.result(Report, "report-4", { pollInterval: "50 millis" }).pipe(
            Effect.provideContext(producer)
          ),
          ["e-1=sales:5", "e-2=costs:5"]
        )
        // once more: the children are de-duplicated by their ids, nothing runs again
        yield* DurableFlow.enqueue(Report, { month: "10" }, { id: "report-4", children }).pipe(
          Effect.provideContext(producer)
        )
        yield* Effect.sleep("500 millis")
        assert.deepStrictEqual([...runs].sort(), [
          "child costs",
          "child sales",
          "parent report-4 e-1=sales:5,e-2=costs:5"
        ])
        // another flow under the same parent id (other children) is a duplicate, as on every store: nothing written
        yield* DurableFlow.enqueue(Report, { month: "10" }, {
          id: "report-4",
          children: [DurableFlow.child(Fetch, "other", { id: "e-3" })]
        }).pipe(Effect.provideContext(producer))
        yield* Effect.sleep("300 millis")
        assert.isFalse(runs.includes("child other"))
      }),
    20_000
  )

  test(
    "every key is under the prefix; ids ending as effect's keys do break nothing; retention removes finished flows",
    () =>
      Effect.gen(function*() {
        const connect = yield* redisStore.open
        const { Fetch, Report } = makeTypes()
        const producer = yield* connectProducer(
          connect({ retention: { completed: "1 millis", deadLetters: "1 millis" } })
        )
        yield* startConsumer(connect(), { types: [Fetch, Report], concurrency: 2 })
        const run = <X, E>(effect: Effect.Effect<X, E, DurableQueue.Service>) => Effect.provideContext(effect, producer)
        yield* run(DurableFlow.enqueue(Report, { month: "10" }, {
          id: "p:ids",
          children: [
            DurableFlow.child(Fetch, "sales", { id: "c:failed" }),
            DurableFlow.child(Fetch, "x", { id: "c:ids" })
          ]
        }))
        assert.deepStrictEqual(yield* run(DurableQueue.result(Report, "p:ids", { pollInterval: "50 millis" })), [
          "c:failed=sales:5",
          "c:ids=x:1"
        ])
        const redis = yield* client
        const scan = Effect.map(
          redis.send<[string, Array<string>]>("SCAN", "0", "MATCH", `${connect.prefix}*`, "COUNT", "100000"),
          ([, keys]) => keys
        )
        const effectKeys = ["ids", "failed"].map((end) => `${connect.prefix}${connect.queueName}:${end}`)
        for (const key of yield* scan) {
          if (effectKeys.includes(key)) continue
          assert.isFalse(key.endsWith(":ids") || key.endsWith(":failed"), key)
        }
        assert.isTrue((yield* scan).some((key) => key.endsWith(":order")), "the flow's children list")
        yield* Effect.sleep("20 millis")
        yield* Effect.orDie(applyRetention(Context.get(producer, DurableQueue.Service)))
        const left = (yield* scan).filter((key) => key.includes(":fp:flow:"))
        assert.deepStrictEqual(left, [], "the finished flow's keys are gone")
        const gone = yield* Effect.flip(run(DurableFlow.children({ id: "p:ids" })))
        assert.strictEqual(gone._tag, "FlowNotFound")
      }),
    20_000
  )
})
