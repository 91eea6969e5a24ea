import { assert, describe, it } from "@effect/vitest"
import { DurableQueue, JobType } from "@fiberpool/durable"
import { Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { startConsumer, stores, waitUntil } from "./utils/stores.ts"

describe.each(stores)("retention on $name", (store) => {
  const test = store.skip ? it.live.skip : it.live

  /** One connection for the producer and the worker, with the given retention. */
  const open = (retention: DurableQueue.RetentionOptions) =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const options = { retention: { interval: "200 millis" as const, ...retention } }
      const context = yield* Layer.build(store.shared ? connect(options) : DurableQueue.layerMemory(options))
      return { connect, context, layer: Layer.succeedContext(context) }
    })

  test(
    "completed jobs are removed after their age: the result goes, and the id can be enqueued again",
    () =>
      Effect.gen(function*() {
        const { context, layer } = yield* open({ completed: "1 second" })
        const seen: Array<string> = []
        const Note = JobType.make({
          name: "note",
          payload: Schema.String,
          result: Schema.String,
          handler: (text) => Effect.sync(() => (seen.push(text), text))
        })
        yield* startConsumer(layer, { types: [Note], concurrency: 1 })
        const enqueue = (text: string) =>
          DurableQueue.enqueue(Note, text, { id: "n1" }).pipe(Effect.provideContext(context))
        yield* enqueue("first")
        assert.strictEqual(yield* DurableQueue.result(Note, "n1").pipe(Effect.provideContext(context)), "first")
        yield* enqueue("ignored") // de-duplicated while the completed job is kept
        // SQLite's clock has whole seconds: allow a few
        yield* waitUntil(
          "the id is free again",
          Effect.andThen(enqueue("second"), Effect.sync(() => seen.includes("second"))),
          8_000
        )
        assert.deepStrictEqual(seen, ["first", "second"])
      }),
    30_000
  )

  test("dead letters beyond the count are removed, oldest first, with their rows", () =>
    Effect.gen(function*() {
      const { connect, context, layer } = yield* open({ maxDeadLetters: 2 })
      const Doomed = JobType.make({
        name: "doomed",
        payload: Schema.Int,
        maxAttempts: 1,
        handler: (n) => Effect.fail(`no ${n}`)
      })
      yield* startConsumer(layer, { types: [Doomed], concurrency: 1 })
      for (const n of [1, 2, 3, 4]) {
        yield* DurableQueue.enqueue(Doomed, n, { id: `d${n}` }).pipe(Effect.provideContext(context))
        // one at a time, so their order is their time of death
        yield* waitUntil(
          `d${n} dead`,
          Effect.map(
            DurableQueue.deadLetters().pipe(Effect.provideContext(context)),
            (letters) => letters.some((l) => l.id === `d${n}`)
          )
        )
      }
      yield* waitUntil(
        "two dead letters left",
        Effect.map(DurableQueue.deadLetters().pipe(Effect.provideContext(context)), (l) => l.length === 2)
      )
      const letters = yield* DurableQueue.deadLetters().pipe(Effect.provideContext(context))
      assert.deepStrictEqual(letters.map((l) => l.id), ["d3", "d4"])
      if (connect.sql !== undefined) {
        const rows = yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          return yield* sql<{ readonly id: string }>`
            SELECT id FROM effect_queue WHERE queue_name = ${connect.queueName} AND id <> '~fiberpool/wake' ORDER BY id`
        }).pipe(Effect.provide(connect.sql))
        // (on PostgreSQL the queue's wake row, which wake-ups offer, is not a job)
        assert.deepStrictEqual(rows.map((r) => r.id), ["d3", "d4"], "the queue rows went with their dead letters")
      }
    }), 30_000)

  test("dead letters are removed after their age", () =>
    Effect.gen(function*() {
      const { context, layer } = yield* open({ deadLetters: "1 second" })
      const Doomed = JobType.make({
        name: "doomed",
        payload: Schema.Int,
        maxAttempts: 1,
        handler: () => Effect.fail("no")
      })
      yield* startConsumer(layer, { types: [Doomed], concurrency: 1 })
      yield* DurableQueue.enqueue(Doomed, 1, { id: "old" }).pipe(Effect.provideContext(context))
      const count = Effect.map(DurableQueue.deadLetters().pipe(Effect.provideContext(context)), (l) => l.length)
      yield* waitUntil("dead", Effect.map(count, (n) => n === 1))
      yield* waitUntil("removed", Effect.map(count, (n) => n === 0), 8_000)
    }), 30_000)
})
