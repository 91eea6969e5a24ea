import { assert, describe, it } from "@effect/vitest"
import { DurableQueue, JobType } from "@fiberpool/durable"
import { Effect, Schedule, Schema } from "effect"
import { connectProducer, startConsumer, stores, waitUntil } from "./utils/stores.ts"

describe.each(stores.filter((store) => store.shared))("claiming on $name", (store) => {
  const test = store.skip ? it.live.skip : it.live

  // A worker's claimers each hold one job at a time; a settlement path that left a claimer behind (never back in
  // the store's take) would shrink the worker until it stops claiming, the backlog staying put.
  test(
    "a worker keeps claiming after every kind of settlement",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const runs: Array<string> = []
        const failedOnce = new Set<string>()
        const Work = JobType.make({
          name: "work",
          payload: Schema.String,
          retry: Schedule.spaced("0 millis"),
          maxAttempts: 2,
          timeout: "200 millis",
          handler: (mode, { id }) =>
            Effect.gen(function*() {
              runs.push(id)
              if (mode === "fail-once" && !failedOnce.has(id)) {
                failedOnce.add(id)
                return yield* Effect.fail("once")
              }
              if (mode === "fail") return yield* Effect.fail("always")
              if (mode === "hang") return yield* Effect.never
              if (mode === "die") return yield* Effect.die("boom")
            })
        })
        const producer = yield* connectProducer(connect())
        const run = <A, E>(effect: Effect.Effect<A, E, DurableQueue.Service>) =>
          effect.pipe(Effect.provideContext(producer))
        yield* startConsumer(connect(), {
          types: [Work],
          concurrency: 2,
          unknownTypes: { retryAfter: "1 second", deadLetterAfter: "1 minute" }
        })
        for (const mode of ["ok", "fail-once", "fail", "hang", "die", "ok", "fail-once", "hang"]) {
          yield* run(DurableQueue.enqueue(Work, mode))
        }
        yield* run(DurableQueue.enqueueEncoded("work", 42))
        yield* run(DurableQueue.enqueueEncoded("other", "x"))
        yield* run(DurableQueue.enqueueEncoded("other", "y"))
        // every job but the two "ok" ones and the malformed one runs twice (a retry, or its second attempt); the two
        // of an unknown type are left for another worker on the SQL stores, dead-lettered at once on Redis
        const deadLetters = store.sql ? 5 : 7
        yield* waitUntil(
          "the first wave settles",
          Effect.map(
            run(DurableQueue.deadLetters()),
            (letters) => letters.length === deadLetters && runs.length === 14
          ),
          15_000
        )
        for (let wave = 0; wave < 5; wave++) {
          const ids = Array.from({ length: 6 }, (_, i) => `w${wave}-${i}`)
          yield* Effect.forEach(ids, (id) => run(DurableQueue.enqueue(Work, "ok", { id })))
          yield* waitUntil(`wave ${wave} runs`, Effect.sync(() => ids.every((id) => runs.includes(id))), 5_000)
          if (!store.sql) continue // (no counts on Redis: the wave's runs above are the check)
          const stats = yield* run(DurableQueue.stats)
          const work = stats.types.find((t) => t.type === "work")
          assert.strictEqual(work?.pending ?? 0, 0, "no job of type work is left waiting")
        }
      }),
    60_000
  )
})
