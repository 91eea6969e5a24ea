/**
 * The flow tables: a parent job waiting for its children, and each child's state and kept result. The parent's
 * envelope is kept here (not in the queue) until its last child settles; then it is offered, once.
 *
 * Invariants (every store):
 *
 * - a child moves `pending → succeeded`, `pending → dead` or `dead → succeeded` (a dead child re-queued and run
 *   again), never back: its settlement is a conditional update, so a child that completes twice (redelivered
 *   after a crash, run by two processes) counts once;
 * - a flow's `pending` and `dead` are the counts of its children in those states, changed in the transaction
 *   that moves the child; on PostgreSQL the counter update locks the flow's row, so the settlements of one
 *   flow's children are serialized and exactly one of them sees `pending = 0`;
 * - a flow moves `waiting → offered`, `waiting → failed`, `waiting → cancelled` or `failed → offered` (its dead
 *   children re-queued and succeeded), each by the one settlement whose counters allow it: the parent is offered
 *   (or dead-lettered) by one settlement only; `offered → done` when the parent's outcome is recorded (and
 *   `done → offered` when that outcome, a dead letter, is re-queued). Retention deletes `done`, `failed` and
 *   `cancelled` flows only: an offered parent always finds its flow.
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import type * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { ChildFailed, StoreError } from "../DurableError.ts"
import type { OutcomeStore } from "./outcomes.ts"

export type OnChildFailure = "fail-parent" | "run-parent"

export interface FlowRow {
  readonly parentId: string
  readonly parentType: string
  /** JSON text of the parent's envelope, offered when the flow is runnable */
  readonly envelope: string
  readonly onChildFailure: OnChildFailure
  /** `done`: the parent was offered and has an outcome (succeeded, dead-lettered, cancelled) */
  readonly state: "waiting" | "offered" | "failed" | "cancelled" | "done"
  readonly pending: number
  readonly dead: number
}

export interface ChildRow {
  readonly childId: string
  readonly childType: string
  readonly state: "pending" | "succeeded" | "dead"
  /** JSON text of the encoded result (succeeded children) */
  readonly result: string | null
  readonly error: string | null
}

export interface NewFlow {
  readonly parentId: string
  /** the parent's own parent, when this flow is a child of another (nesting) */
  readonly parentOf: string | undefined
  readonly parentType: string
  readonly envelope: string
  readonly onChildFailure: OnChildFailure
  readonly children: ReadonlyArray<{ readonly childId: string; readonly childType: string }>
}

export type Settlement =
  | { readonly status: "succeeded"; readonly result: string | null }
  | { readonly status: "dead"; readonly error: string }

/** What a settlement did to its flow: nothing, made the parent runnable (offer it), or failed it. */
export type Transition =
  | { readonly _tag: "None" }
  /** `revived`: the flow had failed (its parent dead-lettered) and its dead children have since succeeded */
  | { readonly _tag: "Runnable"; readonly flow: FlowRow; readonly revived: boolean }
  | { readonly _tag: "Failed"; readonly flow: FlowRow; readonly child: ChildRow }

export interface FlowStore {
  /**
   * Stores a flow: its parent waiting, its children pending. `"exists"` (nothing written) when the queue has a
   * flow with this parent id; `{ taken }` (nothing written) when the parent's id is another flow's child, or a
   * child's id is another flow's child or parent (either would be de-duplicated away in the queue). A store whose
   * `transaction` cannot hold the children's offers (Redis) answers `"created"` (nothing written) for the same flow
   * (same children) still waiting, so that enqueuing it again offers the children a dead process left unoffered.
   */
  readonly create: (
    queue: string,
    flow: NewFlow,
    now: number
  ) => Effect.Effect<"created" | "exists" | { readonly taken: string }, StoreError>
  /**
   * Records a child's outcome, if it changes the child's state, and says what that did to its flow. Run it in a
   * transaction (`settleChild` does), with what the transition calls for.
   */
  readonly settle: (
    queue: string,
    childId: string,
    settlement: Settlement,
    now: number
  ) => Effect.Effect<Transition, StoreError>
  readonly get: (queue: string, parentId: string) => Effect.Effect<FlowRow | undefined, StoreError>
  /** a flow's children, in the order they were given */
  readonly children: (queue: string, parentId: string) => Effect.Effect<ReadonlyArray<ChildRow>, StoreError>
  /** moves a flow from `from` to `to`; the flow as it was, or undefined when it is not in state `from` */
  readonly move: (
    queue: string,
    parentId: string,
    from: FlowRow["state"],
    to: FlowRow["state"],
    now: number
  ) => Effect.Effect<FlowRow | undefined, StoreError>
  /**
   * deletes up to `limit` flows (with their children) that are `done`, `failed` or `cancelled` (never `waiting` or
   * `offered`: a parent yet to run reads its flow), last changed before `beforeMillis`; their ids
   */
  readonly deleteFinished: (
    queue: string,
    beforeMillis: number,
    limit: number
  ) => Effect.Effect<ReadonlyArray<string>, StoreError>
  /** Runs the effect in one transaction: nothing it wrote is kept when it fails (joins an enclosing one). */
  readonly transaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E | StoreError, R>
  /**
   * For a store whose `transaction` cannot hold a settlement and what its transition calls for (Redis: effect's
   * queue keys are its own), so that a process dying between the two loses no parent: `settle` (and `move` to
   * `offered`) also marks the flow with its pending {@link Mark}, `clear` removes it once acted on, and `takeOver`
   * hands the marks older than the store's lease to the caller, re-leased to it, to act on again ({@link recover}).
   * Undefined when `transaction` makes them one.
   */
  readonly marks?: {
    readonly clear: (queue: string, parentId: string, mark: Mark) => Effect.Effect<void, StoreError>
    readonly takeOver: (
      queue: string,
      limit: number
    ) => Effect.Effect<
      ReadonlyArray<{ readonly flow: FlowRow; readonly mark: Mark; readonly child: ChildRow | undefined }>,
      StoreError
    >
  } | undefined
}

/** What a flow's transition still calls for: `"offer"` its parent, or `"fail:<child id>"` (dead-letter it). */
export type Mark = string

const markOf = (transition: Exclude<Transition, { readonly _tag: "None" }>): Mark =>
  transition._tag === "Runnable" ? "offer" : `fail:${transition.child.childId}`

/** The memory store's undo log of the current transaction (fiber-local): undone, newest first, on failure. */
const UndoLog = Context.Reference<Array<() => void> | undefined>("@fiberpool/durable/internal/flows/UndoLog", {
  defaultValue: () => undefined
})

/**
 * The transition a flow takes after one of its children moved, given its counters after the move: one function
 * for every store, so the memory and SQL stores decide alike.
 */
export const decide = (
  flow: FlowRow,
  moved: "succeeded" | "dead"
): { readonly next: FlowRow["state"]; readonly transition: "None" | "Runnable" | "Failed" } => {
  if (flow.state === "waiting") {
    if (moved === "dead" && flow.onChildFailure === "fail-parent") return { next: "failed", transition: "Failed" }
    const done = flow.pending === 0 && (flow.onChildFailure === "run-parent" || flow.dead === 0)
    return done ? { next: "offered", transition: "Runnable" } : { next: "waiting", transition: "None" }
  }
  if (flow.state === "failed" && flow.pending === 0 && flow.dead === 0) {
    return { next: "offered", transition: "Runnable" }
  }
  return { next: flow.state, transition: "None" }
}

export const makeMemory = (): FlowStore => {
  type Flow = { row: FlowRow; readonly children: Array<string>; updatedAt: number }
  const flows = new Map<string, Flow>()
  const children = new Map<string, { row: ChildRow; readonly parentId: string }>()
  const key = (queue: string, id: string) => `${queue}\u0000${id}`
  return {
    create: (queue, flow, now) =>
      Effect.map(Effect.service(UndoLog), (log) => {
        if (flows.has(key(queue, flow.parentId))) return "exists"
        const asChild = children.get(key(queue, flow.parentId))
        if (asChild !== undefined && asChild.parentId !== flow.parentOf) return { taken: flow.parentId }
        const taken = flow.children.find((child) =>
          children.has(key(queue, child.childId)) || flows.has(key(queue, child.childId))
        )
        if (taken !== undefined) return { taken: taken.childId }
        flows.set(key(queue, flow.parentId), {
          row: {
            parentId: flow.parentId,
            parentType: flow.parentType,
            envelope: flow.envelope,
            onChildFailure: flow.onChildFailure,
            state: "waiting",
            pending: flow.children.length,
            dead: 0
          },
          children: flow.children.map((child) => child.childId),
          updatedAt: now
        })
        for (const child of flow.children) {
          children.set(key(queue, child.childId), {
            row: { childId: child.childId, childType: child.childType, state: "pending", result: null, error: null },
            parentId: flow.parentId
          })
        }
        log?.push(() => {
          flows.delete(key(queue, flow.parentId))
          for (const child of flow.children) children.delete(key(queue, child.childId))
        })
        return "created" as const
      }),
    settle: (queue, childId, settlement, now) =>
      Effect.map(Effect.service(UndoLog), (log): Transition => {
        const child = children.get(key(queue, childId))
        if (child === undefined) return { _tag: "None" }
        const from = child.row.state
        if (from === "succeeded" || (from === "dead" && settlement.status === "dead")) return { _tag: "None" }
        const flow = flows.get(key(queue, child.parentId))
        if (flow === undefined) return { _tag: "None" }
        const was = { child: child.row, flow: flow.row, updatedAt: flow.updatedAt }
        log?.push(() => {
          child.row = was.child
          flow.row = was.flow
          flow.updatedAt = was.updatedAt
        })
        child.row = settlement.status === "succeeded"
          ? { ...child.row, state: "succeeded", result: settlement.result, error: null }
          : { ...child.row, state: "dead", error: settlement.error }
        const counted = {
          ...flow.row,
          pending: flow.row.pending - (from === "pending" ? 1 : 0),
          dead: flow.row.dead - (from === "dead" ? 1 : 0) + (settlement.status === "dead" ? 1 : 0)
        }
        const { next, transition } = decide(counted, settlement.status)
        const before = flow.row.state
        flow.row = { ...counted, state: next }
        flow.updatedAt = now
        if (transition === "Runnable") return { _tag: "Runnable", flow: flow.row, revived: before === "failed" }
        if (transition === "Failed") return { _tag: "Failed", flow: flow.row, child: child.row }
        return { _tag: "None" }
      }),
    get: (queue, parentId) => Effect.sync(() => flows.get(key(queue, parentId))?.row),
    children: (queue, parentId) =>
      Effect.sync(() =>
        (flows.get(key(queue, parentId))?.children ?? []).flatMap((id) => {
          const child = children.get(key(queue, id))
          return child === undefined ? [] : [child.row]
        })
      ),
    move: (queue, parentId, from, to, now) =>
      Effect.map(Effect.service(UndoLog), (log) => {
        const flow = flows.get(key(queue, parentId))
        if (flow === undefined || flow.row.state !== from) return undefined
        const before = flow.row
        const updatedAt = flow.updatedAt
        log?.push(() => {
          flow.row = before
          flow.updatedAt = updatedAt
        })
        flow.row = { ...flow.row, state: to }
        flow.updatedAt = now
        return before
      }),
    deleteFinished: (queue, beforeMillis, limit) =>
      Effect.sync(() => {
        const deleted: Array<string> = []
        for (const [k, flow] of flows) {
          if (deleted.length >= limit) break
          if (!k.startsWith(`${queue}\u0000`) || !isFinished(flow.row.state) || flow.updatedAt >= beforeMillis) {
            continue
          }
          for (const id of flow.children) children.delete(key(queue, id))
          flows.delete(k)
          deleted.push(flow.row.parentId)
        }
        return deleted
      }),
    transaction: (effect) =>
      Effect.flatMap(Effect.service(UndoLog), (outer) => {
        if (outer !== undefined) return effect
        const log: Array<() => void> = []
        return effect.pipe(
          Effect.provideService(UndoLog, log),
          Effect.onExit((exit) =>
            exit._tag === "Success" ? Effect.void : Effect.sync(() => {
              for (let i = log.length - 1; i >= 0; i--) log[i]()
            })
          )
        )
      })
  }
}

const isFinished = (state: FlowRow["state"]): boolean => state === "done" || state === "failed" || state === "cancelled"

export const makeSql = (
  client: SqlClient.SqlClient,
  tablePrefix: string
): Effect.Effect<FlowStore, StoreError> =>
  Effect.gen(function*() {
    const sql = client.withoutTransforms()
    const flowTable = sql(`${tablePrefix}_flows`)
    const childTable = sql(`${tablePrefix}_flow_children`)
    const wrap = (operation: string) => <A, R>(effect: Effect.Effect<A, SqlError, R>) =>
      Effect.mapError(effect, (cause) => new StoreError({ operation, cause }))

    // concurrent CREATEs on PostgreSQL can fail on the catalog's unique index even with IF NOT EXISTS: retried
    yield* Effect.gen(function*() {
      yield* sql`CREATE TABLE IF NOT EXISTS ${flowTable} (
        queue_name VARCHAR(255) NOT NULL,
        parent_id VARCHAR(255) NOT NULL,
        parent_type VARCHAR(100) NOT NULL,
        envelope TEXT NOT NULL,
        on_child_failure VARCHAR(16) NOT NULL,
        state VARCHAR(10) NOT NULL,
        pending INTEGER NOT NULL,
        dead INTEGER NOT NULL,
        updated_at BIGINT NOT NULL,
        PRIMARY KEY (queue_name, parent_id)
      )`
      yield* sql`CREATE TABLE IF NOT EXISTS ${childTable} (
        queue_name VARCHAR(255) NOT NULL,
        child_id VARCHAR(255) NOT NULL,
        parent_id VARCHAR(255) NOT NULL,
        child_type VARCHAR(100) NOT NULL,
        position INTEGER NOT NULL,
        state VARCHAR(10) NOT NULL,
        result TEXT NULL,
        error TEXT NULL,
        PRIMARY KEY (queue_name, child_id)
      )`
      yield* sql`CREATE INDEX IF NOT EXISTS ${
        sql(`idx_${tablePrefix}_flow_children_parent`)
      } ON ${childTable} (queue_name, parent_id, position)`
      yield* sql`CREATE INDEX IF NOT EXISTS ${
        sql(`idx_${tablePrefix}_flows_state`)
      } ON ${flowTable} (queue_name, state, updated_at)`
    }).pipe(
      Effect.retry({ times: 20, schedule: Schedule.spaced("100 millis") }),
      wrap("migrate")
    )

    type RawFlow = {
      readonly parent_id: string
      readonly parent_type: string
      readonly envelope: string
      readonly on_child_failure: OnChildFailure
      readonly state: FlowRow["state"]
      readonly pending: number | string
      readonly dead: number | string
    }
    const fromRawFlow = (raw: RawFlow): FlowRow => ({
      parentId: raw.parent_id,
      parentType: raw.parent_type,
      envelope: raw.envelope,
      onChildFailure: raw.on_child_failure,
      state: raw.state,
      pending: Number(raw.pending),
      dead: Number(raw.dead)
    })
    type RawChild = {
      readonly child_id: string
      readonly child_type: string
      readonly state: ChildRow["state"]
      readonly result: string | null
      readonly error: string | null
    }
    const fromRawChild = (raw: RawChild): ChildRow => ({
      childId: raw.child_id,
      childType: raw.child_type,
      state: raw.state,
      result: raw.result,
      error: raw.error
    })
    // rows per INSERT: 6 parameters each, well under SQLite's and PostgreSQL's parameter limits
    const chunk = 500

    const transaction: FlowStore["transaction"] = (effect) =>
      client.withTransaction(effect).pipe(
        Effect.catchTag("SqlError", (cause) => Effect.fail(new StoreError({ operation: "transaction", cause })))
      ) as any

    return {
      create: (queue, flow, now) =>
        transaction(Effect.gen(function*() {
          const inserted = yield* sql<{ readonly parent_id: string }>`
            INSERT INTO ${flowTable}
              (queue_name, parent_id, parent_type, envelope, on_child_failure, state, pending, dead, updated_at)
            VALUES (${queue}, ${flow.parentId}, ${flow.parentType}, ${flow.envelope}, ${flow.onChildFailure},
              'waiting', ${flow.children.length}, 0, ${now})
            ON CONFLICT (queue_name, parent_id) DO NOTHING
            RETURNING parent_id
          `
          if (inserted.length === 0) return "exists" as const
          const asChild = yield* sql<{ readonly parent_id: string }>`
            SELECT parent_id FROM ${childTable} WHERE queue_name = ${queue} AND child_id = ${flow.parentId}`
          if (asChild.length > 0 && asChild[0].parent_id !== flow.parentOf) {
            return yield* Effect.fail({ taken: flow.parentId })
          }
          for (let i = 0; i < flow.children.length; i += chunk) {
            const ids = flow.children.slice(i, i + chunk).map((child) => child.childId)
            const taken = yield* sql<{ readonly child_id: string }>`
              SELECT child_id FROM ${childTable} WHERE queue_name = ${queue} AND ${sql.in("child_id", ids)}
              UNION ALL
              SELECT parent_id FROM ${flowTable} WHERE queue_name = ${queue} AND ${sql.in("parent_id", ids)}
            `
            // undo the flow's row: the caller reports the taken id
            if (taken.length > 0) return yield* Effect.fail({ taken: taken[0].child_id })
          }
          for (let i = 0; i < flow.children.length; i += chunk) {
            const rows = flow.children.slice(i, i + chunk).map((child, j) => ({
              queue_name: queue,
              child_id: child.childId,
              parent_id: flow.parentId,
              child_type: child.childType,
              position: i + j,
              state: "pending"
            }))
            yield* sql`INSERT INTO ${childTable} ${sql.insert(rows as [typeof rows[0], ...typeof rows])}`
          }
          return "created" as const
        })).pipe(
          Effect.catch((error) =>
            "taken" in error ? Effect.succeed(error) : Effect.fail(error as StoreError | SqlError)
          ),
          Effect.mapError((error) =>
            error._tag === "StoreError" ? error : new StoreError({ operation: "enqueue flow", cause: error })
          )
        ),
      // no transaction of its own: `settleChild` runs it in one with what the transition does (a savepoint here
      // would add a round trip while the flow's row is locked)
      settle: (queue, childId, settlement, now) =>
        Effect.gen(function*() {
          const moved = settlement.status === "succeeded"
            ? sql<{ readonly parent_id: string }>`
              UPDATE ${childTable} SET state = 'succeeded', result = ${settlement.result}, error = NULL
              WHERE queue_name = ${queue} AND child_id = ${childId} AND state = 'pending'
              RETURNING parent_id`
            : sql<{ readonly parent_id: string }>`
              UPDATE ${childTable} SET state = 'dead', error = ${settlement.error}
              WHERE queue_name = ${queue} AND child_id = ${childId} AND state = 'pending'
              RETURNING parent_id`
          let from: "pending" | "dead" = "pending"
          let rows = yield* moved
          if (rows.length === 0 && settlement.status === "succeeded") {
            // a dead child, re-queued, that succeeded
            from = "dead"
            rows = yield* sql<{ readonly parent_id: string }>`
              UPDATE ${childTable} SET state = 'succeeded', result = ${settlement.result}, error = NULL
              WHERE queue_name = ${queue} AND child_id = ${childId} AND state = 'dead'
              RETURNING parent_id`
          }
          if (rows.length === 0) return { _tag: "None" } as const
          const parentId = rows[0].parent_id
          // the counter update locks the flow's row until commit: the settlements of one flow are serialized
          const pendingDelta = from === "pending" ? 1 : 0
          const deadDelta = (settlement.status === "dead" ? 1 : 0) - (from === "dead" ? 1 : 0)
          const counted = yield* sql<RawFlow>`
            UPDATE ${flowTable} SET pending = pending - ${pendingDelta}, dead = dead + ${deadDelta},
              updated_at = ${now}
            WHERE queue_name = ${queue} AND parent_id = ${parentId}
            RETURNING parent_id, parent_type, envelope, on_child_failure, state, pending, dead`
          if (counted.length === 0) return { _tag: "None" } as const
          const flow = fromRawFlow(counted[0])
          const { next, transition } = decide(flow, settlement.status)
          if (transition === "None") return { _tag: "None" } as const
          yield* sql`UPDATE ${flowTable} SET state = ${next}
            WHERE queue_name = ${queue} AND parent_id = ${parentId}`
          const after: FlowRow = { ...flow, state: next }
          if (transition === "Runnable") {
            return { _tag: "Runnable", flow: after, revived: flow.state === "failed" } as const
          }
          const child = yield* sql<RawChild>`
            SELECT child_id, child_type, state, result, error FROM ${childTable}
            WHERE queue_name = ${queue} AND child_id = ${childId}`
          return { _tag: "Failed", flow: after, child: fromRawChild(child[0]) } as const
        }).pipe(wrap("settle flow child")),
      get: (queue, parentId) =>
        sql<RawFlow>`
          SELECT parent_id, parent_type, envelope, on_child_failure, state, pending, dead FROM ${flowTable}
          WHERE queue_name = ${queue} AND parent_id = ${parentId}
        `.pipe(Effect.map((rows) => rows.length === 0 ? undefined : fromRawFlow(rows[0])), wrap("read flow")),
      children: (queue, parentId) =>
        sql<RawChild>`
          SELECT child_id, child_type, state, result, error FROM ${childTable}
          WHERE queue_name = ${queue} AND parent_id = ${parentId} ORDER BY position
        `.pipe(Effect.map((rows) => rows.map(fromRawChild)), wrap("read flow children")),
      move: (queue, parentId, from, to, now) =>
        sql<RawFlow>`
          UPDATE ${flowTable} SET state = ${to}, updated_at = ${now}
          WHERE queue_name = ${queue} AND parent_id = ${parentId} AND state = ${from}
          RETURNING parent_id, parent_type, envelope, on_child_failure, state, pending, dead
        `.pipe(
          Effect.map((rows) => rows.length === 0 ? undefined : { ...fromRawFlow(rows[0]), state: from }),
          wrap("update flow")
        ),
      deleteFinished: (queue, beforeMillis, limit) =>
        transaction(Effect.gen(function*() {
          const ids = (yield* sql<{ readonly parent_id: string }>`
            SELECT parent_id FROM ${flowTable} WHERE queue_name = ${queue}
            AND state IN ('done', 'failed', 'cancelled') AND updated_at < ${beforeMillis}
            LIMIT ${sql.literal(String(limit))}
          `).map((row) => row.parent_id)
          if (ids.length === 0) return ids
          yield* sql`DELETE FROM ${childTable} WHERE queue_name = ${queue} AND ${sql.in("parent_id", ids)}`
          yield* sql`DELETE FROM ${flowTable} WHERE queue_name = ${queue} AND ${sql.in("parent_id", ids)}`
          return ids
        })).pipe(
          Effect.mapError((error) =>
            error._tag === "StoreError" ? error : new StoreError({ operation: "retention", cause: error })
          )
        ),
      transaction
    }
  })

/** The parts of a queue the settlement of a child needs. */
export interface FlowQueue {
  readonly name: string
  readonly flows: FlowStore | undefined
  readonly outcomes: OutcomeStore
}

/**
 * Records a child's outcome in its flow (a no-op for a job that is no flow's child, or whose outcome was
 * recorded before), and acts on the flow's transition, in one transaction where the store has them: offers the
 * parent once its children allow it (`offerParent`, idempotent by the parent's id), or dead-letters the parent
 * with `ChildFailed` naming the child. `before` (the child's own outcome) is written in the same transaction, so
 * a crash leaves both or neither.
 */
export const settleChild = (
  queue: FlowQueue,
  childId: string,
  settlement: Settlement,
  offerParent: (parentId: string, stored: string) => Effect.Effect<unknown, StoreError>,
  before: Effect.Effect<void, StoreError> = Effect.void
): Effect.Effect<void, StoreError> => {
  const flows = queue.flows
  if (flows === undefined) return before
  return flows.transaction(Effect.gen(function*() {
    yield* before
    const now = yield* Clock.currentTimeMillis
    const transition = yield* flows.settle(queue.name, childId, settlement, now)
    if (transition._tag === "None") return
    const flow = transition.flow
    if (transition._tag === "Runnable") {
      // its dead children were re-queued and succeeded: the parent is no longer a dead letter
      if (transition.revived) yield* queue.outcomes.remove(queue.name, flow.parentId)
      yield* offerParent(flow.parentId, flow.envelope)
    } else {
      yield* failParent(queue, flow, transition.child, now, offerParent)
    }
    if (flows.marks !== undefined) yield* flows.marks.clear(queue.name, flow.parentId, markOf(transition))
  }))
}

/**
 * Acts again on the transitions whose process died before it acted (stores with `marks`): offers the parents
 * marked `offer` (the offer is de-duplicated by the parent's id), writes the dead letters of those marked `fail`
 * (the same row again), then clears the marks. Run by every worker's maintenance; returns how many it took over.
 */
export const recover = (
  queue: FlowQueue,
  offerParent: (parentId: string, stored: string) => Effect.Effect<unknown, StoreError>
): Effect.Effect<number, StoreError> => {
  const flows = queue.flows
  const marks = flows?.marks
  if (marks === undefined) return Effect.succeed(0)
  return Effect.gen(function*() {
    const taken = yield* marks.takeOver(queue.name, 100)
    for (const { child, flow, mark } of taken) {
      // the flow moved on since (a failed flow revived): only what its state still calls for
      if (mark === "offer" && flow.state === "offered") {
        yield* offerParent(flow.parentId, flow.envelope)
      } else if (mark.startsWith("fail:") && flow.state === "failed" && child !== undefined) {
        yield* failParent(queue, flow, child, yield* Clock.currentTimeMillis, offerParent)
      }
      yield* marks.clear(queue.name, flow.parentId, mark)
    }
    return taken.length
  })
}

/** Dead-letters a flow's parent with `ChildFailed` naming the child, and reports it to its own flow (nesting). */
const failParent = (
  queue: FlowQueue,
  flow: FlowRow,
  child: ChildRow,
  now: number,
  offerParent: (parentId: string, stored: string) => Effect.Effect<unknown, StoreError>
): Effect.Effect<void, StoreError> =>
  Effect.gen(function*() {
    const envelope = parseEnvelope(flow.envelope).envelope
    const error = new ChildFailed({
      jobId: flow.parentId,
      jobType: flow.parentType,
      childId: child.childId,
      childType: child.childType,
      error: child.error ?? ""
    }).message
    yield* queue.outcomes.put(queue.name, {
      jobId: flow.parentId,
      jobType: flow.parentType,
      status: "dead",
      // the parent has no row in the queue table: its dead letter keeps the payload
      payload: JSON.stringify(envelopePayload(envelope) ?? null),
      result: null,
      error,
      attempts: 0,
      finishedAt: now
    })
    yield* Effect.logWarning(`job ${flow.parentId} (${flow.parentType}) dead-lettered: ${error}`)
    // a parent that is a child itself (a nested flow) is a dead child of its own parent
    yield* settleChild(queue, flow.parentId, { status: "dead", error }, offerParent)
  })

/**
 * A flow's stored envelope, written by `DurableFlow.enqueue` as JSON (a defect if it does not parse): the parent's
 * envelope, and the priority it is offered with (its type's, kept with the flow), under the key `priority`.
 */
export const parseEnvelope = (text: string): { readonly envelope: unknown; readonly priority: number } => {
  const { priority, ...envelope } = JSON.parse(text) as { readonly priority?: unknown }
  return { envelope, priority: typeof priority === "number" ? priority : 0 }
}

const envelopePayload = (envelope: unknown): unknown =>
  typeof envelope === "object" && envelope !== null && "payload" in envelope ? envelope.payload : undefined
