import { assert, describe, it } from "@effect/vitest"
import { DurableQueue, JobType } from "@fiberpool/durable"
import * as DurablePg from "@fiberpool/durable/DurablePg"
import { Effect, Layer, Redacted, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { connectProducer, pgUrl, startConsumer, stores, waitUntil } from "./utils/stores.ts"

const MiB = 1024 * 1024
const bigText = (bytes: number) => "x".repeat(bytes)

const Blob = JobType.make({
  name: "blob",
  payload: Schema.Struct({ data: Schema.String }),
  result: Schema.Number,
  handler: ({ data }) => Effect.succeed(data.length)
})

const Greet = JobType.make({
  name: "greet",
  payload: Schema.Struct({ name: Schema.String }),
  result: Schema.String,
  handler: ({ name }) => Effect.succeed(`hello ${name}`)
})

/** The state of a job's row in PersistedQueue's table. */
const rowState = (id: string, queue: string) =>
  Effect.gen(function*() {
    const sql = yield* SqlClient.SqlClient
    const rows = yield* sql<{ readonly state: string }>`
      SELECT state FROM effect_queue WHERE queue_name = ${queue} AND id = ${id}`
    return rows.map((row) => row.state)
  })

describe.each(stores)("limits on $name", (store) => {
  const test = store.skip ? it.live.skip : it.live
  // Row-level behaviour exists only on the SQL stores: on the memory store these cases are not declared at
  // all (CI fails on a skipped test, and a case that cannot apply is no skip).
  const sqlTest: typeof test = store.sql ? test : ((() => undefined) as unknown as typeof test)

  test("a 17 MiB payload is refused at enqueue with a typed error, and stores nothing", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const producer = yield* connectProducer(connect())
      const error = yield* Effect.flip(
        DurableQueue.enqueue(Blob, { data: bigText(17 * MiB) }, { id: "huge" }).pipe(Effect.provideContext(producer))
      )
      assert(error._tag === "PayloadTooLarge", error.message)
      assert.isAbove(error.bytes, 17 * MiB)
      assert.strictEqual(error.maxBytes, DurableQueue.defaultMaxPayloadBytes)
      assert.match(error.message, /maxPayloadBytes/)
      // the same through enqueueEncoded, and the limit is configurable
      const small = yield* Layer.build(
        store.shared ? connect({ maxPayloadBytes: 1000 }) : DurableQueue.layerMemory({ maxPayloadBytes: 1000 })
      )
      const encoded = yield* Effect.flip(
        DurableQueue.enqueueEncoded("blob", { data: bigText(2000) }).pipe(Effect.provideContext(small))
      )
      assert.strictEqual(encoded._tag, "PayloadTooLarge")
      // nothing was stored: a worker runs the next job and nothing else
      yield* startConsumer(connect(), { types: [Blob], concurrency: 2 })
      yield* DurableQueue.enqueue(Blob, { data: "ok" }, { id: "small" }).pipe(Effect.provideContext(producer))
      assert.strictEqual(yield* DurableQueue.result(Blob, "small").pipe(Effect.provideContext(producer)), 2)
      assert.deepStrictEqual(yield* DurableQueue.deadLetters().pipe(Effect.provideContext(producer)), [])
    }), 60_000)

  test("bad ids, type names and queue options are typed errors, not defects", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const producer = yield* connectProducer(connect())
      const run = <A, E>(effect: Effect.Effect<A, E, DurableQueue.Service>) =>
        Effect.flip(effect.pipe(Effect.provideContext(producer)))

      const long = yield* run(DurableQueue.enqueue(Greet, { name: "a" }, { id: "x".repeat(256) }))
      assert(long._tag === "InvalidJobId", long.message)
      assert.strictEqual(long.length, 256)
      assert.strictEqual((yield* run(DurableQueue.enqueue(Greet, { name: "a" }, { id: "" })))._tag, "InvalidJobId")
      // 255 characters is fine
      assert.strictEqual(
        yield* DurableQueue.enqueue(Greet, { name: "a" }, { id: "y".repeat(255) }).pipe(
          Effect.provideContext(producer)
        ),
        "y".repeat(255)
      )

      const bigint = yield* run(DurableQueue.enqueueEncoded("greet", { n: 1n }))
      assert.strictEqual(bigint._tag, "EncodeFailed")
      const noType = yield* run(DurableQueue.enqueueEncoded("", {}))
      assert(noType._tag === "InvalidOptions" && noType.option === "type", noType.message)
      const delay = yield* run(DurableQueue.enqueue(Greet, { name: "a" }, { delay: "soon" as any }))
      assert(delay._tag === "InvalidOptions" && delay.option === "delay", delay.message)

      const Bad = JobType.make({ name: "bad", payload: Schema.Null, maxAttempts: 0, handler: () => Effect.void })
      const badType = yield* run(DurableQueue.enqueue(Bad, null))
      assert(badType._tag === "InvalidOptions" && badType.option === "JobType(bad).maxAttempts", badType.message)
      const NoName = JobType.make({ name: "", payload: Schema.Null, handler: () => Effect.void })
      assert.strictEqual((yield* run(DurableQueue.enqueue(NoName, null)))._tag, "InvalidOptions")

      const NoResult = JobType.make({ name: "void", payload: Schema.Null, handler: () => Effect.void })
      const noResult = yield* run(DurableQueue.result(NoResult, "j"))
      assert(noResult._tag === "InvalidOptions" && noResult.option === "result", noResult.message)

      const open = (options: DurableQueue.SqlOptions) =>
        Layer.build(store.shared ? connect(options) : DurableQueue.layerMemory(options))
      const badQueue = yield* Effect.flip(open({ name: "" }))
      assert.strictEqual((badQueue as { _tag: string })._tag, "InvalidOptions")
      const badLimit = yield* Effect.flip(open({ maxPayloadBytes: -1 }))
      assert.strictEqual((badLimit as { option: string }).option, "maxPayloadBytes")
    }), 60_000)

  sqlTest(
    "a stored job over the worker's limit is dead-lettered with its reason, and the jobs behind it run",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        // a producer with a larger limit than the workers (a misconfiguration, or an older release)
        const producer = yield* connectProducer(connect({ maxPayloadBytes: 32 * MiB }))
        yield* DurableQueue.enqueue(Blob, { data: bigText(17 * MiB) }, { id: "huge" }).pipe(
          Effect.provideContext(producer)
        )
        yield* DurableQueue.enqueue(Blob, { data: "behind" }, { id: "behind" }).pipe(Effect.provideContext(producer))
        yield* startConsumer(connect({ maintenanceInterval: "300 millis" }), { types: [Blob], concurrency: 2 })

        assert.strictEqual(yield* DurableQueue.result(Blob, "behind").pipe(Effect.provideContext(producer)), 6)
        const dead = yield* Effect.flip(DurableQueue.result(Blob, "huge").pipe(Effect.provideContext(producer)))
        assert(dead._tag === "JobDeadLettered", dead.message)
        assert.match(dead.error, /over this worker's limit of 1048576 \(option "maxPayloadBytes"\)/)
        // listed by a connection with the default limit: the payload is not read
        const reader = yield* connectProducer(connect())
        const letters = yield* DurableQueue.deadLetters({ type: "blob" }).pipe(Effect.provideContext(reader))
        assert.deepStrictEqual(letters.map((l) => [l.id, l.type]), [["huge", "blob"]])
        assert.isUndefined(letters[0].payload, "a row too large to read is listed without its payload")
        assert.deepStrictEqual(yield* rowState("huge", connect.queueName).pipe(Effect.provide(connect.sql!)), [
          "failed"
        ])
      }),
    90_000
  )

  sqlTest(
    "a running worker does not claim a job over its limit that arrives later: it stays pending, unrun, and the jobs behind it run",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const ran: Array<string> = []
        const Tracked = JobType.make({
          name: "tracked",
          payload: Schema.Struct({ data: Schema.String }),
          result: Schema.Number,
          handler: ({ data }) => Effect.sync(() => ran.push(data.slice(0, 10))).pipe(Effect.as(data.length))
        })
        // the worker's maintenance ran at its start, on an empty queue, and not again during the test
        yield* startConsumer(connect({ maintenanceInterval: "1 hour" }), { types: [Tracked], concurrency: 4 })
        const producer = yield* connectProducer(connect({ maxPayloadBytes: 32 * MiB }))
        yield* DurableQueue.enqueue(Tracked, { data: bigText(2 * MiB) }, { id: "large" }).pipe(
          Effect.provideContext(producer)
        )
        yield* DurableQueue.enqueue(Tracked, { data: "behind" }, { id: "behind" }).pipe(Effect.provideContext(producer))
        assert.strictEqual(yield* DurableQueue.result(Tracked, "behind").pipe(Effect.provideContext(producer)), 6)
        // claimed, it would have run (the payload decodes): the claim leaves it for the maintenance
        assert.deepStrictEqual(ran, ["behind"])
        const row = yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          return yield* sql<{ readonly state: string; readonly attempts: number | string }>`
            SELECT state, attempts FROM effect_queue WHERE queue_name = ${connect.queueName} AND id = 'large'`
        }).pipe(Effect.provide(connect.sql!))
        assert.deepStrictEqual(row.map((r) => [r.state, Number(r.attempts)]), [["pending", 0]])
      }),
    60_000
  )

  sqlTest(
    "a stored row whose JSON cannot be read ends as a listed dead letter, and result() answers",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const producer = yield* connectProducer(connect())
        yield* startConsumer(connect({ maintenanceInterval: "300 millis" }), { types: [Greet], concurrency: 2 })
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const now = sql.onDialectOrElse({
            pg: () => sql.literal("NOW()"),
            orElse: () => sql.literal("CURRENT_TIMESTAMP")
          })
          yield* sql`
          INSERT INTO effect_queue (id, queue_name, element, state, attempts, visible_at, created_at, updated_at)
          VALUES ('broken', ${connect.queueName}, '{"type":"greet","id":"broken","payload":{"na', 'pending', 0,
            ${now}, ${now}, ${now})`
        }).pipe(Effect.provide(connect.sql!))
        yield* DurableQueue.enqueue(Greet, { name: "Ada" }, { id: "good" }).pipe(Effect.provideContext(producer))

        assert.strictEqual(yield* DurableQueue.result(Greet, "good").pipe(Effect.provideContext(producer)), "hello Ada")
        const dead = yield* Effect.flip(DurableQueue.result(Greet, "broken").pipe(Effect.provideContext(producer)))
        assert(dead._tag === "JobDeadLettered", dead.message)
        assert.strictEqual(dead.jobType, "greet")
        assert.match(dead.error, /the stored job cannot be read: .*JSON/)
        const letters = yield* DurableQueue.deadLetters().pipe(Effect.provideContext(producer))
        assert.deepStrictEqual(letters.map((l) => l.id), ["broken"])
        assert.deepStrictEqual(yield* rowState("broken", connect.queueName).pipe(Effect.provide(connect.sql!)), [
          "failed"
        ])
      }),
    60_000
  )

  sqlTest(
    "a dead letter's row says failed, and requeue puts the same row back to pending",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const runs: Array<number> = []
        const Hopeless = JobType.make({
          name: "hopeless",
          payload: Schema.Struct({ n: Schema.Int }),
          maxAttempts: 1,
          handler: (_, { attempt }) => Effect.andThen(Effect.sync(() => runs.push(attempt)), Effect.fail("no"))
        })
        const producer = yield* connectProducer(connect())
        yield* startConsumer(connect(), { types: [Hopeless], concurrency: 1 })
        yield* DurableQueue.enqueue(Hopeless, { n: 7 }, { id: "h1" }).pipe(Effect.provideContext(producer))
        yield* waitUntil(
          "dead-lettered",
          Effect.map(DurableQueue.deadLetters().pipe(Effect.provideContext(producer)), (l) => l.length === 1)
        )
        const state = rowState("h1", connect.queueName).pipe(Effect.provide(connect.sql!))
        yield* waitUntil("the row is failed", Effect.map(state, (s) => s[0] === "failed"))
        const [letter] = yield* DurableQueue.deadLetters().pipe(Effect.provideContext(producer))
        assert.deepStrictEqual(letter.payload, { n: 7 }, "read from the job's row, not copied")
        assert.isTrue(yield* DurableQueue.requeue("h1").pipe(Effect.provideContext(producer)))
        yield* waitUntil("runs again from attempt 1", Effect.sync(() => runs.length === 2))
        assert.deepStrictEqual(runs, [1, 1])
        yield* waitUntil(
          "dead again",
          Effect.map(DurableQueue.deadLetters().pipe(Effect.provideContext(producer)), (l) => l.length === 1)
        )
        assert.deepStrictEqual(yield* state, ["failed"], "one row: requeue reset it, no copy was made")
      }),
    60_000
  )
})

describe("DurablePg.layer", () => {
  const test = pgUrl === undefined || pgUrl === "" ? it.live.skip : it.live
  const url = Redacted.make(pgUrl ?? "")
  let counter = 0
  const name = () => `pg-${process.pid}-${Date.now().toString(36)}-${counter++}`

  test(
    "passes the driver options: a 17 MiB job runs with the message and payload limits raised",
    () =>
      Effect.gen(function*() {
        const queue = name()
        const layer = DurablePg.layer({
          url,
          name: queue,
          maxConnections: 3,
          maxMessageSize: 64 * MiB,
          maxPayloadBytes: 32 * MiB,
          statementTimeout: "20 seconds",
          applicationName: "fiberpool-test",
          pollInterval: "100 millis"
        })
        const context = yield* Layer.build(layer)
        const timeout = yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          return yield* sql<{ readonly statement_timeout: string }>`SHOW statement_timeout`
        }).pipe(Effect.provideContext(context))
        assert.strictEqual(timeout[0].statement_timeout, "20s")
        yield* startConsumer(Layer.succeedContext(context), { types: [Blob], concurrency: 1 })
        yield* DurableQueue.enqueue(Blob, { data: bigText(17 * MiB) }, { id: "huge" }).pipe(
          Effect.provideContext(context)
        )
        assert.strictEqual(yield* DurableQueue.result(Blob, "huge").pipe(Effect.provideContext(context)), 17 * MiB)
      }),
    90_000
  )

  test("refuses a payload limit the message limit cannot carry", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(Layer.build(DurablePg.layer({ url, name: name(), maxPayloadBytes: 16 * MiB })))
      assert(error._tag === "InvalidOptions" && error.option === "maxPayloadBytes", error.message)
      const client = yield* Effect.flip(
        Layer.build(DurablePg.layer({ url, name: name(), statementTimeout: "forever" as any }))
      )
      assert(client._tag === "InvalidOptions" && client.option === "statementTimeout", client.message)
    }))
})
