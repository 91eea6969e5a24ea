import { assert, describe, it } from "@effect/vitest"
import { DurableQueue, JobType } from "@fiberpool/durable"
import { Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { connectProducer, startConsumer, stores, waitUntil } from "./utils/stores.ts"

const Email = JobType.define({ name: "email", payload: Schema.String })
const Sms = JobType.define({ name: "sms", payload: Schema.String })

describe.each(stores.filter((store) => store.sql))("rolling deploy on $name", (store) => {
  const test = store.skip ? it.live.skip : it.live

  test(
    "a job of a type only the new release knows waits for a new worker, its attempts untouched",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const runs: Array<{ worker: string; type: string; attempt: number }> = []
        const handler = (worker: string) => (_: string, context: JobType.JobContext) =>
          Effect.sync(() => void runs.push({ worker, type: context.type, attempt: context.attempt }))
        // the old release: knows email only
        yield* startConsumer(connect(), {
          types: [JobType.implement(Email, handler("old"))],
          concurrency: 2,
          unknownTypes: { retryAfter: "1 second", deadLetterAfter: "1 minute" }
        })
        // a producer of the new release
        const producer = yield* connectProducer(connect())
        yield* DurableQueue.enqueue(Sms, "hi", { id: "s1" }).pipe(Effect.provideContext(producer))
        yield* DurableQueue.enqueue(Email, "hello", { id: "e1" }).pipe(Effect.provideContext(producer))
        yield* waitUntil("the old worker runs the email", Effect.sync(() => runs.length === 1))
        yield* Effect.sleep("2500 millis") // the old worker has seen the sms job more than once by now
        assert.deepStrictEqual(runs, [{ worker: "old", type: "email", attempt: 1 }])
        assert.deepStrictEqual(yield* DurableQueue.deadLetters().pipe(Effect.provideContext(producer)), [])
        const state = yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          return yield* sql<{ readonly state: string; readonly attempts: number }>`
          SELECT state, attempts FROM effect_queue WHERE queue_name = ${connect.queueName} AND id = 's1'`
        }).pipe(Effect.provide(connect.sql!))
        assert.deepStrictEqual(state.map((row) => [row.state, Number(row.attempts)]), [["pending", 0]])

        // the new release's worker arrives
        yield* startConsumer(connect(), {
          types: [JobType.implement(Email, handler("new")), JobType.implement(Sms, handler("new"))],
          concurrency: 2
        })
        // The old worker is still up and may claim (and hand back) the sms again. Pollers keep their phase, so
        // without help the old one won it ~5 rounds of 1 s in a row on PostgreSQL; now, when the job is visible
        // again, it wakes the other workers and not itself (PostgreSQL), and the new worker takes it within a
        // round or two. SQLite's whole-second clock breaks the phase by itself.
        yield* waitUntil("the new worker runs the sms", Effect.sync(() => runs.length === 2), 6_000)
        assert.deepStrictEqual(runs[1], { worker: "new", type: "sms", attempt: 1 })
        assert.deepStrictEqual(yield* DurableQueue.deadLetters().pipe(Effect.provideContext(producer)), [])
      }),
    45_000
  )

  test("a type no worker knows is dead-lettered once its bound has passed", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      yield* startConsumer(connect(), {
        types: [JobType.implement(Email, () => Effect.void)],
        concurrency: 1,
        unknownTypes: { retryAfter: "1 second", deadLetterAfter: "1 second" }
      })
      const producer = yield* connectProducer(connect())
      yield* DurableQueue.enqueue(Sms, "typo", { id: "s1" }).pipe(Effect.provideContext(producer))
      const letters = DurableQueue.deadLetters().pipe(Effect.provideContext(producer))
      yield* waitUntil("dead-lettered", Effect.map(letters, (l) => l.length === 1), 10_000)
      const [letter] = yield* letters
      assert.strictEqual(letter.id, "s1")
      assert.match(letter.error, /type "sms", which this worker does not handle/)
      assert.deepStrictEqual(letter.payload, "typo")
    }), 30_000)
})
