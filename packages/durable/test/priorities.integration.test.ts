import { PgClient } from "@effect/sql-pg"
import { assert, describe, it } from "@effect/vitest"
import { DurableQueue, DurableWorker, JobType } from "@fiberpool/durable"
import { Deferred, Effect, Exit, Layer, Redacted, Schema, Scope } from "effect"
import { PersistedQueue } from "effect/persistence"
import { SqlClient } from "effect/sql"
import { connectProducer, pgUrl, startConsumer, stores, testDefaults, waitUntil } from "./utils/stores.ts"

const failure = <A, E>(exit: Exit.Exit<A, E>): E => {
  assert.isTrue(Exit.isFailure(exit))
  const error = Exit.isFailure(exit) ? exit.cause.reasons.find((reason) => reason._tag === "Fail") : undefined
  assert.isDefined(error)
  return (error as { readonly error: E }).error
}

const invalidOption = <A, E>(exit: Exit.Exit<A, E>): string => {
  const error = failure(exit) as { readonly _tag: string; readonly option: string }
  assert.strictEqual(error._tag, "InvalidOptions")
  return error.option
}

describe.each(stores.filter((store) => store.ordering))("priorities and dedupe on $name", (store) => {
  const test = store.skip ? it.live.skip : it.live

  test("higher priorities are claimed first, FIFO among equals", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const order: Array<string> = []
      const Work = JobType.make({
        name: "work",
        payload: Schema.String,
        handler: (label) => Effect.sync(() => order.push(label))
      })
      const Urgent = JobType.make({
        name: "urgent",
        payload: Schema.String,
        priority: 5,
        handler: (label) => Effect.sync(() => order.push(label))
      })
      const producer = yield* connectProducer(connect())
      const enqueue = (label: string, priority?: number) =>
        DurableQueue.enqueue(Work, label, priority === undefined ? {} : { priority }).pipe(
          Effect.provideContext(producer)
        )
      yield* enqueue("a0")
      yield* enqueue("b2", 2)
      yield* enqueue("c0")
      yield* enqueue("d-1", -1)
      yield* enqueue("e2", 2)
      yield* enqueue("f1", 1)
      // the type's default priority, and an enqueue's own priority over it
      yield* DurableQueue.enqueue(Urgent, "g5").pipe(Effect.provideContext(producer))
      yield* DurableQueue.enqueue(Urgent, "h0", { priority: 0 }).pipe(Effect.provideContext(producer))
      // one claimer: each claim takes the head of the queue
      yield* startConsumer(connect(), { types: [Work, Urgent], concurrency: 1 })
      yield* waitUntil("every job ran", Effect.sync(() => order.length === 8))
      assert.deepStrictEqual(order, ["g5", "b2", "e2", "f1", "a0", "c0", "h0", "d-1"])
    }), 20_000)

  test("aging: a low priority is claimed within its bound while higher ones keep coming", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const started = new Map<string, number>()
      const Work = JobType.make({
        name: "work",
        payload: Schema.String,
        handler: (label) =>
          Effect.sync(() => started.set(label, Date.now())).pipe(Effect.andThen(Effect.sleep("50 millis")))
      })
      const producer = yield* connectProducer(connect({ aging: "1 second" }))
      const enqueue = (label: string, priority: number) =>
        DurableQueue.enqueue(Work, label, { priority }).pipe(Effect.provideContext(producer))
      for (let i = 0; i < 10; i++) yield* enqueue(`high-${i}`, 1)
      yield* enqueue("low", 0)
      const lowAt = Date.now()
      yield* startConsumer(connect({ aging: "1 second" }), { types: [Work], concurrency: 1 })
      // higher priorities arrive twice as fast (every 25 ms) as the worker runs them (one per 50 ms and more):
      // without aging, the low one would wait until the stream stops
      let n = 10
      const streamFor = 8_000
      while (Date.now() - lowAt < streamFor && !started.has("low")) {
        yield* enqueue(`high-${n++}`, 1)
        yield* Effect.sleep("25 millis")
      }
      const stopped = Date.now()
      yield* waitUntil("the low job ran", Effect.sync(() => started.has("low")), 30_000)
      const waited = started.get("low")! - lowAt
      // overtaken only by the jobs of priority 1 that became claimable less than 1 × aging after it (up to 2 s
      // with SQLite's whole-second timestamps): ~50 to 90 jobs of 50 ms, then it is next
      assert.isBelow(started.get("low")!, stopped + 1, "claimed while higher priorities kept coming")
      assert.isBelow(waited, 7_000)
      assert.isBelow(started.get("low")!, Math.max(...started.values()) + 1)
      console.log(`${store.name}: the low-priority job started after ${waited} ms, ${n} higher ones enqueued`)
    }), 20_000)

  test("a dedupe window suppresses duplicates within it, and accepts the key after it", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const producer = yield* connectProducer(connect())
      const Report = JobType.define({ name: "report", payload: Schema.String })
      const enqueue = (label: string) =>
        DurableQueue.enqueue(Report, label, { id: label, dedupe: { key: "acme", window: "700 millis" } }).pipe(
          Effect.provideContext(producer)
        )
      assert.strictEqual(yield* enqueue("first"), "first")
      assert.strictEqual(yield* enqueue("second"), "first", "a duplicate answers with the holder's id")
      // other keys are independent
      assert.strictEqual(
        yield* DurableQueue.enqueue(Report, "other", { id: "other", dedupe: { key: "globex", window: "1 hour" } })
          .pipe(Effect.provideContext(producer)),
        "other"
      )
      yield* Effect.sleep("800 millis")
      assert.strictEqual(yield* enqueue("third"), "third")
      assert.strictEqual(yield* enqueue("fourth"), "third")
      // what was stored: the jobs that took a key, nothing of the duplicates
      const runs: Array<string> = []
      yield* startConsumer(connect(), {
        types: [JobType.implement(Report, (label) => Effect.sync(() => runs.push(label)))],
        concurrency: 1
      })
      yield* waitUntil("the stored jobs ran", Effect.sync(() => runs.length === 3))
      yield* Effect.sleep("300 millis")
      assert.deepStrictEqual(runs.sort(), ["first", "other", "third"])
    }), 20_000)

  test("dedupe mode active: at most one pending or running job per key", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const runs: Array<string> = []
      const release = yield* Deferred.make<void>()
      const Reindex = JobType.make({
        name: "reindex",
        payload: Schema.String,
        handler: (label) => Effect.sync(() => runs.push(label)).pipe(Effect.andThen(Deferred.await(release)))
      })
      const producer = yield* connectProducer(connect())
      const enqueue = (label: string) =>
        DurableQueue.enqueue(Reindex, label, { id: label, dedupe: { key: "tenant-1", mode: "active" } }).pipe(
          Effect.provideContext(producer)
        )
      assert.strictEqual(yield* enqueue("a"), "a")
      assert.strictEqual(yield* enqueue("b"), "a", "suppressed while pending")
      yield* startConsumer(connect(), { types: [Reindex], concurrency: 2 })
      yield* waitUntil("a runs", Effect.sync(() => runs.length === 1))
      assert.strictEqual(yield* enqueue("c"), "a", "suppressed while running")
      yield* Deferred.succeed(release, undefined)
      // the key is freed when the store settles a's claim, just after its handler returned
      yield* waitUntil("accepted once the key's job ended", Effect.map(enqueue("d"), (id) => id === "d"), 5_000)
      yield* waitUntil("d runs", Effect.sync(() => runs.length === 2))
      assert.deepStrictEqual(runs, ["a", "d"])
    }), 20_000)

  test("a dead-lettered job frees its active key; re-queued, it runs without it", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const runs: Array<string> = []
      const release = yield* Deferred.make<void>()
      const Sync = JobType.make({
        name: "sync",
        payload: Schema.String,
        maxAttempts: 1,
        handler: (mode, { id }) =>
          Effect.sync(() => runs.push(id)).pipe(
            Effect.andThen(mode === "fail" ? Effect.fail("boom") : Deferred.await(release))
          )
      })
      const producer = yield* connectProducer(connect())
      const enqueue = (id: string, mode: string) =>
        DurableQueue.enqueue(Sync, mode, { id, dedupe: { key: "tenant-1", mode: "active" } }).pipe(
          Effect.provideContext(producer)
        )
      assert.strictEqual(yield* enqueue("a", "fail"), "a")
      yield* startConsumer(connect(), { types: [Sync], concurrency: 2 })
      const letters = DurableQueue.deadLetters().pipe(Effect.provideContext(producer))
      yield* waitUntil("a is dead-lettered", Effect.map(letters, (l) => l.length === 1))
      yield* waitUntil("the key is free", Effect.map(enqueue("b", "wait"), (id) => id === "b"), 5_000)
      yield* waitUntil("b runs", Effect.sync(() => runs.includes("b")))
      // b holds the key: a goes back without it, and runs (and fails again) beside b
      assert.isTrue(yield* DurableQueue.requeue("a").pipe(Effect.provideContext(producer)))
      yield* waitUntil("a ran again", Effect.sync(() => runs.filter((id) => id === "a").length === 2))
      assert.strictEqual(yield* enqueue("c", "wait"), "b", "b still holds the key")
      yield* Deferred.succeed(release, undefined)
    }), 20_000)

  test("a re-queued dead letter keeps its priority", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      let failing = true
      const ran: Array<string> = []
      const Work = JobType.make({
        name: "work",
        payload: Schema.String,
        maxAttempts: 1,
        handler: (label) => failing ? Effect.fail("boom") : Effect.sync(() => ran.push(label))
      })
      const producer = yield* connectProducer(connect())
      const run = <X, E>(effect: Effect.Effect<X, E, DurableQueue.Service>) => Effect.provideContext(effect, producer)
      yield* run(DurableQueue.enqueue(Work, "urgent", { id: "u", priority: 7 }))
      const first = yield* startConsumer(connect(), { types: [Work], concurrency: 1 })
      yield* waitUntil("u is dead-lettered", Effect.map(run(DurableQueue.deadLetters()), (l) => l.length === 1))
      yield* first.close
      failing = false
      yield* run(DurableQueue.enqueue(Work, "routine", { id: "r" }))
      // re-queued after r: it is claimed first only if it still has its priority 7
      assert.isTrue(yield* run(DurableQueue.requeue("u")))
      yield* startConsumer(connect(), { types: [Work], concurrency: 1 })
      yield* waitUntil("both ran", Effect.sync(() => ran.length === 2))
      assert.deepStrictEqual(ran, ["urgent", "routine"])
    }), 20_000)

  test(
    "bad priorities, dedupe keys, limits and aging fail with InvalidOptions naming the option",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const producer = yield* connectProducer(connect())
        const Ping = JobType.define({ name: "ping", payload: Schema.String })
        const enqueue = (options: DurableQueue.EnqueueOptions) =>
          Effect.exit(DurableQueue.enqueue(Ping, "x", options).pipe(Effect.provideContext(producer)))
        assert.strictEqual(invalidOption(yield* enqueue({ priority: 1.5 })), "priority")
        assert.strictEqual(invalidOption(yield* enqueue({ priority: 2_000_000 })), "priority")
        assert.strictEqual(invalidOption(yield* enqueue({ dedupe: { key: "", window: "1 second" } })), "dedupe.key")
        assert.strictEqual(invalidOption(yield* enqueue({ dedupe: { key: "k", window: "0 millis" } })), "dedupe.window")
        assert.strictEqual(
          invalidOption(yield* enqueue({ dedupe: { key: "k", mode: "always" as "active" } })),
          "dedupe.mode"
        )
        const BadPriority = JobType.define({ name: "bad", payload: Schema.String, priority: Number.NaN })
        assert.strictEqual(
          invalidOption(
            yield* Effect.exit(DurableQueue.enqueue(BadPriority, "x").pipe(Effect.provideContext(producer)))
          ),
          "JobType(bad).priority"
        )
        const worker = (limits: JobType.Limits) =>
          Effect.exit(
            DurableWorker.make({
              types: [JobType.make({ name: "limited", payload: Schema.String, handler: () => Effect.void, ...limits })],
              concurrency: 1
            }).pipe(Effect.provideContext(producer), Effect.scoped)
          )
        assert.strictEqual(
          invalidOption(yield* worker({ concurrency: { global: 0 } })),
          "JobType(limited).concurrency.global"
        )
        assert.strictEqual(
          invalidOption(yield* worker({ rateLimit: { limit: 0, interval: "1 second" } })),
          "JobType(limited).rateLimit.limit"
        )
        assert.strictEqual(
          invalidOption(yield* worker({ rateLimit: { limit: 1, interval: "0 millis" } })),
          "JobType(limited).rateLimit.interval"
        )
        const aging = yield* Effect.exit(
          Layer.build(store.sql ? connect({ aging: "0 millis" }) : DurableQueue.layerMemory({ aging: "0 millis" }))
        )
        assert.strictEqual(invalidOption(aging), "aging")
      }),
    20_000
  )
})

describe.each(stores.filter((store) => store.sql))("upgrading on $name", (store) => {
  const test = store.skip ? it.live.skip : it.live

  test(
    "jobs written by effect's own store (release 0.1) are claimed, ahead of newer ones",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const order: Array<string> = []
        const Work = JobType.make({
          name: "work",
          payload: Schema.String,
          handler: (label) => Effect.sync(() => order.push(label))
        })
        // a producer of the previous release: effect's store, its table and migrations only (on a fresh SQLite file,
        // the queue's own migration then upgrades a table that has rows)
        yield* Effect.gen(function*() {
          const scope = yield* Scope.make()
          const old = yield* PersistedQueue.makeStoreSql({ tableName: "effect_queue" }).pipe(Scope.provide(scope))
          for (const id of ["old-1", "old-2"]) {
            yield* old.offer({
              name: connect.queueName,
              id,
              element: { type: "work", id, payload: id },
              isCustomId: true
            })
          }
          yield* Scope.close(scope, Exit.void)
        }).pipe(Effect.provide(connect.sql!))
        const producer = yield* connectProducer(connect())
        yield* DurableQueue.enqueue(Work, "new-0", { priority: 0 }).pipe(Effect.provideContext(producer))
        yield* startConsumer(connect(), { types: [Work], concurrency: 1 })
        yield* waitUntil("every job ran", Effect.sync(() => order.length === 3))
        assert.deepStrictEqual(order, ["old-1", "old-2", "new-0"])
      }),
    20_000
  )

  test(
    "a migration that fails fails the layer with StoreError, after retries (not a defect)",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const tableName = `t_${connect.queueName.replaceAll("-", "_")}`
        // a table in the way of the queue's own migration (it creates `<tableName>_starts`)
        yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          yield* sql`CREATE TABLE ${sql(`${tableName}_starts`)} (x INTEGER)`
        }).pipe(Effect.provide(connect.sql!))
        const exit = yield* Effect.exit(Layer.build(connect({ tableName })))
        const error = failure(exit) as { readonly _tag: string; readonly operation: string }
        assert.strictEqual(error._tag, "StoreError")
        assert.strictEqual(error.operation, "migrate the queue table")
      }),
    20_000
  )
})

describe.each(stores.filter((store) => store.ordering))("limits of a job type on $name", (store) => {
  const test = store.skip ? it.live.skip : it.live

  test("a global cap and a rate limit hold across two workers of 4 slots each", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const runs: Array<{ readonly type: string; readonly start: number; end: number }> = []
      const run = (type: string, millis: number) => () =>
        Effect.gen(function*() {
          const entry = { type, start: Date.now(), end: Infinity }
          runs.push(entry)
          yield* Effect.sleep(`${millis} millis`)
          entry.end = Date.now()
        })
      const Capped = JobType.make({
        name: "capped",
        payload: Schema.Int,
        concurrency: { global: 2 },
        handler: run("capped", 80)
      })
      const Rated = JobType.make({
        name: "rated",
        payload: Schema.Int,
        rateLimit: { limit: 2, interval: "500 millis" },
        handler: run("rated", 1)
      })
      const producer = yield* connectProducer(connect())
      for (let n = 0; n < 8; n++) yield* DurableQueue.enqueue(Capped, n).pipe(Effect.provideContext(producer))
      for (let n = 0; n < 6; n++) yield* DurableQueue.enqueue(Rated, n).pipe(Effect.provideContext(producer))
      yield* startConsumer(connect(), { types: [Capped, Rated], concurrency: 4 })
      yield* startConsumer(connect(), { types: [Capped, Rated], concurrency: 4 })
      yield* waitUntil("every job ran", Effect.sync(() => runs.length === 14 && runs.every((r) => r.end < Infinity)))
      const capped = runs.filter((r) => r.type === "capped")
      let peak = 0
      for (const a of capped) peak = Math.max(peak, capped.filter((b) => b.start <= a.start && b.end > a.start).length)
      assert.strictEqual(peak, 2, "at most 2 capped jobs at once, and 2 reached")
      const starts = runs.filter((r) => r.type === "rated").map((r) => r.start).sort((a, b) => a - b)
      for (let i = 0; i + 2 < starts.length; i++) {
        // any 3 consecutive starts span the 500 ms window (less the claim-to-start latency)
        assert.isAtLeast(starts[i + 2] - starts[i], 400, `starts ${starts.join(", ")}`)
      }
    }), 20_000)
})

describe.each(stores.filter((store) => store.name === "postgres"))("session time zones on $name", (store) => {
  const test = store.skip ? it.live.skip : it.live

  test("the claim order does not depend on the TimeZone of the producers' sessions", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const order: Array<string> = []
      const Work = JobType.make({
        name: "work",
        payload: Schema.String,
        handler: (label) => Effect.sync(() => order.push(label))
      })
      const producerIn = (timeZone: string) =>
        connectProducer(
          DurableQueue.layerSql({ name: connect.queueName, ...testDefaults }).pipe(
            Layer.provide(
              PgClient.layer({
                url: Redacted.make(pgUrl ?? ""),
                maxConnections: 1,
                startupParameters: { TimeZone: timeZone }
              })
            )
          )
        )
      // effect's table keeps `visible_at` as a TIMESTAMP in the writer's local time, so the consumer's session is
      // the easternmost (every job is visible to it); the rank must not read local time: UTC-11 is not 11 hours
      // (39,600 priority levels with 1 s aging) ahead of UTC
      const utc = yield* producerIn("UTC")
      const west = yield* producerIn("Pacific/Pago_Pago")
      yield* DurableQueue.enqueue(Work, "urgent", { priority: 10 }).pipe(Effect.provideContext(utc))
      yield* DurableQueue.enqueue(Work, "routine", { priority: 0 }).pipe(Effect.provideContext(west))
      const consumer = DurableQueue.layerSql({ name: connect.queueName, ...testDefaults }).pipe(
        Layer.provide(
          PgClient.layer({
            url: Redacted.make(pgUrl ?? ""),
            maxConnections: 4,
            startupParameters: { TimeZone: "Pacific/Kiritimati" }
          })
        )
      )
      yield* startConsumer(consumer, { types: [Work], concurrency: 1 })
      yield* waitUntil("every job ran", Effect.sync(() => order.length === 2))
      assert.deepStrictEqual(order, ["urgent", "routine"])
    }), 20_000)
})

describe.each(stores.filter((store) => store.name === "memory"))("a backlog on $name", (store) => {
  const test = store.skip ? it.live.skip : it.live

  // a take that scans every pending job makes draining quadratic: 20,000 jobs took 15 to 18 s, 4 s with heaps
  test("20,000 no-op jobs drain in under 10 seconds (a take does not scan the backlog)", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const jobs = 20_000
      let ran = 0
      const done = yield* Deferred.make<void>()
      const Noop = JobType.make({
        name: "noop",
        payload: Schema.Int,
        handler: () => Effect.suspend(() => ++ran === jobs ? Deferred.succeed(done, undefined) : Effect.void)
      })
      const producer = yield* connectProducer(connect())
      for (let n = 0; n < jobs; n++) {
        yield* DurableQueue.enqueue(Noop, n, { priority: n % 3 }).pipe(Effect.provideContext(producer))
      }
      const start = Date.now()
      yield* startConsumer(connect(), { types: [Noop], concurrency: 32 })
      yield* Deferred.await(done).pipe(Effect.timeout("10 seconds"))
      assert.strictEqual(ran, jobs)
      assert.isBelow(Date.now() - start, 10_000)
    }), 20_000)
})

describe.each(stores.filter((store) => !store.ordering))("a type's priority on $name", (store) => {
  const test = store.skip ? it.live.skip : it.live

  test(
    "a type with a priority is refused naming the type's option (the store has no priorities)",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const ran: Array<string> = []
        const Urgent = JobType.make({
          name: "urgent",
          payload: Schema.String,
          priority: 10,
          handler: (label) => Effect.sync(() => ran.push(label))
        })
        const producer = yield* connectProducer(connect())
        const refused = yield* Effect.flip(
          DurableQueue.enqueue(Urgent, "a", { id: "a" }).pipe(Effect.provideContext(producer))
        )
        assert.strictEqual(refused._tag, "InvalidOptions")
        assert.strictEqual(invalidOption(Exit.fail(refused)), "JobType(urgent).priority")
        assert.match(refused.message, /priority: 0/)
        // an enqueue's own priority 0 overrides the type's: accepted, and the refused id was never stored
        yield* DurableQueue.enqueue(Urgent, "b", { id: "a", priority: 0 }).pipe(Effect.provideContext(producer))
        yield* startConsumer(connect(), { types: [Urgent], concurrency: 1 })
        yield* waitUntil("the job ran", Effect.sync(() => ran.length === 1))
        assert.deepStrictEqual(ran, ["b"])
      }),
    20_000
  )
})
