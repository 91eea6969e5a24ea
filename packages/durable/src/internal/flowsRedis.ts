/**
 * The flow store (`flows.ts`) in Redis, next to effect's Redis `PersistedQueue` store under the same key prefix.
 * Per queue `<prefix><queue>:fp:flow:`:
 *
 * - `type`, `envelope`, `policy`, `state`, `pending`, `dead`, `updated` hashes: parent id → that column of its
 *   flow; `finished` sorted set: the flows done, failed or cancelled, by when they last changed (for retention);
 * - `child:parent`, `child:type`, `child:state`, `child:result`, `child:error` hashes: child id → that column;
 *   `kids:<parent id>:order` list: a flow's children in the order they were given (the only keys that hold an id:
 *   they end in `:order`, never in `:ids` or `:failed`, which effect's store cleanup scans the prefix for);
 * - `marks` sorted set: parent id → when a transition of its flow was decided (offer the parent, or dead-letter
 *   it) and not yet acted on; `mark:kind` hash: parent id → which (`offer`, `fail:<child id>`).
 *
 * A child's settlement is one script: the child's conditional move, the flow's counters, its transition (the rules
 * of `decide`, written again in Lua: see `decideLua`) and, when there is one, the mark. The worker then offers the
 * parent (or writes its dead letter), and clears the mark: effect's offer cannot be in the script (its keys are its
 * own). A process that dies in between leaves the mark; once it is older than the lease (`lockExpiration`), the
 * next maintenance round of any worker takes it over (re-leased in the same script, one taker at a time) and acts
 * on it again: the parent's offer is de-duplicated by its id, a dead letter is overwritten with the same row.
 *
 * `DurableFlow.enqueue` writes the flow (one script), then offers the children: a process that dies in between
 * leaves children unoffered. Enqueuing the same flow again (same parent id, same child ids and types) while it
 * waits answers "created" again, so that the enqueue offers its children (de-duplicated by their ids).
 *
 * The keys of one queue are built inside the scripts from a base name (a single Redis server, not Cluster).
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Redis from "effect/persistence/Redis"
import { StoreError } from "../DurableError.ts"
import type { ChildRow, FlowRow, FlowStore, Mark, Transition } from "./flows.ts"

export const make = (
  redis: Redis.Redis["Service"],
  prefix: string,
  options: { readonly markLease: Duration.Duration }
): FlowStore => {
  const baseOf = (queue: string) => `${prefix}${queue}:fp:flow:`
  const wrap = (operation: string) => <A>(effect: Effect.Effect<A, Redis.RedisError>) =>
    Effect.mapError(effect, (error) => new StoreError({ operation, cause: error.cause }))
  const leaseMillis = Math.max(1, Math.round(Duration.toMillis(options.markLease)))

  const create = redis.eval(createScript)
  const settle = redis.eval(settleScript)
  const get = redis.eval(getScript)
  const children = redis.eval(childrenScript)
  const move = redis.eval(moveScript)
  const deleteFinished = redis.eval(deleteFinishedScript)
  const clearMark = redis.eval(clearMarkScript)
  const takeOver = redis.eval(takeOverScript)

  return {
    create: (queue, flow, now) =>
      create(
        baseOf(queue),
        flow.parentId,
        flow.parentOf === undefined ? "0" : "1",
        flow.parentOf ?? "",
        flow.parentType,
        flow.envelope,
        flow.onChildFailure,
        now,
        flow.children.flatMap((child) => [child.childId, child.childType])
      ).pipe(
        Effect.map((reply) =>
          reply[0] === "created" ? "created" as const : reply[0] === "exists" ? "exists" as const : { taken: reply[1] }
        ),
        wrap("enqueue flow")
      ),
    settle: (queue, childId, settlement, now) =>
      settle(
        baseOf(queue),
        childId,
        settlement.status,
        settlement.status === "succeeded" ? (settlement.result === null ? "0" : "1") : "1",
        settlement.status === "succeeded" ? settlement.result ?? "" : settlement.error,
        now
      ).pipe(
        Effect.map((reply): Transition => {
          if (reply[0] === "None") return { _tag: "None" }
          const flow = flowOf(reply, 2)
          return reply[0] === "Runnable"
            ? { _tag: "Runnable", flow, revived: reply[1] === "1" }
            : { _tag: "Failed", flow, child: childOf(reply, 9) }
        }),
        wrap("settle flow child")
      ),
    get: (queue, parentId) =>
      get(baseOf(queue), parentId).pipe(
        Effect.map((reply) => reply.length === 0 ? undefined : flowOf(reply, 0)),
        wrap("read flow")
      ),
    children: (queue, parentId) =>
      children(baseOf(queue), parentId).pipe(
        Effect.map((reply) => {
          const rows: Array<ChildRow> = []
          for (let i = 0; i + 4 < reply.length; i += 5) rows.push(childOf(reply, i))
          return rows
        }),
        wrap("read flow children")
      ),
    move: (queue, parentId, from, to, now) =>
      move(baseOf(queue), parentId, from, to, now).pipe(
        Effect.map((reply) => reply.length === 0 ? undefined : { ...flowOf(reply, 0), state: from }),
        wrap("update flow")
      ),
    deleteFinished: (queue, beforeMillis, limit) =>
      deleteFinished(baseOf(queue), beforeMillis, limit).pipe(wrap("retention")),
    // a settlement and the offer of its parent are separate round trips here: `marks` is what makes that safe
    transaction: (effect) => effect,
    marks: {
      clear: (queue, parentId, mark) =>
        clearMark(baseOf(queue), parentId, mark).pipe(Effect.asVoid, wrap("settle flow")),
      takeOver: (queue, limit) =>
        takeOver(baseOf(queue), leaseMillis, limit).pipe(
          Effect.map((reply) => {
            const marks: Array<{ readonly flow: FlowRow; readonly mark: Mark; readonly child: ChildRow | undefined }> =
              []
            // 1 mark + 7 flow columns + 1 flag + 5 child columns per mark
            for (let i = 0; i + 13 < reply.length; i += 14) {
              marks.push({
                mark: String(reply[i]),
                flow: flowOf(reply, i + 1),
                child: reply[i + 8] === "1" ? childOf(reply, i + 9) : undefined
              })
            }
            return marks
          }),
          wrap("recover flow")
        )
    }
  }
}

// ---- Internal ----

/** A flow as the scripts answer it (see `flowLua`): 7 values from `start`. */
const flowOf = (reply: ReadonlyArray<string>, start: number): FlowRow => ({
  parentId: reply[start],
  parentType: reply[start + 1],
  envelope: reply[start + 2],
  onChildFailure: reply[start + 3] as FlowRow["onChildFailure"],
  state: reply[start + 4] as FlowRow["state"],
  pending: Number(reply[start + 5]),
  dead: Number(reply[start + 6])
})

/** A child as the scripts answer it (see `childLua`): 5 values from `start`; `~` marks a missing result/error. */
const childOf = (reply: ReadonlyArray<string>, start: number): ChildRow => ({
  childId: reply[start],
  childType: reply[start + 1],
  state: reply[start + 2] as ChildRow["state"],
  result: reply[start + 3] === "~" ? null : reply[start + 3].slice(1),
  error: reply[start + 4] === "~" ? null : reply[start + 4].slice(1)
})

const commonLua = `
local base = KEYS[1]
local key_type = base .. "type"
local key_envelope = base .. "envelope"
local key_policy = base .. "policy"
local key_state = base .. "state"
local key_pending = base .. "pending"
local key_dead = base .. "dead"
local key_updated = base .. "updated"
local key_finished = base .. "finished"
local key_child_parent = base .. "child:parent"
local key_child_type = base .. "child:type"
local key_child_state = base .. "child:state"
local key_child_result = base .. "child:result"
local key_child_error = base .. "child:error"
local key_marks = base .. "marks"
local key_mark_kind = base .. "mark:kind"
local function key_order(parent) return base .. "kids:" .. parent .. ":order" end
local function now_millis()
  local time = redis.call("TIME")
  return tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
end
-- a flow's 7 columns, appended to a reply
local function append_flow(reply, parent)
  reply[#reply + 1] = parent
  reply[#reply + 1] = redis.call("HGET", key_type, parent) or ""
  reply[#reply + 1] = redis.call("HGET", key_envelope, parent) or "null"
  reply[#reply + 1] = redis.call("HGET", key_policy, parent) or "fail-parent"
  reply[#reply + 1] = redis.call("HGET", key_state, parent) or "waiting"
  reply[#reply + 1] = redis.call("HGET", key_pending, parent) or "0"
  reply[#reply + 1] = redis.call("HGET", key_dead, parent) or "0"
end
-- a child's 5 columns; a result or error is prefixed with "=", "~" when there is none
local function append_child(reply, child)
  reply[#reply + 1] = child
  reply[#reply + 1] = redis.call("HGET", key_child_type, child) or ""
  reply[#reply + 1] = redis.call("HGET", key_child_state, child) or "pending"
  local result = redis.call("HGET", key_child_result, child)
  reply[#reply + 1] = result and ("=" .. result) or "~"
  local err = redis.call("HGET", key_child_error, child)
  reply[#reply + 1] = err and ("=" .. err) or "~"
end
local function set_state(parent, state, now)
  redis.call("HSET", key_state, parent, state)
  redis.call("HSET", key_updated, parent, now)
  -- retention takes finished flows only: an offered flow's parent has not run yet, and reads its children
  if state == "waiting" or state == "offered" then
    redis.call("ZREM", key_finished, parent)
  else
    redis.call("ZADD", key_finished, now, parent)
  end
end
local function set_mark(parent, kind)
  redis.call("ZADD", key_marks, now_millis(), parent)
  redis.call("HSET", key_mark_kind, parent, kind)
end
`

const createScript = Redis.script(
  (
    base: string,
    parentId: string,
    hasParentOf: "0" | "1",
    parentOf: string,
    parentType: string,
    envelope: string,
    policy: string,
    now: number,
    children: ReadonlyArray<string>
  ) => [base, parentId, hasParentOf, parentOf, parentType, envelope, policy, now, ...children],
  {
    lua: `${commonLua}
local parent = ARGV[1]
if redis.call("HEXISTS", key_state, parent) == 1 then
  -- the same flow, still waiting: an enqueue again after one that died before offering every child (the
  -- children's offers are not in this script); "created" lets it offer them again, de-duplicated by their ids
  local order = redis.call("LRANGE", key_order(parent), 0, -1)
  local same = redis.call("HGET", key_state, parent) == "waiting" and #order == (#ARGV - 7) / 2
  for i, child in ipairs(order) do
    if not same then break end
    same = ARGV[6 + 2 * i] == child and redis.call("HGET", key_child_type, child) == ARGV[7 + 2 * i]
  end
  if same then return { "created" } end
  return { "exists" }
end
local as_child = redis.call("HGET", key_child_parent, parent)
if as_child and (ARGV[2] == "0" or as_child ~= ARGV[3]) then return { "taken", parent } end
for i = 8, #ARGV, 2 do
  local child = ARGV[i]
  if redis.call("HEXISTS", key_child_parent, child) == 1 or redis.call("HEXISTS", key_state, child) == 1 then
    return { "taken", child }
  end
end
redis.call("HSET", key_type, parent, ARGV[4])
redis.call("HSET", key_envelope, parent, ARGV[5])
redis.call("HSET", key_policy, parent, ARGV[6])
redis.call("HSET", key_pending, parent, (#ARGV - 7) / 2)
redis.call("HSET", key_dead, parent, 0)
set_state(parent, "waiting", ARGV[7])
for i = 8, #ARGV, 2 do
  local child = ARGV[i]
  redis.call("HSET", key_child_parent, child, parent)
  redis.call("HSET", key_child_type, child, ARGV[i + 1])
  redis.call("HSET", key_child_state, child, "pending")
  redis.call("RPUSH", key_order(parent), child)
end
return { "created" }
`,
    numberOfKeys: 1
  }
).withReturnType<ReadonlyArray<string>>()

/**
 * The rules of `flows.ts`'s `decide`, for the settlement script: the counters are changed there, atomically with
 * the transition. Kept in step with `decide` by the tests that run the same cases on every store.
 */
const decideLua = `
local function decide(state, policy, pending, dead, moved)
  if state == "waiting" then
    if moved == "dead" and policy == "fail-parent" then return "failed", "Failed" end
    if pending == 0 and (policy == "run-parent" or dead == 0) then return "offered", "Runnable" end
    return "waiting", "None"
  end
  if state == "failed" and pending == 0 and dead == 0 then return "offered", "Runnable" end
  return state, "None"
end
`

const settleScript = Redis.script(
  (
    ...args: [
      base: string,
      childId: string,
      status: "succeeded" | "dead",
      hasValue: "0" | "1",
      value: string,
      now: number
    ]
  ) => args,
  {
    lua: `${commonLua}${decideLua}
local child = ARGV[1]
local status = ARGV[2]
local now = ARGV[5]
local parent = redis.call("HGET", key_child_parent, child)
if not parent then return { "None" } end
local from = redis.call("HGET", key_child_state, child)
-- a child moves pending -> succeeded, pending -> dead or dead -> succeeded, never back: a second report is a no-op
if from == "succeeded" or (from == "dead" and status == "dead") then return { "None" } end
if redis.call("HEXISTS", key_state, parent) == 0 then return { "None" } end
redis.call("HSET", key_child_state, child, status)
if status == "succeeded" then
  if ARGV[3] == "1" then redis.call("HSET", key_child_result, child, ARGV[4]) else redis.call("HDEL", key_child_result, child) end
  redis.call("HDEL", key_child_error, child)
else
  redis.call("HSET", key_child_error, child, ARGV[4])
end
local pending = tonumber(redis.call("HINCRBY", key_pending, parent, from == "pending" and -1 or 0))
local dead_delta = (status == "dead" and 1 or 0) - (from == "dead" and 1 or 0)
local dead = tonumber(redis.call("HINCRBY", key_dead, parent, dead_delta))
redis.call("HSET", key_updated, parent, now)
local state = redis.call("HGET", key_state, parent)
local next_state, transition = decide(state, redis.call("HGET", key_policy, parent), pending, dead, status)
if transition == "None" then return { "None" } end
set_state(parent, next_state, now)
local reply = { transition, state == "failed" and "1" or "0" }
append_flow(reply, parent)
if transition == "Runnable" then
  set_mark(parent, "offer")
else
  set_mark(parent, "fail:" .. child)
  append_child(reply, child)
end
return reply
`,
    numberOfKeys: 1
  }
).withReturnType<ReadonlyArray<string>>()

const getScript = Redis.script(
  (...args: [base: string, parentId: string]) => args,
  {
    lua: `${commonLua}
local reply = {}
if redis.call("HEXISTS", key_state, ARGV[1]) == 1 then append_flow(reply, ARGV[1]) end
return reply
`,
    numberOfKeys: 1
  }
).withReturnType<ReadonlyArray<string>>()

const childrenScript = Redis.script(
  (...args: [base: string, parentId: string]) => args,
  {
    lua: `${commonLua}
local reply = {}
for _, child in ipairs(redis.call("LRANGE", key_order(ARGV[1]), 0, -1)) do append_child(reply, child) end
return reply
`,
    numberOfKeys: 1
  }
).withReturnType<ReadonlyArray<string>>()

const moveScript = Redis.script(
  (...args: [base: string, parentId: string, from: string, to: string, now: number]) => args,
  {
    lua: `${commonLua}
local parent = ARGV[1]
if redis.call("HGET", key_state, parent) ~= ARGV[2] then return {} end
set_state(parent, ARGV[3], ARGV[4])
-- the caller offers the parent next: if it dies first, the maintenance offers it
if ARGV[3] == "offered" then set_mark(parent, "offer") end
local reply = {}
append_flow(reply, parent)
return reply
`,
    numberOfKeys: 1
  }
).withReturnType<ReadonlyArray<string>>()

const deleteFinishedScript = Redis.script(
  (...args: [base: string, beforeMillis: number, limit: number]) => args,
  {
    lua: `${commonLua}
local ids = redis.call("ZRANGEBYSCORE", key_finished, "-inf", "(" .. ARGV[1], "LIMIT", 0, tonumber(ARGV[2]))
for _, parent in ipairs(ids) do
  for _, child in ipairs(redis.call("LRANGE", key_order(parent), 0, -1)) do
    redis.call("HDEL", key_child_parent, child)
    redis.call("HDEL", key_child_type, child)
    redis.call("HDEL", key_child_state, child)
    redis.call("HDEL", key_child_result, child)
    redis.call("HDEL", key_child_error, child)
  end
  redis.call("DEL", key_order(parent))
  for _, key in ipairs({ key_type, key_envelope, key_policy, key_state, key_pending, key_dead, key_updated, key_mark_kind }) do
    redis.call("HDEL", key, parent)
  end
  redis.call("ZREM", key_finished, parent)
  redis.call("ZREM", key_marks, parent)
end
return ids
`,
    numberOfKeys: 1
  }
).withReturnType<ReadonlyArray<string>>()

const clearMarkScript = Redis.script(
  (...args: [base: string, parentId: string, mark: string]) => args,
  {
    lua: `${commonLua}
-- only the mark that was acted on: a later transition of the same flow (failed, then revived) keeps its own
if redis.call("HGET", key_mark_kind, ARGV[1]) == ARGV[2] then
  redis.call("ZREM", key_marks, ARGV[1])
  redis.call("HDEL", key_mark_kind, ARGV[1])
end
`,
    numberOfKeys: 1
  }
)

const takeOverScript = Redis.script(
  (...args: [base: string, leaseMillis: number, limit: number]) => args,
  {
    lua: `${commonLua}
local now = now_millis()
local ids = redis.call("ZRANGEBYSCORE", key_marks, "-inf", now - tonumber(ARGV[1]), "LIMIT", 0, tonumber(ARGV[2]))
local reply = {}
for _, parent in ipairs(ids) do
  local kind = redis.call("HGET", key_mark_kind, parent)
  if not kind or redis.call("HEXISTS", key_state, parent) == 0 then
    redis.call("ZREM", key_marks, parent)
    redis.call("HDEL", key_mark_kind, parent)
  else
    -- re-leased: one taker per lease
    redis.call("ZADD", key_marks, now, parent)
    reply[#reply + 1] = kind
    append_flow(reply, parent)
    local child = string.match(kind, "^fail:(.*)$")
    if child and redis.call("HEXISTS", key_child_parent, child) == 1 then
      reply[#reply + 1] = "1"
      append_child(reply, child)
    else
      reply[#reply + 1] = "0"
      for _ = 1, 5 do reply[#reply + 1] = "" end
    end
  end
end
return reply
`,
    numberOfKeys: 1
  }
).withReturnType<ReadonlyArray<string>>()
