import { assert, describe, it } from "@effect/vitest"
import { DurableQueue, DurableSchedule, JobType } from "@fiberpool/durable"
import { Context, Duration, Effect, Layer, Schema } from "effect"
import { SqlClient } from "effect/sql"
import { connectProducer, startConsumer, stores, waitUntil } from "./utils/stores.ts"

const Tick = JobType.define({ name: "tick", payload: Schema.Struct({ label: Schema.String }) })

describe.each(stores.filter((store) => store.schedules))("recurring schedules on $name", (store) => {
  const test = store.skip ? it.live.skip : it.live
  // Moving a stored next run into the past needs the rows: on the memory store the same policies are tested under
  // the test clock (DurableSchedule.test.ts), so these cases are not declared there at all.
  const sqlTest: typeof test = store.sql ? test : ((() => undefined) as unknown as typeof test)

  test("set, list and remove are seen by every connection", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const a = yield* connectProducer(connect())
      const b = yield* connectProducer(connect())
      const inA = <X, E>(effect: Effect.Effect<X, E, DurableQueue.Service>) => Effect.provideContext(effect, a)
      const inB = <X, E>(effect: Effect.Effect<X, E, DurableQueue.Service>) => Effect.provideContext(effect, b)
      const nightly = yield* inA(DurableSchedule.set(Tick, {
        name: "nightly",
        cron: "0 3 * * *",
        timezone: "Europe/Paris",
        payload: { label: "n" },
        missed: { catchUp: 2 }
      }))
      // 03:00 in Paris is 01:00Z or 02:00Z
      assert.include([1, 2], new Date(nightly.nextRunAt).getUTCHours())
      assert.isAbove(nightly.nextRunAt, Date.now() - 5000)
      const beat = yield* inB(DurableSchedule.set(Tick, { name: "beat", every: "10 seconds", payload: { label: "b" } }))
      const listed = yield* inA(DurableSchedule.list)
      assert.deepStrictEqual(
        listed.map((
          s
        ) => [s.name, s.type, s.cron, s.timezone, s.every && Duration.toMillis(s.every), s.payload, s.missed]),
        [
          ["beat", "tick", undefined, undefined, 10_000, { label: "b" }, "latest"],
          ["nightly", "tick", "0 3 * * *", "Europe/Paris", undefined, { label: "n" }, { catchUp: 2 }]
        ]
      )
      assert.strictEqual(listed[1].nextRunAt, nightly.nextRunAt)
      // another process setting the same timing keeps the next run; a new timing moves it
      const again = yield* inB(DurableSchedule.set(Tick, {
        name: "nightly",
        cron: "0 3 * * *",
        timezone: "Europe/Paris",
        payload: { label: "n2" }
      }))
      assert.strictEqual(again.nextRunAt, nightly.nextRunAt)
      yield* Effect.sleep("20 millis")
      const beatAgain = yield* inA(
        DurableSchedule.set(Tick, { name: "beat", every: "10 seconds", payload: { label: "b" } })
      )
      assert.strictEqual(beatAgain.nextRunAt, beat.nextRunAt)
      assert.deepStrictEqual(again.payload, { label: "n2" })
      const moved = yield* inB(DurableSchedule.set(Tick, {
        name: "nightly",
        cron: "0 4 * * *",
        timezone: "Europe/Paris",
        payload: { label: "n2" }
      }))
      assert.notStrictEqual(moved.nextRunAt, nightly.nextRunAt)
      assert.strictEqual(yield* inB(DurableSchedule.remove("nightly")), true)
      assert.strictEqual(yield* inA(DurableSchedule.remove("nightly")), false)
      assert.deepStrictEqual((yield* inA(DurableSchedule.list)).map((s) => s.name), ["beat"])
      const bad = yield* Effect.flip(
        inA(DurableSchedule.set(Tick, { name: "x", cron: "0 0 31 4 *", payload: { label: "" } }))
      )
      assert.strictEqual(bad._tag === "InvalidOptions" && bad.option, "cron")
    }), 20_000)

  sqlTest(
    "queues isolated by table names do not share schedules (the default schedule table follows outcomeTable)",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const suffix = connect.queueName.replaceAll("-", "_")
        // two applications in one database, each with its own tables, both with a queue of the same name
        const app = (n: number) =>
          connectProducer(connect({ tableName: `app${n}_${suffix}_queue`, outcomeTable: `app${n}_${suffix}_outcomes` }))
        const one = yield* app(1)
        const two = yield* app(2)
        yield* DurableSchedule.set(Tick, { name: "beat", every: "1 second", payload: { label: "one" } }).pipe(
          Effect.provideContext(one)
        )
        assert.deepStrictEqual((yield* DurableSchedule.list.pipe(Effect.provideContext(one))).map((s) => s.name), [
          "beat"
        ])
        assert.deepStrictEqual(yield* DurableSchedule.list.pipe(Effect.provideContext(two)), [])
        yield* Effect.sleep("1100 millis")
        assert.deepStrictEqual(yield* DurableSchedule.fireDue.pipe(Effect.provideContext(two)), [])
        assert.strictEqual((yield* DurableSchedule.fireDue.pipe(Effect.provideContext(one))).length, 1)
        const rows = yield* Effect.gen(function*() {
          const sql = yield* SqlClient.SqlClient
          return yield* sql<{ readonly n: number | string }>`SELECT COUNT(*) AS n FROM ${
            sql(`app1_${suffix}_outcomes_schedules`)
          }`
        }).pipe(Effect.provide(Layer.orDie(connect.sql!)))
        assert.strictEqual(Number(rows[0].n), 1)
      }),
    20_000
  )

  if (store.ordering) {
    test("a tick's job takes its type's priority", () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const ran: Array<string> = []
        const Routine = JobType.make({
          name: "routine",
          payload: Schema.String,
          handler: (label) => Effect.sync(() => ran.push(label))
        })
        const Urgent = JobType.make({
          name: "urgent",
          payload: Schema.String,
          priority: 10,
          handler: (label) => Effect.sync(() => ran.push(label))
        })
        const producer = yield* connectProducer(connect())
        const run = <X, E>(effect: Effect.Effect<X, E, DurableQueue.Service>) => Effect.provideContext(effect, producer)
        yield* run(DurableQueue.enqueue(Routine, "routine"))
        const set = yield* run(DurableSchedule.set(Urgent, { name: "urgent", every: "1 second", payload: "tick" }))
        assert.strictEqual(set.priority, 10)
        yield* Effect.sleep(Duration.millis(Math.max(0, set.nextRunAt - Date.now() + 100)))
        assert.strictEqual((yield* run(DurableSchedule.fireDue)).length, 1)
        // the tick was enqueued after the routine job: it is claimed first only with its type's priority 10
        yield* startConsumer(connect(), { types: [Routine, Urgent], concurrency: 1 })
        yield* waitUntil("both ran", Effect.sync(() => ran.length === 2))
        assert.deepStrictEqual(ran, ["tick", "routine"])
      }), 20_000)
  }
  test("concurrent firers on separate connections: each tick is claimed by exactly one", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const firers = yield* Effect.forEach([1, 2, 3, 4], () => connectProducer(connect()))
      yield* DurableSchedule.set(Tick, { name: "every-second", cron: "* * * * * *", payload: { label: "s" } }).pipe(
        Effect.provideContext(firers[0])
      )
      const claimed: Array<string> = []
      const deadline = Date.now() + 3_200
      while (Date.now() < deadline) {
        // the four poll at the same moment, as four processes whose poll intervals line up
        const rounds = yield* Effect.forEach(
          firers,
          (context) => DurableSchedule.fireDue.pipe(Effect.provideContext(context)),
          { concurrency: "unbounded" }
        )
        for (const ids of rounds) claimed.push(...ids)
        yield* Effect.sleep("50 millis")
      }
      assert.isAtLeast(claimed.length, 3)
      assert.strictEqual(new Set(claimed).size, claimed.length, `a tick claimed twice: ${claimed.join(", ")}`)
      const ticks = claimed.map((id) => DurableSchedule.tickOf(id)!).sort((x, y) => x - y)
      for (let i = 1; i < ticks.length; i++) assert.strictEqual(ticks[i] - ticks[i - 1], 1000, "no tick skipped")
    }), 20_000)

  test(
    "the claim is a compare-and-swap: a firer that read the schedule before another claimed it gets nothing",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const [a, b] = yield* Effect.forEach([1, 2], () => connectProducer(connect()))
        yield* DurableSchedule.set(Tick, { name: "beat", every: "1 second", payload: { label: "b" } }).pipe(
          Effect.provideContext(a)
        )
        const storeOf = (context: Context.Context<DurableQueue.Service>) => {
          const queue = Context.get(context, DurableQueue.Service)
          return { name: queue.name, schedules: queue.schedules! }
        }
        const first = storeOf(a)
        const second = storeOf(b)
        // both read the schedule (as two processes polling at once), then both try to claim its tick
        const [row] = yield* first.schedules.list(first.name)
        const [same] = yield* second.schedules.list(second.name)
        assert.deepStrictEqual(same, row)
        assert.isTrue(yield* first.schedules.advance(first.name, row, row.nextRunAt + 1000))
        assert.isFalse(yield* second.schedules.advance(second.name, same, same.nextRunAt + 1000))
        // a changed timing invalidates a read too, even with the same next run
        const [moved] = yield* second.schedules.list(second.name)
        yield* DurableSchedule.set(Tick, { name: "beat", every: "2 seconds", payload: { label: "b" } }).pipe(
          Effect.provideContext(b)
        )
        const [reset] = yield* first.schedules.list(first.name)
        assert.isFalse(yield* first.schedules.advance(first.name, { ...moved, nextRunAt: reset.nextRunAt }, 0))
        assert.isTrue(yield* first.schedules.advance(first.name, reset, reset.nextRunAt + 2000))
      }),
    20_000
  )

  test("workers fire the ticks: every tick's job runs once, across two consumers", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const runs: Array<string> = []
      const Recorder = JobType.implement(Tick, (_, { id }) => Effect.sync(() => runs.push(id)))
      const producer = yield* connectProducer(connect())
      yield* DurableSchedule.set(Tick, { name: "beat", every: "1 second", payload: { label: "b" } }).pipe(
        Effect.provideContext(producer)
      )
      yield* startConsumer(connect(), { types: [Recorder], concurrency: 2 })
      yield* startConsumer(connect(), { types: [Recorder], concurrency: 2 })
      yield* waitUntil("four ticks ran", Effect.sync(() => runs.length >= 4), 10_000)
      assert.strictEqual(new Set(runs).size, runs.length, `a tick ran twice: ${runs.join(", ")}`)
      const ticks = runs.map((id) => DurableSchedule.tickOf(id)!).sort((x, y) => x - y)
      for (let i = 1; i < ticks.length; i++) assert.strictEqual(ticks[i] - ticks[i - 1], 1000)
    }), 20_000)

  sqlTest(
    "a tick whose job cannot be enqueued (over a lowered payload limit) is skipped, not retried forever",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const roomy = yield* connectProducer(connect())
        const strict = yield* connectProducer(connect({ maxPayloadBytes: 500 }))
        const Text = JobType.define({ name: "text", payload: Schema.String })
        const set = yield* DurableSchedule.set(Text, { name: "big", every: "1 second", payload: "x".repeat(1000) })
          .pipe(
            Effect.provideContext(roomy)
          )
        yield* Effect.sleep(Duration.millis(Math.max(0, set.nextRunAt - Date.now() + 100)))
        // a process deployed with a lower limit fires it: the tick is claimed, its job refused, the schedule goes on
        assert.deepStrictEqual(yield* DurableSchedule.fireDue.pipe(Effect.provideContext(strict)), [])
        const [after] = yield* DurableSchedule.list.pipe(Effect.provideContext(strict))
        assert.isAbove(after.nextRunAt, set.nextRunAt)
      }),
    20_000
  )

  sqlTest("missed ticks after an outage: the latest only, or the latest catchUp ones", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const producer = yield* connectProducer(connect())
      const run = <X, E>(effect: Effect.Effect<X, E, DurableQueue.Service>) => Effect.provideContext(effect, producer)
      yield* run(DurableSchedule.set(Tick, { name: "latest", cron: "*/2 * * * * *", payload: { label: "l" } }))
      yield* run(DurableSchedule.set(Tick, {
        name: "catch-up",
        every: "1 second",
        payload: { label: "c" },
        missed: { catchUp: 3 }
      }))
      // every process was down for a minute: the stored next runs are 60 s in the past (still ticks of each timing)
      yield* Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`UPDATE fiberpool_outcomes_schedules SET next_run_at = next_run_at - 60000 WHERE queue_name = ${connect.queueName}`
      }).pipe(Effect.provide(Layer.orDie(connect.sql!)))
      const before = Date.now()
      const fired = yield* run(DurableSchedule.fireDue)
      const latest = fired.filter((id) => id.startsWith("latest@")).map((id) => DurableSchedule.tickOf(id)!)
      const caughtUp = fired.filter((id) => id.startsWith("catch-up@")).map((id) => DurableSchedule.tickOf(id)!)
      assert.strictEqual(latest.length, 1)
      assert.strictEqual(latest[0] % 2000, 0)
      assert.isAtMost(latest[0], Date.now())
      assert.isAbove(latest[0], before - 2_500, "the latest due tick, not the oldest")
      assert.strictEqual(caughtUp.length, 3)
      assert.deepStrictEqual(caughtUp.map((t) => t - caughtUp[0]), [0, 1000, 2000])
      assert.isAbove(caughtUp[2], before - 1_500)
      // the next runs are after now again: nothing more is due at once
      const after = yield* run(DurableSchedule.list)
      for (const s of after) assert.isAbove(s.nextRunAt, caughtUp[2])
      assert.deepStrictEqual(
        (yield* run(DurableSchedule.fireDue)).filter((id) => caughtUp.includes(DurableSchedule.tickOf(id)!)),
        []
      )
    }), 20_000)
})
