/**
 * Recurring schedules: a job type enqueued on a cron expression (in a time zone) or at a fixed interval, once per
 * tick however many processes run. Each schedule is a row of the queue's store holding its next tick; the
 * process that fires a due tick moves that time forward with a compare-and-swap, in one transaction with the
 * enqueue of the tick's job, whose id is derived from the schedule's name and the tick's time (so a second
 * enqueue of a tick would be ignored too). On Redis, where the move and effect's enqueue cannot share a
 * transaction, the move records the ticks it claimed, the firer settles them once enqueued, and a claim its firer
 * left (it died in between) is enqueued by another process after the store's lease. Every `DurableWorker` of the
 * queue fires the due schedules on its poll interval; {@link fireDue} does one round by hand.
 *
 * @since 0.1.0
 */
import { PoolError } from "@fiberpool/core"
import * as Clock from "effect/Clock"
import * as Cron from "effect/Cron"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { EncodeFailed, PayloadTooLarge, SchedulesUnsupported, type StoreError } from "./DurableError.ts"
import type { DurableQueue, EnqueueError } from "./DurableQueue.ts"
import { durationOption, enqueueEncoded, envelopeJson, parseJsonOrUndefined, Service } from "./DurableQueue.ts"
import * as ScheduleStore from "./internal/scheduleStore.ts"
import * as JobType from "./JobType.ts"

/**
 * What a late firer does with the ticks it missed (every process was down, or too busy to poll):
 *
 * - `"latest"` (the default): the missed ticks are skipped but the latest, which runs once.
 * - `{ catchUp: n }`: every missed tick runs, oldest first, up to the `n` latest (1 to 1000); older ones are
 *   skipped.
 *
 * A tick is "missed" when a later one is due as well by the time a process polls.
 *
 * @example
 * ```ts
 * import type { DurableSchedule } from "@fiberpool/durable"
 *
 * const hourly: DurableSchedule.MissedPolicy = { catchUp: 24 }
 * console.log(hourly) // => { catchUp: 24 }
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type MissedPolicy = "latest" | { readonly catchUp: number }

/**
 * Options of {@link set}.
 *
 * - `name`: the schedule's name, unique in the queue (1 to 200 characters). Setting a name again replaces its
 *   definition.
 * - `cron`: a cron expression, 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first,
 *   as effect's `Cron.parse` reads it; or
 * - `every`: a fixed interval, at least 1 second: the first tick is one interval after the schedule is created.
 * - `timezone`: the zone the cron expression is read in, an IANA name (`"Europe/Paris"`) or an offset
 *   (`"+02:00"`). Default `"UTC"`. Cron only.
 * - `payload`: the payload of every tick's job, encoded with the type's schema when the schedule is set.
 * - `missed`: see {@link MissedPolicy}. Default `"latest"`.
 * - `priority`: the priority of every tick's job (see `DurableQueue.EnqueueOptions`). Default: the type's
 *   `priority`, else 0. Kept with the schedule, so every process fires its ticks with the same priority.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { DurableSchedule, JobType } from "@fiberpool/durable"
 *
 * const Report = JobType.make({ name: "report", payload: Schema.Struct({ kind: Schema.String }), handler: () => Effect.void })
 * const options: DurableSchedule.SetOptions<typeof Report> = {
 *   name: "weekday-report",
 *   cron: "0 9 * * 1-5",
 *   timezone: "Europe/Paris",
 *   payload: { kind: "daily" }
 * }
 * console.log(options.cron) // => 0 9 * * 1-5
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface SetOptions<T extends JobType.AnyContract> {
  readonly name: string
  readonly cron?: string | undefined
  readonly every?: Duration.Input | undefined
  readonly timezone?: string | undefined
  readonly payload: JobType.Payload<T>
  readonly missed?: MissedPolicy | undefined
  readonly priority?: number | undefined
}

/**
 * A stored schedule, as {@link list} and {@link set} return it: its job type, its timing (`cron` and `timezone`,
 * or `every`), the encoded `payload`, the missed-ticks policy, the `priority` of its ticks' jobs, and `nextRunAt`,
 * the time of its next tick (epoch milliseconds).
 *
 * @example
 * ```ts
 * import { Duration } from "effect"
 * import type { DurableSchedule } from "@fiberpool/durable"
 *
 * const info: DurableSchedule.ScheduleInfo = {
 *   name: "heartbeat",
 *   type: "ping",
 *   cron: undefined,
 *   timezone: undefined,
 *   every: Duration.seconds(30),
 *   payload: null,
 *   missed: "latest",
 *   priority: 0,
 *   nextRunAt: 0
 * }
 * console.log(info.name) // => heartbeat
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface ScheduleInfo {
  readonly name: string
  readonly type: string
  readonly cron: string | undefined
  readonly timezone: string | undefined
  readonly every: Duration.Duration | undefined
  readonly payload: unknown
  readonly missed: MissedPolicy
  readonly priority: number
  readonly nextRunAt: number
}

/**
 * What {@link set} can fail with: a bad option (`InvalidOptions` naming it: `name`, `cron`, `timezone`, `every`,
 * `missed`, `priority`), a payload that does not encode or is too large, a store without schedules, or the store.
 *
 * @example
 * ```ts
 * import type { DurableSchedule } from "@fiberpool/durable"
 *
 * const describe = (error: DurableSchedule.SetError): string => error._tag
 * console.log(typeof describe) // => function
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export type SetError =
  | PoolError.InvalidOptions
  | EncodeFailed
  | PayloadTooLarge
  | SchedulesUnsupported
  | StoreError

/**
 * Creates a recurring schedule of a job type, or replaces the definition of the schedule of that name.
 *
 * **Details**
 *
 * The options are checked first, whatever the store: an invalid cron expression, time zone or interval fails
 * with `InvalidOptions` naming the option, and nothing is stored. Replacing a schedule whose timing (cron and time
 * zone, or interval) is unchanged keeps its next tick, so every process can set its schedules when it starts
 * without skipping or repeating a tick; a changed timing starts from the next tick after now. The payload is
 * replaced at once.
 *
 * The ticks are fired by the queue's workers (any process, any job types), each tick's job enqueued once with
 * the id {@link jobId}`(name, tick)`. Times are read from the store's clock: the database's for PostgreSQL and
 * SQLite, the server's for Redis, so processes whose clocks differ still agree on when a tick is due. A queue whose
 * store keeps no schedules fails with `SchedulesUnsupported`.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect, Schema } from "effect"
 * import { DurableQueue, DurableSchedule, JobType } from "@fiberpool/durable"
 *
 * const Report = JobType.define({ name: "report", payload: Schema.Struct({ kind: Schema.String }) })
 * const program = Effect.gen(function*() {
 *   const info = yield* DurableSchedule.set(Report, {
 *     name: "weekday-report",
 *     cron: "0 9 * * 1-5",
 *     timezone: "America/New_York",
 *     payload: { kind: "daily" }
 *   })
 *   assert.strictEqual(new Date(info.nextRunAt).getUTCMinutes(), 0)
 *   const bad = yield* Effect.flip(DurableSchedule.set(Report, { name: "x", cron: "0 25 * * *", payload: { kind: "x" } }))
 *   assert.strictEqual(bad._tag === "InvalidOptions" && bad.option, "cron")
 * })
 * await Effect.runPromise(program.pipe(Effect.provide(DurableQueue.layerMemory())))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const set = <T extends JobType.AnyContract>(
  type: T,
  options: SetOptions<T>
): Effect.Effect<ScheduleInfo, SetError, Service> =>
  Service.use((queue) =>
    Effect.gen(function*() {
      yield* JobType.validate(type)
      const name = yield* nameOption(options.name)
      const spec = yield* specOption(options)
      const missed = yield* missedOption(options.missed)
      const priority = options.priority ?? type.priority ?? 0
      if (!JobType.isPriority(priority)) {
        return yield* new PoolError.InvalidOptions({
          option: "priority",
          value: String(options.priority),
          expected: JobType.priorityExpected
        })
      }
      if (priority !== 0 && queue.jobs === undefined) {
        // every tick's enqueue would be refused: say so once, here
        return yield* new PoolError.InvalidOptions({
          option: "priority",
          value: String(priority),
          expected: "0 on this store, which has no priorities (the Redis store): pass priority: 0"
        })
      }
      const encoded = yield* Schema.encodeUnknownEffect(type.payloadJson)(options.payload).pipe(
        Effect.mapError((error) => new EncodeFailed({ jobType: type.name, issue: error.message }))
      )
      // JSON.stringify throws on bigints and cycles: the boundary with a payload of unknown shape
      const payload = yield* Effect.try({
        try: () => JSON.stringify(encoded) ?? "null",
        catch: (error) => new EncodeFailed({ jobType: type.name, issue: String(error) })
      })
      const store = yield* storeOf(queue)
      const now = yield* store.now
      const first = ScheduleStore.nextTick(spec, now)
      if (first === undefined) {
        return yield* new PoolError.InvalidOptions({
          option: "cron",
          value: String(options.cron),
          expected: "a cron expression that matches some date"
        })
      }
      // the tick's job is this envelope (see `DurableQueue.enqueueEncoded`): too large now is too large at every tick
      yield* envelopeJson(queue, { type: type.name, id: jobId(name, first), payload: encoded })
      const row = yield* store.upsert(queue.name, {
        name,
        jobType: type.name,
        payload,
        spec: ScheduleStore.encodeSpec(spec),
        missed: ScheduleStore.encodeMissed(missed),
        priority,
        nextRunAt: first,
        updatedAt: now
      })
      return toInfo(row)
    })
  )

/**
 * Removes a schedule: no tick fires after it (jobs of earlier ticks stay queued). Returns `false` if there was no
 * schedule of that name.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect, Schema } from "effect"
 * import { DurableQueue, DurableSchedule, JobType } from "@fiberpool/durable"
 *
 * const Ping = JobType.define({ name: "ping", payload: Schema.Null })
 * const program = Effect.gen(function*() {
 *   yield* DurableSchedule.set(Ping, { name: "heartbeat", every: "30 seconds", payload: null })
 *   assert.strictEqual(yield* DurableSchedule.remove("heartbeat"), true)
 *   assert.strictEqual(yield* DurableSchedule.remove("heartbeat"), false)
 * })
 * await Effect.runPromise(program.pipe(Effect.provide(DurableQueue.layerMemory())))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const remove = (name: string): Effect.Effect<boolean, SchedulesUnsupported | StoreError, Service> =>
  Service.use((queue) => Effect.flatMap(storeOf(queue), (store) => store.remove(queue.name, name)))

/**
 * Lists the queue's schedules, by name.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Duration, Effect, Schema } from "effect"
 * import { DurableQueue, DurableSchedule, JobType } from "@fiberpool/durable"
 *
 * const Ping = JobType.define({ name: "ping", payload: Schema.Null })
 * const program = Effect.gen(function*() {
 *   yield* DurableSchedule.set(Ping, { name: "nightly", cron: "0 3 * * *", timezone: "Europe/Paris", payload: null })
 *   yield* DurableSchedule.set(Ping, { name: "heartbeat", every: "30 seconds", payload: null })
 *   const schedules = yield* DurableSchedule.list
 *   assert.deepStrictEqual(schedules.map((s) => [s.name, s.cron ?? (s.every && Duration.format(s.every))]), [
 *     ["heartbeat", "30s"],
 *     ["nightly", "0 3 * * *"]
 *   ])
 * })
 * await Effect.runPromise(program.pipe(Effect.provide(DurableQueue.layerMemory())))
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const list: Effect.Effect<ReadonlyArray<ScheduleInfo>, SchedulesUnsupported | StoreError, Service> = Service
  .use((queue) =>
    Effect.flatMap(storeOf(queue), (store) => Effect.map(store.list(queue.name), (rows) => rows.map(toInfo)))
  )

/**
 * Fires the queue's due schedules once, and returns the ids of the jobs this call enqueued (the ticks it won).
 *
 * **Details**
 *
 * Every `DurableWorker` does this on its poll interval, so most programs never call it: it is for a process that
 * enqueues but runs no worker, and for tests. For each due schedule it computes the ticks to fire (by the
 * {@link MissedPolicy}), then in one transaction moves the schedule's next tick forward, if no other process
 * did first, and enqueues the ticks' jobs. A tick whose job cannot be enqueued (a payload over a lowered
 * `maxPayloadBytes`) is skipped with an error logged; a store failure leaves the tick for the next round (on Redis,
 * for the first round after the store's lease, `lockExpiration`). On Redis it also enqueues the ticks that another
 * process claimed and did not enqueue within that lease, and returns them too.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect, Schema } from "effect"
 * import { TestClock } from "effect/testing"
 * import { DurableQueue, DurableSchedule, JobType } from "@fiberpool/durable"
 *
 * const Ping = JobType.define({ name: "ping", payload: Schema.Null })
 * const program = Effect.gen(function*() {
 *   const { nextRunAt } = yield* DurableSchedule.set(Ping, { name: "heartbeat", every: "1 minute", payload: null })
 *   assert.deepStrictEqual(yield* DurableSchedule.fireDue, [])
 *   yield* TestClock.adjust("1 minute")
 *   assert.deepStrictEqual(yield* DurableSchedule.fireDue, [DurableSchedule.jobId("heartbeat", nextRunAt)])
 *   assert.deepStrictEqual(yield* DurableSchedule.fireDue, [])
 * })
 * await Effect.runPromise(program.pipe(Effect.provide(DurableQueue.layerMemory()), Effect.provide(TestClock.layer())))
 * ```
 *
 * @category running
 * @since 0.1.0
 */
export const fireDue: Effect.Effect<ReadonlyArray<string>, SchedulesUnsupported | StoreError, Service> = Service.use(
  (queue) => Effect.flatMap(storeOf(queue), (store) => fire(queue, store))
)

/**
 * The id of a schedule's job for one tick: the schedule's name, `@`, and the tick's time in ISO 8601 (UTC). A
 * handler reads its tick back with {@link tickOf}.
 *
 * @example
 * ```ts
 * import { DurableSchedule } from "@fiberpool/durable"
 *
 * console.log(DurableSchedule.jobId("nightly", Date.UTC(2026, 0, 1, 3))) // => nightly@2026-01-01T03:00:00.000Z
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const jobId = (name: string, tick: number): string => `${name}@${new Date(tick).toISOString()}`

/**
 * The tick (epoch milliseconds) of a scheduled job, from its id; `undefined` for a job not enqueued by a schedule.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { DurableSchedule, JobType } from "@fiberpool/durable"
 *
 * const Report = JobType.make({
 *   name: "report",
 *   payload: Schema.Null,
 *   handler: (_, { id }) => Effect.log(`report for ${new Date(DurableSchedule.tickOf(id) ?? 0).toISOString()}`)
 * })
 * console.log(DurableSchedule.tickOf("nightly@2026-01-01T03:00:00.000Z")) // => 1767236400000
 * console.log(DurableSchedule.tickOf("invoice-42"), Report.name) // => undefined report
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const tickOf = (id: string): number | undefined => {
  const at = id.lastIndexOf("@")
  if (at < 1) return undefined
  const iso = id.slice(at + 1)
  const tick = Date.parse(iso)
  return Number.isFinite(tick) && new Date(tick).toISOString() === iso ? tick : undefined
}

// ---- Internal ----

/** How many due schedules one round fires at most (the rest are due at the next round). */
const dueBatch = 100

/**
 * One round: the due schedules, each claimed by compare-and-swap in one transaction with its ticks' enqueues.
 * Run by every worker of the queue on its poll interval. A schedule's failure is logged and left for the next
 * round; only the poll itself fails.
 *
 * @internal
 */
export const fire = (
  queue: DurableQueue,
  store: ScheduleStore.ScheduleStore
): Effect.Effect<ReadonlyArray<string>, StoreError> =>
  Effect.gen(function*() {
    const fired: Array<string> = []
    const claims = store.claims
    if (claims !== undefined) {
      // ticks another firer claimed and did not settle within the store's lease: it died between the two
      for (const claim of yield* claims.takeOver(queue.name, dueBatch)) {
        const payload = parseJsonOrUndefined(claim.payload) ?? null
        fired.push(
          ...yield* enqueueTicks(queue, claim.name, claim.jobType, payload, claim.ticks, claim.priority).pipe(
            Effect.tap(() => claims.settle(queue.name, claim.name, claim.next)),
            Effect.catch((error) =>
              Effect.as(
                Effect.logWarning(`schedule ${claim.name}: firing its claimed ticks failed; retrying later`, error),
                []
              )
            )
          )
        )
      }
    }
    const { now, rows } = yield* store.due(queue.name, dueBatch)
    for (const row of rows) {
      const spec = ScheduleStore.decodeSpec(row.spec)
      const plan = spec === undefined
        ? undefined
        : ScheduleStore.dueTicks(spec, row.nextRunAt, now, ScheduleStore.decodeMissed(row.missed))
      if (plan === undefined) {
        yield* Effect.logWarning(`schedule ${row.name}: its stored timing cannot be read (${row.spec}); set it again`)
        continue
      }
      const payload = parseJsonOrUndefined(row.payload) ?? null
      const claimed = store.transaction(Effect.gen(function*() {
        if (!(yield* store.advance(queue.name, row, plan.next, plan.ticks))) return []
        const enqueued = yield* enqueueTicks(queue, row.name, row.jobType, payload, plan.ticks, row.priority)
        if (claims !== undefined) yield* claims.settle(queue.name, row.name, plan.next)
        return enqueued
      }))
      fired.push(
        ...yield* claimed.pipe(
          Effect.catch((error) =>
            Effect.as(
              Effect.logWarning(`schedule ${row.name}: firing its tick failed; retrying at the next poll`, error),
              []
            )
          )
        )
      )
    }
    return fired
  })

/** Enqueues the ticks' jobs; a tick whose job is refused (not a store failure) is logged and skipped. */
const enqueueTicks = (
  queue: DurableQueue,
  name: string,
  jobType: string,
  payload: unknown,
  ticks: ReadonlyArray<number>,
  priority: number
): Effect.Effect<ReadonlyArray<string>, StoreError> =>
  Effect.gen(function*() {
    const enqueued: Array<string> = []
    for (const tick of ticks) {
      const id = jobId(name, tick)
      // the schedule's priority, resolved at `set` (a stored 0 passes none: every store takes it)
      yield* enqueueEncoded(jobType, payload, priority === 0 ? { id } : { id, priority }).pipe(
        Effect.provideService(Service, queue),
        Effect.andThen(Effect.sync(() => void enqueued.push(id))),
        Effect.catchIf(
          (error): error is Exclude<EnqueueError, StoreError> => error._tag !== "StoreError",
          (error) => Effect.logError(`schedule ${name}: tick ${id} skipped: ${error.message}`)
        )
      )
    }
    return enqueued
  })

const storeOf = (queue: DurableQueue): Effect.Effect<ScheduleStore.ScheduleStore, SchedulesUnsupported> =>
  queue.schedules === undefined
    ? Effect.fail(new SchedulesUnsupported({ queue: queue.name }))
    : Effect.succeed(queue.schedules)

const nameOption = (name: unknown): Effect.Effect<string, PoolError.InvalidOptions> =>
  typeof name === "string" && name.length > 0 && name.length <= 200
    ? Effect.succeed(name)
    : Effect.fail(
      new PoolError.InvalidOptions({
        option: "name",
        value: JSON.stringify(name),
        expected: "a schedule name of 1 to 200 characters"
      })
    )

const minimumInterval = Duration.seconds(1)

const specOption = (
  options: SetOptions<JobType.AnyContract>
): Effect.Effect<ScheduleStore.Spec, PoolError.InvalidOptions> =>
  Effect.gen(function*() {
    const { cron, every, timezone } = options
    if ((cron === undefined) === (every === undefined)) {
      return yield* new PoolError.InvalidOptions({
        option: cron === undefined ? "cron" : "every",
        value: cron === undefined ? "undefined" : `${cron} and ${String(every)}`,
        expected: "exactly one of `cron` and `every`"
      })
    }
    if (every !== undefined) {
      if (timezone !== undefined) {
        return yield* new PoolError.InvalidOptions({
          option: "timezone",
          value: String(timezone),
          expected: "no time zone with `every` (an interval does not depend on one)"
        })
      }
      const interval = yield* durationOption("every", every, Duration.zero)
      if (!Duration.isFinite(interval) || Duration.isLessThan(interval, minimumInterval)) {
        return yield* new PoolError.InvalidOptions({
          option: "every",
          value: String(every),
          expected: "a finite duration of at least 1 second"
        })
      }
      return { _tag: "every", millis: Math.round(Duration.toMillis(interval)) }
    }
    const zone = DateTime.zoneFromString(timezone ?? "UTC")
    if (typeof timezone !== "undefined" && (typeof timezone !== "string" || Option.isNone(zone))) {
      return yield* new PoolError.InvalidOptions({
        option: "timezone",
        value: String(timezone),
        expected: "an IANA time zone (\"Europe/Paris\") or an offset (\"+02:00\")"
      })
    }
    const expression = String(cron)
    const parsed = Cron.parse(expression, Option.getOrThrow(zone))
    if (parsed._tag === "Failure") {
      return yield* new PoolError.InvalidOptions({
        option: "cron",
        value: expression,
        expected: `a cron expression of 5 fields, or 6 with seconds (${parsed.failure.message})`
      })
    }
    const spec: ScheduleStore.Spec = {
      _tag: "cron",
      // one space between fields: the same expression written twice is the same timing (see `set`)
      expression: expression.trim().split(/\s+/).join(" "),
      timezone: DateTime.zoneToString(Option.getOrThrow(zone))
    }
    // effect's Cron.next finds no date for an expression such as February 30th
    if (ScheduleStore.nextTick(spec, yield* Clock.currentTimeMillis) === undefined) {
      return yield* new PoolError.InvalidOptions({
        option: "cron",
        value: expression,
        expected: "a cron expression that matches some date"
      })
    }
    return spec
  })

const missedOption = (
  missed: MissedPolicy | undefined
): Effect.Effect<ScheduleStore.Missed, PoolError.InvalidOptions> => {
  if (missed === undefined || missed === "latest") return Effect.succeed("latest")
  const catchUp = typeof missed === "object" && missed !== null ? missed.catchUp : undefined
  return typeof catchUp === "number" && Number.isSafeInteger(catchUp) && catchUp >= 1 && catchUp <= 1000
    ? Effect.succeed({ catchUp })
    : Effect.fail(
      new PoolError.InvalidOptions({
        option: typeof missed === "object" && missed !== null ? "missed.catchUp" : "missed",
        value: typeof missed === "object" && missed !== null ? String(catchUp) : String(missed),
        expected: "\"latest\", or { catchUp } with an integer from 1 to 1000"
      })
    )
}

const toInfo = (row: ScheduleStore.ScheduleRow): ScheduleInfo => {
  const spec = ScheduleStore.decodeSpec(row.spec)
  return {
    name: row.name,
    type: row.jobType,
    cron: spec?._tag === "cron" ? spec.expression : undefined,
    timezone: spec?._tag === "cron" ? spec.timezone : undefined,
    every: spec?._tag === "every" ? Duration.millis(spec.millis) : undefined,
    payload: parseJsonOrUndefined(row.payload),
    missed: ScheduleStore.decodeMissed(row.missed),
    priority: row.priority,
    nextRunAt: row.nextRunAt
  }
}
