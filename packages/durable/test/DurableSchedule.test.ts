import { assert, describe, it } from "@effect/vitest"
import { DurableQueue, DurableSchedule, DurableWorker, JobType } from "@fiberpool/durable"
import { Context, Duration, Effect, Layer, Schema } from "effect"
import { TestClock } from "effect/testing"
import { dueTicks, nextTick } from "../src/internal/scheduleStore.ts"

const Ping = JobType.define({ name: "ping", payload: Schema.Struct({ n: Schema.Int }) })
const at = (iso: string) => Date.parse(iso)
const iso = (millis: number) => new Date(millis).toISOString()

describe("DurableSchedule: ticks", () => {
  it("a cron in a non-UTC zone ticks at its local time, across a DST change", () => {
    // Europe/Paris: 09:30 is 08:30Z in winter; summer time starts on 2026-03-29, then 09:30 is 07:30Z
    const paris = { _tag: "cron", expression: "30 9 * * *", timezone: "Europe/Paris" } as const
    const first = nextTick(paris, at("2026-03-27T12:00:00Z"))!
    const second = nextTick(paris, first)!
    const third = nextTick(paris, second)!
    assert.deepStrictEqual([first, second, third].map(iso), [
      "2026-03-28T08:30:00.000Z",
      "2026-03-29T07:30:00.000Z",
      "2026-03-30T07:30:00.000Z"
    ])
    // a fixed offset, and the same expression in UTC for contrast
    assert.strictEqual(
      iso(nextTick({ _tag: "cron", expression: "0 9 * * *", timezone: "+05:30" }, at("2026-01-01T00:00:00Z"))!),
      "2026-01-01T03:30:00.000Z"
    )
    assert.strictEqual(
      iso(nextTick({ _tag: "cron", expression: "0 9 * * *", timezone: "UTC" }, at("2026-01-01T00:00:00Z"))!),
      "2026-01-01T09:00:00.000Z"
    )
    // a tick is strictly after the instant it is computed from
    assert.strictEqual(iso(nextTick(paris, first)!), "2026-03-29T07:30:00.000Z")
  })

  it("due ticks: nothing before the next run; the latest only, or up to catchUp of the latest, oldest first", () => {
    const perSecond = { _tag: "cron", expression: "* * * * * *", timezone: "UTC" } as const
    const t0 = at("2026-01-01T00:00:00Z")
    assert.deepStrictEqual(dueTicks(perSecond, t0, t0 - 1, "latest"), { ticks: [], next: t0 })
    assert.deepStrictEqual(dueTicks(perSecond, t0, t0 + 400, "latest"), { ticks: [t0], next: t0 + 1000 })
    // 10.5 s late: 11 ticks are due (t0 .. t0+10s)
    const late = t0 + 10_500
    assert.deepStrictEqual(dueTicks(perSecond, t0, late, "latest"), { ticks: [t0 + 10_000], next: t0 + 11_000 })
    assert.deepStrictEqual(dueTicks(perSecond, t0, late, { catchUp: 3 }), {
      ticks: [t0 + 8000, t0 + 9000, t0 + 10_000],
      next: t0 + 11_000
    })
    assert.deepStrictEqual(dueTicks(perSecond, t0, late, { catchUp: 100 })?.ticks.length, 11)
    // an interval counts from its stored next run
    const every = { _tag: "every", millis: 60_000 } as const
    const n = t0 + 123
    assert.deepStrictEqual(dueTicks(every, n, n + 59_999, "latest"), { ticks: [n], next: n + 60_000 })
    assert.deepStrictEqual(dueTicks(every, n, n + 180_000, { catchUp: 2 }), {
      ticks: [n + 120_000, n + 180_000],
      next: n + 240_000
    })
    // a year of missed per-second ticks is computed backwards from now, not walked
    const started = Date.now()
    assert.deepStrictEqual(dueTicks(perSecond, t0, t0 + 365 * 86_400_000, { catchUp: 2 })?.ticks.length, 2)
    assert.isBelow(Date.now() - started, 1000)
  })

  it("job ids carry the tick", () => {
    const tick = at("2026-01-01T03:00:00Z")
    const id = DurableSchedule.jobId("a@b", tick)
    assert.strictEqual(id, "a@b@2026-01-01T03:00:00.000Z")
    assert.strictEqual(DurableSchedule.tickOf(id), tick)
    assert.strictEqual(DurableSchedule.tickOf("invoice-42"), undefined)
    assert.strictEqual(DurableSchedule.tickOf("x@yesterday"), undefined)
  })
})

describe("DurableSchedule on the memory store, under the test clock", () => {
  const provide = <A, E>(effect: Effect.Effect<A, E, DurableQueue.Service>) =>
    Effect.provide(effect, DurableQueue.layerMemory({ maxPayloadBytes: 400 }))

  it.effect("set, list, remove; setting the same timing again keeps the next run, a new timing resets it", () =>
    provide(Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-01-01T00:00:10Z"))
      const hourly = yield* DurableSchedule.set(Ping, { name: "hourly", cron: "0 * * * *", payload: { n: 1 } })
      assert.deepStrictEqual(hourly, {
        name: "hourly",
        type: "ping",
        cron: "0 * * * *",
        timezone: "UTC",
        every: undefined,
        payload: { n: 1 },
        missed: "latest",
        priority: 0,
        nextRunAt: at("2026-01-01T01:00:00Z")
      })
      const beat = yield* DurableSchedule.set(Ping, {
        name: "beat",
        every: "30 seconds",
        payload: { n: 2 },
        missed: { catchUp: 5 }
      })
      assert.strictEqual(beat.nextRunAt, at("2026-01-01T00:00:40Z"))
      assert.deepStrictEqual(beat.every, Duration.seconds(30))
      assert.deepStrictEqual((yield* DurableSchedule.list).map((s) => s.name), ["beat", "hourly"])
      const half = yield* DurableSchedule.set(Ping, { name: "half", cron: "*/30 * * * * *", payload: { n: 0 } })
      assert.strictEqual(half.nextRunAt, at("2026-01-01T00:00:30Z"))

      // a process restarting 20 s later sets the same schedule: its next tick stays; the payload is replaced
      yield* TestClock.adjust("20 seconds")
      const again = yield* DurableSchedule.set(Ping, {
        name: "beat",
        every: "30 seconds",
        payload: { n: 3 },
        missed: { catchUp: 5 }
      })
      assert.strictEqual(again.nextRunAt, at("2026-01-01T00:00:40Z"))
      assert.deepStrictEqual(again.payload, { n: 3 })
      // the same expression spaced differently is the same timing: its next tick (now due) stays too
      const respaced = yield* DurableSchedule.set(Ping, { name: "half", cron: " */30  * * * * * ", payload: { n: 0 } })
      assert.deepStrictEqual([respaced.cron, respaced.nextRunAt], ["*/30 * * * * *", half.nextRunAt])
      assert.strictEqual(yield* DurableSchedule.remove("half"), true)
      const changed = yield* DurableSchedule.set(Ping, { name: "beat", every: "1 minute", payload: { n: 3 } })
      assert.strictEqual(changed.nextRunAt, at("2026-01-01T00:01:30Z"))
      assert.strictEqual(changed.missed, "latest")

      assert.strictEqual(yield* DurableSchedule.remove("beat"), true)
      assert.strictEqual(yield* DurableSchedule.remove("beat"), false)
      assert.deepStrictEqual((yield* DurableSchedule.list).map((s) => s.name), ["hourly"])
    })))

  it.effect("a tick fires once; missed ticks: the latest only, or catch up bounded by its count", () =>
    provide(Effect.gen(function*() {
      const t0 = at("2026-01-01T00:00:00Z")
      yield* TestClock.setTime(t0)
      yield* DurableSchedule.set(Ping, { name: "latest", every: "1 minute", payload: { n: 0 } })
      yield* DurableSchedule.set(Ping, {
        name: "catch-up",
        every: "1 minute",
        payload: { n: 0 },
        missed: { catchUp: 3 }
      })
      assert.deepStrictEqual(yield* DurableSchedule.fireDue, [])
      yield* TestClock.adjust("59 seconds")
      assert.deepStrictEqual(yield* DurableSchedule.fireDue, [])
      yield* TestClock.adjust("1 second")
      const minute = (k: number) => t0 + k * 60_000
      assert.deepStrictEqual([...yield* DurableSchedule.fireDue].sort(), [
        DurableSchedule.jobId("catch-up", minute(1)),
        DurableSchedule.jobId("latest", minute(1))
      ])
      // the tick is claimed: firing again in the same minute does nothing
      assert.deepStrictEqual(yield* DurableSchedule.fireDue, [])

      // nobody polls for 10 minutes: ticks 2 to 11 are due
      yield* TestClock.adjust("10 minutes")
      const fired = yield* DurableSchedule.fireDue
      assert.deepStrictEqual(fired.filter((id) => id.startsWith("latest@")), [
        DurableSchedule.jobId("latest", minute(11))
      ])
      assert.deepStrictEqual(fired.filter((id) => id.startsWith("catch-up@")), [
        DurableSchedule.jobId("catch-up", minute(9)),
        DurableSchedule.jobId("catch-up", minute(10)),
        DurableSchedule.jobId("catch-up", minute(11))
      ])
      assert.deepStrictEqual((yield* DurableSchedule.list).map((s) => s.nextRunAt), [minute(12), minute(12)])
    })))

  it.effect("a cron in a non-UTC zone fires at its local time", () =>
    provide(Effect.gen(function*() {
      yield* TestClock.setTime(at("2026-07-01T00:00:00Z"))
      // 09:00 in New York in July (EDT, UTC-4) is 13:00Z
      const info = yield* DurableSchedule.set(Ping, {
        name: "ny",
        cron: "0 9 * * *",
        timezone: "America/New_York",
        payload: { n: 1 }
      })
      assert.strictEqual(iso(info.nextRunAt), "2026-07-01T13:00:00.000Z")
      yield* TestClock.adjust(Duration.hours(13).pipe(Duration.subtract(Duration.millis(1))))
      assert.deepStrictEqual(yield* DurableSchedule.fireDue, [])
      yield* TestClock.adjust("1 millis")
      assert.deepStrictEqual(yield* DurableSchedule.fireDue, ["ny@2026-07-01T13:00:00.000Z"])
    })))

  it.effect("the fired job is in the queue, with the schedule's payload", () =>
    provide(
      Effect.gen(function*() {
        yield* TestClock.setTime(at("2026-01-01T00:00:00Z"))
        const seen: Array<{ readonly n: number; readonly id: string }> = []
        const Recorder = JobType.implement(Ping, (payload, { id }) => Effect.sync(() => seen.push({ ...payload, id })))
        yield* DurableSchedule.set(Ping, { name: "beat", every: "1 minute", payload: { n: 7 } })
        yield* DurableWorker.make({ types: [Recorder], concurrency: 1 })
        // the worker polls the schedules on the queue's poll interval (500 ms)
        yield* TestClock.adjust("1 minute")
        yield* TestClock.adjust("500 millis")
        for (let i = 0; i < 1000 && seen.length === 0; i++) yield* Effect.yieldNow
        assert.deepStrictEqual(seen, [{ n: 7, id: "beat@2026-01-01T00:01:00.000Z" }])
      }).pipe(Effect.scoped)
    ))

  it.effect("a schedule's priority: its own, else its type's, else 0; replaced by a new set", () =>
    provide(Effect.gen(function*() {
      const Urgent = JobType.define({ name: "urgent", payload: Schema.Null, priority: 10 })
      const priorities = Effect.map(DurableSchedule.list, (list) => list.map((s) => [s.name, s.priority]))
      yield* DurableSchedule.set(Urgent, { name: "typed", every: "1 minute", payload: null })
      yield* DurableSchedule.set(Urgent, { name: "own", every: "1 minute", payload: null, priority: -3 })
      yield* DurableSchedule.set(Ping, { name: "plain", every: "1 minute", payload: { n: 1 } })
      assert.deepStrictEqual(yield* priorities, [["own", -3], ["plain", 0], ["typed", 10]])
      yield* DurableSchedule.set(Urgent, { name: "typed", every: "1 minute", payload: null, priority: 4 })
      assert.deepStrictEqual((yield* priorities)[2], ["typed", 4])
    })))

  it.effect("bad options fail with InvalidOptions naming the option, and nothing is stored", () =>
    provide(Effect.gen(function*() {
      const option = (options: DurableSchedule.SetOptions<typeof Ping>) =>
        Effect.map(
          Effect.flip(DurableSchedule.set(Ping, options)),
          (error) => error._tag === "InvalidOptions" ? error.option : error._tag
        )
      const payload = { n: 1 }
      assert.strictEqual(yield* option({ name: "", cron: "* * * * *", payload }), "name")
      assert.strictEqual(yield* option({ name: "x".repeat(201), cron: "* * * * *", payload }), "name")
      assert.strictEqual(yield* option({ name: "s", payload }), "cron")
      assert.strictEqual(yield* option({ name: "s", cron: "* * * * *", every: "1 minute", payload }), "every")
      assert.strictEqual(yield* option({ name: "s", cron: "61 * * * *", payload }), "cron")
      assert.strictEqual(yield* option({ name: "s", cron: "* * *", payload }), "cron")
      assert.strictEqual(yield* option({ name: "s", cron: "0 0 30 2 *", payload }), "cron")
      assert.strictEqual(yield* option({ name: "s", cron: "* * * * *", timezone: "Mars/Olympus", payload }), "timezone")
      assert.strictEqual(yield* option({ name: "s", every: "1 minute", timezone: "UTC", payload }), "timezone")
      assert.strictEqual(yield* option({ name: "s", every: "500 millis", payload }), "every")
      assert.strictEqual(yield* option({ name: "s", every: Duration.infinity, payload }), "every")
      assert.strictEqual(yield* option({ name: "s", every: "soon" as Duration.Input, payload }), "every")
      assert.strictEqual(
        yield* option({ name: "s", every: "1 minute", payload, missed: { catchUp: 0 } }),
        "missed.catchUp"
      )
      assert.strictEqual(
        yield* option({ name: "s", every: "1 minute", payload, missed: "sometimes" as DurableSchedule.MissedPolicy }),
        "missed"
      )
      assert.strictEqual(yield* option({ name: "s", every: "1 minute", payload, priority: 1.5 }), "priority")
      assert.strictEqual(yield* option({ name: "s", every: "1 minute", payload, priority: 2_000_000 }), "priority")
      assert.strictEqual(yield* option({ name: "s", every: "1 minute", payload: { n: 1.5 } }), "EncodeFailed")
      const Big = JobType.define({ name: "big", payload: Schema.String })
      const big = yield* Effect.flip(
        DurableSchedule.set(Big, { name: "s", every: "1 minute", payload: "x".repeat(400) })
      )
      assert.strictEqual(big._tag, "PayloadTooLarge")
      const error = yield* Effect.flip(DurableSchedule.set(Ping, { name: "s", cron: "61 * * * *", payload }))
      assert.include(error.message, "cron")
      assert.deepStrictEqual(yield* DurableSchedule.list, [])
    })))

  it.effect("a queue whose store keeps no schedules (layerSql on another database) fails with SchedulesUnsupported; its workers run", () =>
    Effect.gen(function*() {
      const memory = yield* Layer.build(DurableQueue.layerMemory({ name: "no-schedules" }))
      const queue = { ...Context.get(memory, DurableQueue.Service), schedules: undefined }
      const run = <A, E, R>(effect: Effect.Effect<A, E, R>) =>
        Effect.provideService(effect, DurableQueue.Service, queue)
      const errors = yield* Effect.all([
        Effect.flip(run(DurableSchedule.set(Ping, { name: "s", every: "1 minute", payload: { n: 1 } }))),
        Effect.flip(run(DurableSchedule.list)),
        Effect.flip(run(DurableSchedule.remove("s"))),
        Effect.flip(run(DurableSchedule.fireDue))
      ])
      assert.deepStrictEqual(errors.map((e) => e._tag), Array(4).fill("SchedulesUnsupported"))
      assert.strictEqual(errors[0].message.includes("no-schedules"), true)
      // bad options are reported first, whatever the store
      const bad = yield* Effect.flip(
        run(DurableSchedule.set(Ping, { name: "s", every: "1 millis", payload: { n: 1 } }))
      )
      assert.strictEqual(bad._tag, "InvalidOptions")
      const Noop = JobType.implement(Ping, () => Effect.void)
      const worker = yield* run(DurableWorker.make({ types: [Noop], concurrency: 1 }))
      yield* worker.shutdown
    }).pipe(Effect.scoped))
})
