/**
 * The outcome store (kept results, dead letters, progress) in Redis, next to effect's Redis `PersistedQueue`
 * store under the same key prefix. Per queue `<prefix><queue>`:
 *
 * - `…:fp:outcomes` hash: job id → the row (JSON);
 * - `…:fp:kinds` hash: job id → `status|type`, what a row is indexed under (read back to unindex it, so a
 *   row's JSON is never decoded by Lua: cjson rejects what `JSON.stringify` can write);
 * - `…:fp:by:<status>` sorted set: job ids scored by `finishedAt` (equal scores are ordered by id, byte-wise:
 *   the (finishedAt, jobId) order of the dead-letter pages); `…:fp:by:dead:<type>` the same for one type's dead
 *   letters;
 * - `…:fp:counts` hash: `status|type` → how many rows;
 * - `…:fp:progress` hash: job id → `{progress, attempt, updatedAt}` (JSON); `…:fp:progress:at` sorted set by
 *   `updatedAt`, for retention.
 *
 * Every write is one Lua script, so the indexes and counts never disagree with the rows, whatever runs at once in
 * other processes. No key ends in `:ids` or `:failed`: effect's store cleanup scans the prefix for those.
 * The keys of one queue are built inside the scripts from a base name (a single Redis server, not Cluster).
 */
import * as Effect from "effect/Effect"
import * as Redis from "effect/persistence/Redis"
import { StoreError } from "../DurableError.ts"
import type { OutcomeRow, OutcomeStore } from "./outcomes.ts"

export const make = (redis: Redis.Redis["Service"], prefix: string): OutcomeStore => {
  const keysOf = (queue: string) => {
    const base = `${prefix}${queue}:fp:`
    return {
      base: `${base}by:`,
      rows: `${base}outcomes`,
      kinds: `${base}kinds`,
      counts: `${base}counts`,
      progress: `${base}progress`,
      progressAt: `${base}progress:at`
    }
  }
  const wrap = (operation: string) => <A>(effect: Effect.Effect<A, Redis.RedisError>) =>
    Effect.mapError(effect, (error) => new StoreError({ operation, cause: error.cause }))
  const parseRow = (json: string | null): OutcomeRow | undefined =>
    json === null ? undefined : JSON.parse(json) as OutcomeRow

  const put = redis.eval(putScript)
  const remove = redis.eval(removeScript)
  const deleteOlder = redis.eval(deleteOlderScript)
  const deleteBeyond = redis.eval(deleteBeyondScript)
  const listDead = redis.eval(listDeadScript)
  const putProgress = redis.eval(putProgressScript)
  const deleteProgress = redis.eval(deleteProgressScript)

  return {
    put: (queue, row) => {
      const keys = keysOf(queue)
      return put(
        keys.rows,
        keys.kinds,
        keys.counts,
        keys.base,
        row.jobId,
        row.status,
        row.jobType,
        JSON.stringify(row),
        row.finishedAt
      ).pipe(Effect.asVoid, wrap("record outcome"))
    },
    get: (queue, jobId) =>
      redis.send<string | null>("HGET", keysOf(queue).rows, jobId).pipe(Effect.map(parseRow), wrap("read outcome")),
    listDead: (queue, { after, jobType, limit }) => {
      const keys = keysOf(queue)
      return listDead(
        keys.rows,
        jobType === undefined ? `${keys.base}dead` : `${keys.base}dead:${jobType}`,
        limit,
        after === undefined ? "0" : "1",
        after?.finishedAt ?? 0,
        after?.jobId ?? ""
      ).pipe(
        Effect.map((rows) => rows.flatMap((json) => parseRow(json) ?? [])),
        wrap("list dead letters")
      )
    },
    remove: (queue, jobId) => {
      const keys = keysOf(queue)
      return remove(keys.rows, keys.kinds, keys.counts, keys.base, jobId).pipe(Effect.asVoid, wrap("remove outcome"))
    },
    deleteOlder: (queue, status, beforeMillis, limit) => {
      const keys = keysOf(queue)
      return deleteOlder(keys.rows, keys.kinds, keys.counts, keys.base, status, beforeMillis, limit).pipe(
        wrap("retention")
      )
    },
    deleteBeyond: (queue, status, keep, limit) => {
      const keys = keysOf(queue)
      return deleteBeyond(keys.rows, keys.kinds, keys.counts, keys.base, status, keep, limit).pipe(wrap("retention"))
    },
    counts: (queue) =>
      redis.send<ReadonlyArray<string> | Readonly<Record<string, string>>>("HGETALL", keysOf(queue).counts).pipe(
        Effect.map((reply) => {
          const counts: Array<{ jobType: string; status: OutcomeRow["status"]; count: number }> = []
          for (const [kind, value] of hashEntries(reply)) {
            const separator = kind.indexOf("|")
            const count = Number(value)
            if (separator < 0 || count <= 0) continue
            counts.push({
              status: kind.slice(0, separator) as OutcomeRow["status"],
              jobType: kind.slice(separator + 1),
              count
            })
          }
          return counts
        }),
        wrap("stats")
      ),
    putProgress: (queue, jobId, progress, attempt, at) => {
      const keys = keysOf(queue)
      return putProgress(
        keys.progress,
        keys.progressAt,
        jobId,
        JSON.stringify({ progress, attempt, updatedAt: at }),
        at
      ).pipe(wrap("report progress"))
    },
    getProgress: (queue, jobId) =>
      redis.send<string | null>("HGET", keysOf(queue).progress, jobId).pipe(
        Effect.map((json) =>
          json === null
            ? undefined
            : JSON.parse(json) as { readonly progress: string; readonly attempt: number; readonly updatedAt: number }
        ),
        wrap("read progress")
      ),
    deleteProgressOlder: (queue, beforeMillis) => {
      const keys = keysOf(queue)
      const batch = deleteProgress(keys.progress, keys.progressAt, beforeMillis, progressBatch)
      const loop: Effect.Effect<void, Redis.RedisError> = Effect.flatMap(
        batch,
        (deleted) => deleted >= progressBatch ? loop : Effect.void
      )
      return wrap("retention")(loop)
    },
    // Redis has no transactions spanning several round trips: each write above is atomic by itself (a script)
    transaction: (effect) => effect
  }
}

// ---- Internal ----

const progressBatch = 1000

/** A hash as `HGETALL` answers it: node-redis maps it to an object; a RESP2 client answers a flat array. */
const hashEntries = (
  reply: ReadonlyArray<string> | Readonly<Record<string, string>> | null
): ReadonlyArray<readonly [string, string]> => {
  if (reply === null) return []
  if (!Array.isArray(reply)) return Object.entries(reply)
  const entries: Array<readonly [string, string]> = []
  for (let i = 0; i + 1 < reply.length; i += 2) entries.push([reply[i], reply[i + 1]])
  return entries
}

/** Removes a row with its indexes and count; `base` is the queue's `…:fp:by:` prefix. */
const unindexLua = `
local key_rows = KEYS[1]
local key_kinds = KEYS[2]
local key_counts = KEYS[3]
local base = ARGV[1]
local function unindex(id)
  local kind = redis.call("HGET", key_kinds, id)
  if not kind then
    redis.call("HDEL", key_rows, id)
    return
  end
  local separator = string.find(kind, "|", 1, true)
  local status = string.sub(kind, 1, separator - 1)
  local job_type = string.sub(kind, separator + 1)
  redis.call("ZREM", base .. status, id)
  if status == "dead" then
    redis.call("ZREM", base .. "dead:" .. job_type, id)
  end
  if redis.call("HINCRBY", key_counts, kind, -1) <= 0 then
    redis.call("HDEL", key_counts, kind)
  end
  redis.call("HDEL", key_kinds, id)
  redis.call("HDEL", key_rows, id)
end
`

const putScript = Redis.script(
  (
    ...args: [
      keyRows: string,
      keyKinds: string,
      keyCounts: string,
      base: string,
      id: string,
      status: string,
      jobType: string,
      json: string,
      finishedAt: number
    ]
  ) => args,
  {
    lua: `${unindexLua}
local id = ARGV[2]
local status = ARGV[3]
local job_type = ARGV[4]
local kind = status .. "|" .. job_type
unindex(id)
redis.call("HSET", key_rows, id, ARGV[5])
redis.call("HSET", key_kinds, id, kind)
redis.call("ZADD", base .. status, ARGV[6], id)
if status == "dead" then
  redis.call("ZADD", base .. "dead:" .. job_type, ARGV[6], id)
end
redis.call("HINCRBY", key_counts, kind, 1)
`,
    numberOfKeys: 3
  }
)

const removeScript = Redis.script(
  (...args: [keyRows: string, keyKinds: string, keyCounts: string, base: string, id: string]) => args,
  {
    lua: `${unindexLua}
unindex(ARGV[2])
`,
    numberOfKeys: 3
  }
)

const deleteOlderScript = Redis.script(
  (
    ...args: [
      keyRows: string,
      keyKinds: string,
      keyCounts: string,
      base: string,
      status: string,
      beforeMillis: number,
      limit: number
    ]
  ) => args,
  {
    lua: `${unindexLua}
local ids = redis.call("ZRANGEBYSCORE", base .. ARGV[2], "-inf", "(" .. ARGV[3], "LIMIT", 0, tonumber(ARGV[4]))
for _, id in ipairs(ids) do
  unindex(id)
end
return ids
`,
    numberOfKeys: 3
  }
).withReturnType<ReadonlyArray<string>>()

const deleteBeyondScript = Redis.script(
  (
    ...args: [
      keyRows: string,
      keyKinds: string,
      keyCounts: string,
      base: string,
      status: string,
      keep: number,
      limit: number
    ]
  ) => args,
  {
    lua: `${unindexLua}
local keep = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
-- most recent first: (finishedAt, id) descending, as the SQL store orders them
local ids = redis.call("ZREVRANGE", base .. ARGV[2], keep, keep + limit - 1)
for _, id in ipairs(ids) do
  unindex(id)
end
return ids
`,
    numberOfKeys: 3
  }
).withReturnType<ReadonlyArray<string>>()

const listDeadScript = Redis.script(
  (
    ...args: [
      keyRows: string,
      keyIndex: string,
      limit: number,
      hasAfter: "0" | "1",
      afterFinishedAt: number,
      afterId: string
    ]
  ) => args,
  {
    lua: `
local key_rows = KEYS[1]
local key_index = KEYS[2]
local limit = tonumber(ARGV[1])
local ids = {}
if ARGV[2] == "1" then
  -- rows after (finishedAt, id): the rest of the same millisecond (ordered by id), then the later ones
  local same = redis.call("ZRANGEBYSCORE", key_index, ARGV[3], ARGV[3])
  for _, id in ipairs(same) do
    if #ids < limit and id > ARGV[4] then
      ids[#ids + 1] = id
    end
  end
  if #ids < limit then
    local later = redis.call("ZRANGEBYSCORE", key_index, "(" .. ARGV[3], "+inf", "LIMIT", 0, limit - #ids)
    for _, id in ipairs(later) do
      ids[#ids + 1] = id
    end
  end
else
  ids = redis.call("ZRANGEBYSCORE", key_index, "-inf", "+inf", "LIMIT", 0, limit)
end
local rows = {}
for i, id in ipairs(ids) do
  rows[i] = redis.call("HGET", key_rows, id) or false
end
return rows
`,
    numberOfKeys: 2
  }
).withReturnType<ReadonlyArray<string | null>>()

const putProgressScript = Redis.script(
  (...args: [keyProgress: string, keyProgressAt: string, id: string, json: string, at: number]) => args,
  {
    lua: `
redis.call("HSET", KEYS[1], ARGV[1], ARGV[2])
redis.call("ZADD", KEYS[2], ARGV[3], ARGV[1])
`,
    numberOfKeys: 2
  }
)

const deleteProgressScript = Redis.script(
  (...args: [keyProgress: string, keyProgressAt: string, beforeMillis: number, limit: number]) => args,
  {
    lua: `
local ids = redis.call("ZRANGEBYSCORE", KEYS[2], "-inf", "(" .. ARGV[1], "LIMIT", 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call("HDEL", KEYS[1], id)
  redis.call("ZREM", KEYS[2], id)
end
return #ids
`,
    numberOfKeys: 2
  }
).withReturnType<number>()
