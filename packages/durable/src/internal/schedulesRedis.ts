/**
 * The schedule store (`scheduleStore.ts`) in Redis, next to effect's Redis `PersistedQueue` store under the same
 * key prefix. Per queue `<prefix><queue>:fp:sched:`:
 *
 * - `next` sorted set: schedule name → its next run (epoch milliseconds): the index `due` and `list` read;
 * - `type`, `payload`, `spec`, `missed`, `updated` hashes: schedule name → that column of its row (no key holds a
 *   schedule's name, so no key can end in `:ids` or `:failed`, which effect's store cleanup scans the prefix for;
 *   and no row is decoded by Lua's cjson, which rejects what `JSON.stringify` can write);
 * - `claims` sorted set: `<next>|<name>` → when a firer claimed the ticks before `next`; `claimed` hash: the same
 *   member → those ticks (comma-separated epoch milliseconds).
 *
 * Why claims: effect's offer and this store's compare-and-swap cannot be one transaction (effect's keys are its
 * own), so the CAS comes first and records the ticks it won; the firer enqueues their jobs, then settles the
 * claim. A firer that dies in between leaves the claim, and once it is older than the lease (the queue's
 * `lockExpiration`) another firer takes it over: it re-leases the claim in the same script (one taker per lease),
 * enqueues the ticks again (each job's id, `name@<tick>`, makes a second enqueue of a tick a no-op as long as
 * effect keeps the id: while the job is pending or running, and after it completes until the retention of
 * completed jobs) and settles it. The other order (enqueue, then CAS) would let a firer that read the schedule
 * before another claimed it enqueue ticks the CAS then refuses it: they would run anyway, and after the retention
 * of completed jobs a stale firer's tick would run twice.
 *
 * Every script reads the server's clock (`TIME`), so processes whose clocks differ agree on when a tick is due.
 * The keys of one queue are built inside the scripts from a base name (a single Redis server, not Cluster).
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redis from "effect/persistence/Redis"
import { StoreError } from "../DurableError.ts"
import type { ClaimedTicks, ScheduleRow, ScheduleStore } from "./scheduleStore.ts"

export const make = (
  redis: Redis.Redis["Service"],
  prefix: string,
  options: { readonly claimLease: Duration.Duration }
): ScheduleStore => {
  const baseOf = (queue: string) => `${prefix}${queue}:fp:sched:`
  const wrap = (operation: string) => <A>(effect: Effect.Effect<A, Redis.RedisError>) =>
    Effect.mapError(effect, (error) => new StoreError({ operation, cause: error.cause }))

  const upsert = redis.eval(upsertScript)
  const remove = redis.eval(removeScript)
  const list = redis.eval(listScript)
  const due = redis.eval(dueScript)
  const advance = redis.eval(advanceScript)
  const settle = redis.eval(settleScript)
  const takeOver = redis.eval(takeOverScript)
  const leaseMillis = Math.max(1, Math.round(Duration.toMillis(options.claimLease)))

  return {
    now: redis.send<[string, string]>("TIME").pipe(Effect.map(timeMillis), wrap("read the clock")),
    upsert: (queue, row) =>
      upsert(baseOf(queue), row.name, row.jobType, row.payload, row.spec, row.missed, row.nextRunAt, row.updatedAt)
        .pipe(
          Effect.map((nextRunAt) => ({ ...row, nextRunAt: Number(nextRunAt) })),
          wrap("set schedule")
        ),
    remove: (queue, name) =>
      remove(baseOf(queue), name).pipe(Effect.map((n) => Number(n) > 0), wrap("remove schedule")),
    list: (queue) =>
      list(baseOf(queue)).pipe(
        Effect.map((reply) => rowsOf(reply, 0).sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)),
        wrap("list schedules")
      ),
    due: (queue, limit) =>
      due(baseOf(queue), limit).pipe(
        Effect.map((reply) => ({ now: Number(reply[0]), rows: rowsOf(reply, 1) })),
        wrap("poll schedules")
      ),
    advance: (queue, expected, next, ticks) =>
      advance(baseOf(queue), expected.name, expected.nextRunAt, expected.spec, next, (ticks ?? []).join(",")).pipe(
        Effect.map((moved) => Number(moved) === 1),
        wrap("claim schedule tick")
      ),
    // the CAS and the enqueues are separate round trips here: `claims` is what makes that safe
    transaction: (effect) => effect,
    claims: {
      settle: (queue, name, next) => settle(baseOf(queue), `${next}|${name}`).pipe(Effect.asVoid, wrap("settle tick")),
      takeOver: (queue, limit) =>
        takeOver(baseOf(queue), leaseMillis, limit).pipe(
          Effect.map((reply) => {
            const claims: Array<ClaimedTicks> = []
            for (let i = 0; i + 4 < reply.length; i += 5) {
              claims.push({
                name: String(reply[i]),
                next: Number(reply[i + 1]),
                jobType: String(reply[i + 2]),
                payload: String(reply[i + 3]),
                // the Redis store has no priorities: `set` refuses any other
                priority: 0,
                ticks: String(reply[i + 4]).split(",").filter((tick) => tick !== "").map(Number)
              })
            }
            return claims
          }),
          wrap("take over schedule tick")
        )
    }
  }
}

// ---- Internal ----

/** `TIME`'s reply (seconds, microseconds) in epoch milliseconds. */
const timeMillis = ([seconds, micros]: readonly [string, string]): number =>
  Number(seconds) * 1000 + Math.floor(Number(micros) / 1000)

/** Rows as the scripts answer them: 7 values per row (see `rowLua`), from `start`. */
const rowsOf = (reply: ReadonlyArray<string | number>, start: number): Array<ScheduleRow> => {
  const rows: Array<ScheduleRow> = []
  for (let i = start; i + 6 < reply.length; i += 7) {
    rows.push({
      name: String(reply[i]),
      nextRunAt: Number(reply[i + 1]),
      jobType: String(reply[i + 2]),
      payload: String(reply[i + 3]),
      spec: String(reply[i + 4]),
      missed: String(reply[i + 5]),
      updatedAt: Number(reply[i + 6]),
      // the Redis store has no priorities: `set` refuses any other
      priority: 0
    })
  }
  return rows
}

/** The keys of a queue from its base, the server's clock, and a row's columns appended to a reply. */
const commonLua = `
local base = KEYS[1]
local key_next = base .. "next"
local key_type = base .. "type"
local key_payload = base .. "payload"
local key_spec = base .. "spec"
local key_missed = base .. "missed"
local key_updated = base .. "updated"
local key_claims = base .. "claims"
local key_claimed = base .. "claimed"
local function now_millis()
  local time = redis.call("TIME")
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
local function append_row(reply, name, next_run_at)
  reply[#reply + 1] = name
  reply[#reply + 1] = next_run_at
  reply[#reply + 1] = redis.call("HGET", key_type, name) or ""
  reply[#reply + 1] = redis.call("HGET", key_payload, name) or "null"
  reply[#reply + 1] = redis.call("HGET", key_spec, name) or ""
  reply[#reply + 1] = redis.call("HGET", key_missed, name) or ""
  reply[#reply + 1] = redis.call("HGET", key_updated, name) or "0"
end
`

const upsertScript = Redis.script(
  (
    ...args: [
      base: string,
      name: string,
      jobType: string,
      payload: string,
      spec: string,
      missed: string,
      nextRunAt: number,
      updatedAt: number
    ]
  ) => args,
  {
    lua: `${commonLua}
local name = ARGV[1]
local next_run_at = ARGV[6]
-- an unchanged timing keeps its next run: every process can set its schedules at start
if redis.call("HGET", key_spec, name) == ARGV[4] then
  local kept = redis.call("ZSCORE", key_next, name)
  if kept then next_run_at = kept end
end
redis.call("HSET", key_type, name, ARGV[2])
redis.call("HSET", key_payload, name, ARGV[3])
redis.call("HSET", key_spec, name, ARGV[4])
redis.call("HSET", key_missed, name, ARGV[5])
redis.call("HSET", key_updated, name, ARGV[7])
redis.call("ZADD", key_next, next_run_at, name)
return next_run_at
`,
    numberOfKeys: 1
  }
).withReturnType<string>()

const removeScript = Redis.script(
  (...args: [base: string, name: string]) => args,
  {
    lua: `${commonLua}
local name = ARGV[1]
local removed = redis.call("ZREM", key_next, name)
redis.call("HDEL", key_type, name)
redis.call("HDEL", key_payload, name)
redis.call("HDEL", key_spec, name)
redis.call("HDEL", key_missed, name)
redis.call("HDEL", key_updated, name)
return removed
`,
    numberOfKeys: 1
  }
).withReturnType<number>()

const listScript = Redis.script(
  (...args: [base: string]) => args,
  {
    lua: `${commonLua}
local entries = redis.call("ZRANGE", key_next, 0, -1, "WITHSCORES")
local reply = {}
for i = 1, #entries, 2 do
  append_row(reply, entries[i], entries[i + 1])
end
return reply
`,
    numberOfKeys: 1
  }
).withReturnType<ReadonlyArray<string>>()

const dueScript = Redis.script(
  (...args: [base: string, limit: number]) => args,
  {
    lua: `${commonLua}
local now = now_millis()
-- by next run, then by name: the order of the SQL store
local entries = redis.call("ZRANGEBYSCORE", key_next, "-inf", now, "WITHSCORES", "LIMIT", 0, tonumber(ARGV[1]))
local reply = { tostring(now) }
for i = 1, #entries, 2 do
  append_row(reply, entries[i], entries[i + 1])
end
return reply
`,
    numberOfKeys: 1
  }
).withReturnType<ReadonlyArray<string>>()

const advanceScript = Redis.script(
  (
    ...args: [base: string, name: string, expectedNextRunAt: number, expectedSpec: string, next: number, ticks: string]
  ) => args,
  {
    lua: `${commonLua}
local name = ARGV[1]
local stored = redis.call("ZSCORE", key_next, name)
if not stored or tonumber(stored) ~= tonumber(ARGV[2]) or redis.call("HGET", key_spec, name) ~= ARGV[3] then
  return 0
end
redis.call("ZADD", key_next, ARGV[4], name)
if ARGV[5] ~= "" then
  -- the ticks this call won, until the firer settles them (or another takes them over)
  local member = ARGV[4] .. "|" .. name
  redis.call("ZADD", key_claims, now_millis(), member)
  redis.call("HSET", key_claimed, member, ARGV[5])
end
return 1
`,
    numberOfKeys: 1
  }
).withReturnType<number>()

const settleScript = Redis.script(
  (...args: [base: string, member: string]) => args,
  {
    lua: `${commonLua}
redis.call("ZREM", key_claims, ARGV[1])
redis.call("HDEL", key_claimed, ARGV[1])
`,
    numberOfKeys: 1
  }
)

const takeOverScript = Redis.script(
  (...args: [base: string, leaseMillis: number, limit: number]) => args,
  {
    lua: `${commonLua}
local now = now_millis()
local members = redis.call("ZRANGEBYSCORE", key_claims, "-inf", now - tonumber(ARGV[1]), "LIMIT", 0, tonumber(ARGV[2]))
local reply = {}
for _, member in ipairs(members) do
  local separator = string.find(member, "|", 1, true)
  local name = string.sub(member, separator + 1)
  local ticks = redis.call("HGET", key_claimed, member)
  local job_type = redis.call("HGET", key_type, name)
  if not ticks or not job_type then
    -- the schedule was removed since: no tick of it fires after that
    redis.call("ZREM", key_claims, member)
    redis.call("HDEL", key_claimed, member)
  else
    -- re-leased: one taker per lease
    redis.call("ZADD", key_claims, now, member)
    reply[#reply + 1] = name
    reply[#reply + 1] = string.sub(member, 1, separator - 1)
    reply[#reply + 1] = job_type
    reply[#reply + 1] = redis.call("HGET", key_payload, name) or "null"
    reply[#reply + 1] = ticks
  end
end
return reply
`,
    numberOfKeys: 1
  }
).withReturnType<ReadonlyArray<string>>()
