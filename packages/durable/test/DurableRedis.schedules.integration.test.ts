/**
 * Recurring schedules on the Redis store (`internal/schedulesRedis.ts`), beyond the suite over `stores`
 * (DurableSchedule.integration.test.ts, which runs on Redis too): every key under the prefix, missed ticks after an
 * outage, a firer that dies between its claim and its enqueue, the server's clock. Needs FIBERPOOL_TEST_REDIS_URL
 * (`eval "$(.ci/redis.sh start)"`).
 */
import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { DurableQueue, DurableSchedule, JobType } from "@fiberpool/durable"
import { Context, Duration, Effect, Layer, Schema } from "effect"
import { Redis } from "effect/persistence"
import { TestClock } from "effect/testing"
import { connectProducer, redisUrl, startConsumer, stores, waitUntil } from "./utils/stores.ts"

const test = redisUrl === undefined || redisUrl === "" ? it.live.skip : it.live
const redisStore = stores.find((store) => store.name === "redis")!

const Tick = JobType.define({ name: "tick", payload: Schema.Struct({ label: Schema.String }) })

const client = Effect.map(
  Layer.build(NodeRedis.layer({ url: redisUrl ?? "" })),
  (context) => Context.get(context, Redis.Redis)
)

const schedulesOf = (context: Context.Context<DurableQueue.Service>) => {
  const queue = Context.get(context, DurableQueue.Service)
  return { name: queue.name, schedules: queue.schedules! }
}

const sleepUntil = (at: number) => Effect.sleep(Duration.millis(Math.max(0, at - Date.now())))

describe("recurring schedules on redis", () => {
  test(
    "set, list and remove are seen by every connection; every key is under the prefix",
    () =>
      Effect.gen(function*() {
        const connect = yield* redisStore.open
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
        assert.include([1, 2], new Date(nightly.nextRunAt).getUTCHours())
        // a name ending as effect's keys do: effect's cleanup scans the prefix for `*:ids` and `*:failed`
        yield* inB(DurableSchedule.set(Tick, { name: "x:ids", every: "10 seconds", payload: { label: "b" } }))
        const listed = yield* inA(DurableSchedule.list)
        assert.deepStrictEqual(
          listed.map((
            s
          ) => [s.name, s.type, s.cron, s.timezone, s.every && Duration.toMillis(s.every), s.payload, s.missed]),
          [
            ["nightly", "tick", "0 3 * * *", "Europe/Paris", undefined, { label: "n" }, { catchUp: 2 }],
            ["x:ids", "tick", undefined, undefined, 10_000, { label: "b" }, "latest"]
          ]
        )
        assert.strictEqual(listed[0].nextRunAt, nightly.nextRunAt)
        // the same timing set again (another process starting) keeps the next run and takes the new payload
        const again = yield* inB(DurableSchedule.set(Tick, {
          name: "nightly",
          cron: "0  3 * * *",
          timezone: "Europe/Paris",
          payload: { label: "n2" }
        }))
        assert.strictEqual(again.nextRunAt, nightly.nextRunAt)
        assert.deepStrictEqual((yield* inA(DurableSchedule.list))[0].payload, { label: "n2" })
        const moved = yield* inB(DurableSchedule.set(Tick, {
          name: "nightly",
          cron: "0 4 * * *",
          timezone: "Europe/Paris",
          payload: { label: "n2" }
        }))
        assert.notStrictEqual(moved.nextRunAt, nightly.nextRunAt)
        const redis = yield* client
        const keys = yield* redis.send<[string, Array<string>]>("SCAN", "0", "MATCH", "*", "COUNT", "100000")
        const ours = keys[1].filter((key) => key.includes(connect.queueName))
        assert.isAbove(ours.length, 0)
        for (const key of ours) {
          assert.isTrue(key.startsWith(connect.prefix!), key)
          assert.isFalse(key.endsWith(":ids") || key.endsWith(":failed"), key)
        }
        // effect's cleanup (retention) still works with these keys under the same prefix
        yield* Effect.orDie(DurableQueue.applyRetention(Context.get(a, DurableQueue.Service)))
        assert.strictEqual(yield* inB(DurableSchedule.remove("nightly")), true)
        assert.strictEqual(yield* inA(DurableSchedule.remove("nightly")), false)
        assert.deepStrictEqual((yield* inA(DurableSchedule.list)).map((s) => s.name), ["x:ids"])
      }),
    20_000
  )

  test("missed ticks after an outage: the latest only, or the latest catchUp ones", () =>
    Effect.gen(function*() {
      const connect = yield* redisStore.open
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
      const redis = yield* client
      const index = `${connect.prefix}${connect.queueName}:fp:sched:next`
      for (const name of ["latest", "catch-up"]) yield* redis.send("ZINCRBY", index, "-60000", name)
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
      for (const s of yield* run(DurableSchedule.list)) assert.isAbove(s.nextRunAt, caughtUp[2])
      assert.deepStrictEqual(
        (yield* run(DurableSchedule.fireDue)).filter((id) => caughtUp.includes(DurableSchedule.tickOf(id)!)),
        []
      )
      // the claims were settled: nothing is left for another firer to take over
      assert.strictEqual(yield* redis.send<number>("ZCARD", `${connect.prefix}${connect.queueName}:fp:sched:claims`), 0)
    }), 20_000)

  test(
    "a firer that dies between its claim and its enqueue: another enqueues the tick after the lease, once",
    () =>
      Effect.gen(function*() {
        const connect = yield* redisStore.open
        const runs: Array<string> = []
        const Recorder = JobType.implement(Tick, (_, { id }) => Effect.sync(() => runs.push(id)))
        const dying = yield* connectProducer(connect())
        const other = yield* connectProducer(connect())
        const lost = yield* DurableSchedule.set(Tick, { name: "lost", every: "1 hour", payload: { label: "l" } }).pipe(
          Effect.provideContext(dying)
        )
        const done = yield* DurableSchedule.set(Tick, { name: "done", every: "1 hour", payload: { label: "d" } }).pipe(
          Effect.provideContext(dying)
        )
        // both due now (an hour late), read by the firer that is about to die
        const redis = yield* client
        const index = `${connect.prefix}${connect.queueName}:fp:sched:next`
        yield* redis.send("ZINCRBY", index, "-3600000", "lost")
        yield* redis.send("ZINCRBY", index, "-3600000", "done")
        const { schedules, name } = schedulesOf(dying)
        const rows = (yield* schedules.list(name)).filter((row) => row.nextRunAt <= Date.now())
        assert.strictEqual(rows.length, 2)
        const lostTick = lost.nextRunAt - 3_600_000
        const doneTick = done.nextRunAt - 3_600_000
        // "lost": claimed, then the process died before enqueuing anything (the lease is 3 s: testDefaults)
        const claimedAt = Date.now()
        assert.isTrue(yield* schedules.advance(name, rows.find((r) => r.name === "lost")!, lost.nextRunAt, [lostTick]))
        // "done": claimed, enqueued, and its job ran; the process died before settling the claim
        assert.isTrue(yield* schedules.advance(name, rows.find((r) => r.name === "done")!, done.nextRunAt, [doneTick]))
        yield* DurableQueue.enqueue(Tick, { label: "d" }, { id: DurableSchedule.jobId("done", doneTick) }).pipe(
          Effect.provideContext(dying)
        )
        yield* startConsumer(connect(), { types: [Recorder], concurrency: 2 })
        yield* waitUntil("the enqueued tick ran", Effect.sync(() => runs.length >= 1))
        // within the lease the claims are the dead firer's: nobody fires these ticks
        assert.deepStrictEqual(yield* DurableSchedule.fireDue.pipe(Effect.provideContext(other)), [])
        assert.isBelow(Date.now() - claimedAt, 2_500, "still within the lease")
        yield* sleepUntil(claimedAt + 3_200)
        // after the lease, one firer takes both claims over (the consumer's worker, or this call)
        const takenHere = yield* DurableSchedule.fireDue.pipe(Effect.provideContext(other))
        yield* waitUntil("the lost tick ran", Effect.sync(() => runs.includes(DurableSchedule.jobId("lost", lostTick))))
        yield* Effect.sleep("500 millis")
        assert.deepStrictEqual(
          [...runs].sort(),
          [DurableSchedule.jobId("done", doneTick), DurableSchedule.jobId("lost", lostTick)],
          `each tick ran once (taken over here: ${takenHere.join(", ")})`
        )
        assert.strictEqual(
          yield* redis.send<number>("ZCARD", `${connect.prefix}${connect.queueName}:fp:sched:claims`),
          0
        )
        assert.deepStrictEqual(yield* DurableSchedule.fireDue.pipe(Effect.provideContext(other)), [])
      }),
    20_000
  )

  test("ticks are due by the Redis server's clock, not the process's", () =>
    Effect.gen(function*() {
      const connect = yield* redisStore.open
      const producer = yield* connectProducer(connect())
      // this process's clock reads 1970 (a test clock that does not move)
      const skewed = <X, E>(effect: Effect.Effect<X, E, DurableQueue.Service>) =>
        effect.pipe(Effect.provideContext(producer), Effect.provide(TestClock.layer()))
      const info = yield* skewed(
        DurableSchedule.set(Tick, { name: "beat", every: "1 second", payload: { label: "b" } })
      )
      assert.isAbove(info.nextRunAt, Date.now() - 5_000)
      assert.isAtMost(info.nextRunAt, Date.now() + 1_100)
      yield* sleepUntil(info.nextRunAt + 50)
      assert.deepStrictEqual(yield* skewed(DurableSchedule.fireDue), [DurableSchedule.jobId("beat", info.nextRunAt)])
    }), 20_000)
})
