import { assert, describe, it } from "@effect/vitest"
import { DurableQueue, JobType } from "@fiberpool/durable"
import { Effect, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { makeRecordingTracer } from "./utils/spans.ts"
import { connectProducer, startConsumer, stores, waitUntil } from "./utils/stores.ts"

// The statements a worker sends are the spans of effect's SQL client (`db.query.text`), recorded by a tracer
// installed around the consumer only (the producer's inserts are not counted).
const statements = (recorded: ReturnType<typeof makeRecordingTracer>["recorded"], pattern: RegExp) =>
  recorded().filter((span) => pattern.test(String(span.attributes["db.query.text"] ?? ""))).length

describe.each(stores.filter((store) => store.sql))("batched claims and completions on $name", (store) => {
  const test = store.skip ? it.live.skip : it.live

  test(
    "jobs that end together are claimed and completed a batch a statement, each exactly once",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const jobs = 96
        const runs = new Map<number, number>()
        const Work = JobType.make({
          name: "work",
          payload: Schema.Int,
          handler: (n) => Effect.sync(() => void runs.set(n, (runs.get(n) ?? 0) + 1))
        })
        const producer = yield* connectProducer(connect())
        yield* Effect.forEach(
          Array.from({ length: jobs }, (_, n) => n),
          (n) => DurableQueue.enqueue(Work, n).pipe(Effect.provideContext(producer)),
          { discard: true }
        )
        const { recorded, tracer } = makeRecordingTracer()
        yield* startConsumer(connect(), { types: [Work], concurrency: 32 }).pipe(Effect.withTracer(tracer))
        // (the queue's wake row, PostgreSQL's, is a completed row of another type)
        const completed = Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          const rows = yield* sql<{ readonly n: number | string }>`
            SELECT COUNT(*) AS n FROM effect_queue
            WHERE queue_name = ${connect.queueName} AND job_type = 'work' AND state = 'completed'`
          return Number(rows[0].n)
        }).pipe(Effect.provide(connect.sql!))
        yield* waitUntil("every job is completed", Effect.map(completed, (n) => n === jobs), 15_000)

        assert.strictEqual(runs.size, jobs)
        assert.isTrue([...runs.values()].every((count) => count === 1), "each job ran once")
        // (on PostgreSQL a claim also completes the jobs settled since the previous one: one statement may be both)
        const completions = statements(recorded, /UPDATE[\s\S]*SET[\s\S]*state = 'completed'/)
        const claims = statements(recorded, /UPDATE[\s\S]*acquired_by = [\s\S]*attempts = attempts \+ 1/)
        // one statement per job without batching; a few per 32 jobs with it
        assert.isAtLeast(completions, 1)
        assert.isAtMost(completions, jobs / 4, `${completions} completion statements for ${jobs} jobs`)
        assert.isAtLeast(claims, jobs / 32)
        assert.isAtMost(claims, jobs / 4, `${claims} claim statements for ${jobs} jobs`)
      }),
    30_000
  )
})
