/**
 * Flows: a parent job that waits for its children and reads their results. `enqueue` stores the parent and its
 * children in one transaction; the children run as ordinary jobs, on any worker of the queue, each with its
 * type's priority; the parent is offered once, when its last child has succeeded (with its type's priority), and
 * its handler reads the children's results with {@link results}.
 *
 * @since 0.1.0
 */
import { PoolError } from "@fiberpool/core"
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Schema from "effect/Schema"
import {
  EncodeFailed,
  FlowNotFound,
  FlowsUnsupported,
  InvalidJobId,
  MalformedResult,
  maxJobIdLength,
  PayloadTooLarge,
  type StoreError
} from "./DurableError.ts"
import type { DurableQueue, EnqueueError, Envelope, TraceContext } from "./DurableQueue.ts"
import { envelopeJson, isTraced, offerReporting, parseJson, Service } from "./DurableQueue.ts"
import type { OnChildFailure as FlowPolicy } from "./internal/flows.ts"
import type * as JobType from "./JobType.ts"
import { validate } from "./JobType.ts"

/**
 * @category type ids
 * @since 0.1.0
 */
export const TypeId: TypeId = "~@fiberpool/durable/DurableFlow/Child"

/**
 * @category type ids
 * @since 0.1.0
 */
export type TypeId = "~@fiberpool/durable/DurableFlow/Child"

/**
 * One child of a flow: a job type (with a `result` schema), its payload, and optionally its id. Build one with
 * {@link child}.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { DurableFlow, JobType } from "@fiberpool/durable"
 *
 * const Fetch = JobType.define({ name: "fetch", payload: Schema.String, result: Schema.Int })
 * const one: DurableFlow.Child<typeof Fetch> = DurableFlow.child(Fetch, "sales", { id: "fetch-sales" })
 * console.log(one.type.name, one.id) // => fetch fetch-sales
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Child<T extends JobType.AnyContract> {
  readonly [TypeId]: TypeId
  readonly type: T
  readonly payload: JobType.Payload<T>
  readonly id: string | undefined
  /** a child that is a flow itself: its own children, which it waits for */
  readonly children: ReadonlyArray<Child<any>> | undefined
  readonly onChildFailure: OnChildFailure | undefined
}

/**
 * What happens to the parent when a child is dead-lettered (it used all its attempts, its payload did not decode,
 * it was cancelled...).
 *
 * - `"fail-parent"` (default): the parent is dead-lettered at once, its error a `ChildFailed` naming the child;
 *   its handler never runs (unless the parent is re-queued, see the README). Its other children run on.
 * - `"run-parent"`: the parent runs once every child has succeeded or been dead-lettered; {@link children} shows
 *   which failed and why, {@link results} returns the successes.
 *
 * @example
 * ```ts
 * import type { DurableFlow } from "@fiberpool/durable"
 *
 * const policy: DurableFlow.OnChildFailure = "run-parent"
 * console.log(policy) // => run-parent
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type OnChildFailure = FlowPolicy

/**
 * Options of {@link enqueue}.
 *
 * - `id`: the parent's id, also the flow's idempotency key: while the flow is stored, enqueuing it again does
 *   nothing (its children are not enqueued again) and returns the id. Default: a random UUID.
 * - `children`: at least one, each with a distinct id (default: a random UUID each). A child id must not be the
 *   id of a job already stored (the queue would de-duplicate the child, which would never report to the flow):
 *   `enqueue` fails with `InvalidOptions`. A child may be a flow itself (see {@link child}).
 * - `onChildFailure`: see {@link OnChildFailure}. Default `"fail-parent"`.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { DurableFlow, JobType } from "@fiberpool/durable"
 *
 * const Fetch = JobType.define({ name: "fetch", payload: Schema.String, result: Schema.Int })
 * const options: DurableFlow.EnqueueOptions = {
 *   id: "report-2026-10",
 *   children: [DurableFlow.child(Fetch, "sales"), DurableFlow.child(Fetch, "costs")],
 *   onChildFailure: "run-parent"
 * }
 * console.log(options.children.length) // => 2
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface EnqueueOptions {
  readonly id?: string | undefined
  readonly children: ReadonlyArray<Child<any>>
  readonly onChildFailure?: OnChildFailure | undefined
}

/**
 * What a parent's handler (or anyone) learns about one child with {@link children}: its id, type, state, and the
 * error it was dead-lettered with.
 *
 * @example
 * ```ts
 * import type { DurableFlow } from "@fiberpool/durable"
 *
 * const info: DurableFlow.ChildInfo = { id: "fetch-2", type: "fetch", status: "dead", error: "timeout" }
 * console.log(info.status) // => dead
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface ChildInfo {
  readonly id: string
  readonly type: string
  readonly status: "pending" | "succeeded" | "dead"
  readonly error: string | undefined
}

/**
 * One child's result, decoded with its type's `result` schema (see {@link results}).
 *
 * @example
 * ```ts
 * import type { DurableFlow } from "@fiberpool/durable"
 *
 * const one: DurableFlow.ChildResult<number> = { id: "fetch-sales", result: 1200 }
 * console.log(one.result) // => 1200
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface ChildResult<A> {
  readonly id: string
  readonly result: A
}

/**
 * What {@link enqueue} can fail with: a bad type, id, payload or option (nothing is stored), a store without
 * flows, or the store.
 *
 * @example
 * ```ts
 * import type { DurableFlow } from "@fiberpool/durable"
 *
 * const describe = (error: DurableFlow.EnqueueFlowError): string => error._tag
 * console.log(typeof describe) // => function
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export type EnqueueFlowError = EnqueueError | FlowsUnsupported

/**
 * Declares one child of a flow. Its type must keep results (have a `result` schema): the parent reads them.
 *
 * **Details**
 *
 * A type without a `result` schema is rejected by the compiler here (its result type is `void`), and by
 * {@link enqueue} with `InvalidOptions` (option `children[i].type`) when the check is bypassed.
 *
 * With `children` (and optionally `onChildFailure`), the child is a flow itself: it waits for its own children
 * as the top parent waits for it, reads their results with {@link results}, and its parent sees its result once it
 * has run. A nested parent dead-lettered by one of its children is a dead child of its own parent. The whole
 * tree is stored in one transaction, and every id in it must be distinct.
 *
 * @example
 * ```ts
 * import { Schema } from "effect"
 * import { DurableFlow, JobType } from "@fiberpool/durable"
 *
 * const Resize = JobType.define({
 *   name: "resize",
 *   payload: Schema.Struct({ url: Schema.String, width: Schema.Int }),
 *   result: Schema.Struct({ url: Schema.String })
 * })
 * const small = DurableFlow.child(Resize, { url: "s3://a.png", width: 320 }, { id: "a-320" })
 * console.log(small.payload.width) // => 320
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const child = <T extends JobType.AnyContract>(
  type: T & KeepsResults<T>,
  payload: JobType.Payload<T>,
  options?: {
    readonly id?: string | undefined
    readonly children?: ReadonlyArray<Child<any>> | undefined
    readonly onChildFailure?: OnChildFailure | undefined
  }
): Child<T> => ({
  [TypeId]: TypeId,
  type,
  payload,
  id: options?.id,
  children: options?.children,
  onChildFailure: options?.onChildFailure
})

/**
 * Enqueues a flow: a parent job and its children, in one transaction; returns the parent's id.
 *
 * **Details**
 *
 * The children are ordinary jobs of the queue, run by any worker that knows their types. The parent is kept
 * aside (not in the queue) until every child has succeeded, then offered once, whatever happens to the
 * children: a child that completes twice (redelivered after a crash, run by two processes) counts once, and two
 * children that complete at once in two processes offer the parent once. Its handler reads the children's
 * results with {@link results}. A dead-lettered child fails the parent, or lets it run, per `onChildFailure`.
 *
 * Each child is offered with its type's `priority`, and the parent, when its children allow, with its own
 * type's.
 *
 * Bad input fails and stores nothing: `InvalidOptions` naming the option (`children` empty, `children[i].id`
 * repeated, equal to the parent's id, another flow's, or a job already stored, `children[i].type` without a
 * `result` schema), `InvalidJobId`, `EncodeFailed`, `PayloadTooLarge`. On the memory store, a child id that is
 * a job already stored leaves the leaf children offered before it queued (they run as plain jobs); the flows are
 * undone. A queue whose store keeps no flows fails with `FlowsUnsupported`. The memory, SQLite, PostgreSQL and
 * Redis stores keep flows (`layerSql` on another database does not; on Redis the flow is written first, then its
 * children offered: see the README's Redis section).
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect, Schema } from "effect"
 * import { DurableFlow, DurableQueue, DurableWorker, JobType } from "@fiberpool/durable"
 *
 * const Fetch = JobType.make({
 *   name: "fetch",
 *   payload: Schema.String,
 *   result: Schema.Int,
 *   handler: (source) => Effect.succeed(source.length)
 * })
 * const Report = JobType.make({
 *   name: "report",
 *   payload: Schema.Struct({ month: Schema.String }),
 *   result: Schema.Int,
 *   handler: (_, context) =>
 *     Effect.map(DurableFlow.results(context, Fetch), (fetched) => fetched.reduce((sum, one) => sum + one.result, 0))
 * })
 * const program = Effect.gen(function*() {
 *   yield* DurableWorker.make({ types: [Fetch, Report], concurrency: 2 })
 *   const id = yield* DurableFlow.enqueue(Report, { month: "2026-10" }, {
 *     children: [DurableFlow.child(Fetch, "sales"), DurableFlow.child(Fetch, "costs!")]
 *   })
 *   assert.strictEqual(yield* DurableQueue.result(Report, id, { pollInterval: "10 millis" }), 11)
 * })
 * await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(DurableQueue.layerMemory())))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const enqueue = <T extends JobType.AnyContract>(
  type: T,
  payload: JobType.Payload<T>,
  options: EnqueueOptions
): Effect.Effect<string, EnqueueFlowError, Service> =>
  Service.use(Effect.fnUntraced(function*(queue) {
    const flows = queue.flows
    if (flows === undefined) return yield* new FlowsUnsupported({ queue: queue.name })
    const parentId = yield* checkId(options.id ?? crypto.randomUUID())
    const trace = yield* currentTrace
    const parent = yield* encodeEnvelope(queue, type, parentId, payload, trace, undefined)
    // every id of the tree, with the option that gave it (for errors)
    const paths = new Map<string, string>([[parentId, "id"]])
    const root = yield* flowNode(
      queue,
      parent,
      priorityOf(type),
      options.children,
      options.onChildFailure,
      "",
      trace,
      paths
    )
    const now = yield* Clock.currentTimeMillis
    const taken = (id: string, expected: string) =>
      new PoolError.InvalidOptions({ option: paths.get(id) ?? "id", value: JSON.stringify(id), expected })

    // Stores a flow: the parent's row and its children's rows, then those of each child that is a flow itself;
    // returns the leaves, to offer once every flow is stored.
    const store = (node: FlowNode, leaves: Array<FlowNode>): Effect.Effect<"created" | "exists", EnqueueFlowError> =>
      Effect.gen(function*() {
        const created = yield* flows.create(queue.name, {
          parentId: node.envelope.id,
          parentOf: node.envelope.parent,
          parentType: node.envelope.type,
          // the parent is offered with its type's priority, kept with the flow
          envelope: JSON.stringify({ ...node.envelope, flow: true, priority: node.priority }),
          onChildFailure: node.onChildFailure,
          children: node.children.map((child) => ({ childId: child.envelope.id, childType: child.envelope.type }))
        }, now)
        if (created !== "created") {
          if (created === "exists" && node === root) return created
          return yield* taken(
            created === "exists" ? node.envelope.id : created.taken,
            "an id that is not a job of another flow"
          )
        }
        for (const child of node.children) {
          if (child.children.length > 0) yield* store(child, leaves)
          else leaves.push(child)
        }
        return created
      })
    // Nothing is stored when any of it fails: one transaction (the memory store undoes its flows). The children
    // are offered last, each with its type's priority: a child id that is a job already stored (the queue would
    // de-duplicate the child, which would never report to its flow) fails the whole enqueue.
    yield* flows.transaction(Effect.gen(function*() {
      const leaves: Array<FlowNode> = []
      if ((yield* store(root, leaves)) === "exists") return
      for (const leaf of leaves) {
        const offered = yield* offerReporting(queue, leaf.envelope.id, leaf.envelope, undefined, {
          priority: leaf.priority,
          dedupe: undefined
        })
        if (!offered.inserted) {
          return yield* taken(leaf.envelope.id, "an id not already stored (a job of the queue has it)")
        }
      }
    }))
    return parentId
  }))

/**
 * Lists a flow's children, in the order they were given to {@link enqueue}, with their states: what a parent
 * that runs with `onChildFailure: "run-parent"` reads to see which children failed.
 *
 * **Details**
 *
 * Takes the parent's job context (in its handler) or anything with the parent's `id`, from any process. Fails
 * with `FlowNotFound` for a job that is no flow's parent (or whose flow retention removed).
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect, Schema } from "effect"
 * import { DurableFlow, DurableQueue, JobType } from "@fiberpool/durable"
 *
 * const Fetch = JobType.define({ name: "fetch", payload: Schema.String, result: Schema.Int })
 * const Report = JobType.define({ name: "report", payload: Schema.Null })
 * const program = Effect.gen(function*() {
 *   yield* DurableFlow.enqueue(Report, null, { id: "r1", children: [DurableFlow.child(Fetch, "sales", { id: "f1" })] })
 *   const children = yield* DurableFlow.children({ id: "r1" })
 *   assert.deepStrictEqual(children, [{ id: "f1", type: "fetch", status: "pending", error: undefined }])
 * })
 * await Effect.runPromise(program.pipe(Effect.provide(DurableQueue.layerMemory())))
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const children = (
  parent: { readonly id: string }
): Effect.Effect<ReadonlyArray<ChildInfo>, FlowNotFound | FlowsUnsupported | StoreError, Service> =>
  Service.use((queue) =>
    Effect.map(
      rows(queue, parent.id),
      (children) =>
        children.map((row) => ({
          id: row.childId,
          type: row.childType,
          status: row.state,
          error: row.error ?? undefined
        }))
    )
  )

/**
 * Reads the results of a flow's succeeded children of one type, decoded with that type's `result` schema, in the
 * order they were given to {@link enqueue}.
 *
 * **Details**
 *
 * In the parent's handler (pass its job context) every child has succeeded, unless the flow runs its parent
 * despite failures (`onChildFailure: "run-parent"`): then the dead children are missing here and listed by
 * {@link children}. Each child's result is the one its first successful run recorded. Fails with `FlowNotFound`
 * for a job that is no flow's parent, `MalformedResult` for a result that no longer decodes, and
 * `InvalidOptions` for a type without a `result` schema.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect, Schema } from "effect"
 * import { DurableFlow, DurableQueue, DurableWorker, JobType } from "@fiberpool/durable"
 *
 * const Square = JobType.make({
 *   name: "square",
 *   payload: Schema.Int,
 *   result: Schema.Int,
 *   handler: (n) => Effect.succeed(n * n)
 * })
 * const Sum = JobType.make({
 *   name: "sum",
 *   payload: Schema.Null,
 *   result: Schema.Array(Schema.Int),
 *   handler: (_, context) =>
 *     Effect.map(DurableFlow.results(context, Square), (squares) => squares.map((square) => square.result))
 * })
 * const program = Effect.gen(function*() {
 *   yield* DurableWorker.make({ types: [Square, Sum], concurrency: 4 })
 *   const id = yield* DurableFlow.enqueue(Sum, null, { children: [1, 2, 3].map((n) => DurableFlow.child(Square, n)) })
 *   assert.deepStrictEqual(yield* DurableQueue.result(Sum, id, { pollInterval: "10 millis" }), [1, 4, 9])
 * })
 * await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(DurableQueue.layerMemory())))
 * ```
 *
 * @category getters
 * @since 0.1.0
 */
export const results = <T extends JobType.AnyContract>(
  parent: { readonly id: string },
  type: T
): Effect.Effect<
  ReadonlyArray<ChildResult<JobType.Result<T>>>,
  FlowNotFound | FlowsUnsupported | MalformedResult | PoolError.InvalidOptions | StoreError,
  Service
> =>
  Service.use(Effect.fnUntraced(function*(queue) {
    const resultJson = type.resultJson
    if (resultJson === undefined) {
      return yield* new PoolError.InvalidOptions({
        option: "type",
        value: type.name,
        expected: "a job type with a `result` schema (only those keep results)"
      })
    }
    const decode = Schema.decodeUnknownEffect(resultJson)
    const out: Array<ChildResult<JobType.Result<T>>> = []
    for (const row of yield* rows(queue, parent.id)) {
      if (row.childType !== type.name || row.state !== "succeeded") continue
      const malformed = (issue: string) => new MalformedResult({ jobId: row.childId, jobType: row.childType, issue })
      const json = yield* Effect.mapError(parseJson(row.result ?? "null"), malformed)
      const result = yield* Effect.mapError(decode(json), (error) => malformed(error.message))
      out.push({ id: row.childId, result })
    }
    return out
  }))

// ---- Internal ----

/** A flow's parent, or a leaf child (no children), ready to store. */
interface FlowNode {
  readonly envelope: Envelope
  /** its type's priority: a leaf is offered with it, a flow's parent when its children allow */
  readonly priority: number
  readonly onChildFailure: OnChildFailure
  readonly children: ReadonlyArray<FlowNode>
}

/** Checks and encodes a flow's children (and theirs, for a child that is a flow), naming the option at fault. */
const flowNode = (
  queue: DurableQueue,
  parent: Envelope,
  priority: number,
  children: ReadonlyArray<Child<any>> | undefined,
  policy: OnChildFailure | undefined,
  path: string,
  trace: TraceContext | undefined,
  paths: Map<string, string>
): Effect.Effect<FlowNode, EnqueueFlowError> =>
  Effect.gen(function*() {
    if (!Array.isArray(children) || children.length === 0) {
      return yield* new PoolError.InvalidOptions({
        option: `${path}children`,
        value: Array.isArray(children) ? "[]" : String(children),
        expected: "at least one child (DurableFlow.child)"
      })
    }
    const onChildFailure = policy ?? "fail-parent"
    if (onChildFailure !== "fail-parent" && onChildFailure !== "run-parent") {
      return yield* new PoolError.InvalidOptions({
        option: `${path}onChildFailure`,
        value: String(onChildFailure),
        expected: `"fail-parent" or "run-parent"`
      })
    }
    const nodes: Array<FlowNode> = []
    for (let i = 0; i < children.length; i++) {
      const one = children[i]
      const at = `${path}children[${i}]`
      if (one.type.resultJson === undefined) {
        return yield* new PoolError.InvalidOptions({
          option: `${at}.type`,
          value: String(one.type.name),
          expected: "a job type with a `result` schema (the parent reads its children's results)"
        })
      }
      const id = yield* checkId(one.id ?? crypto.randomUUID())
      const taken = paths.get(id)
      if (taken !== undefined) {
        return yield* new PoolError.InvalidOptions({
          option: `${at}.id`,
          value: JSON.stringify(id),
          expected: `an id not given to another job of the flow (${taken} has it)`
        })
      }
      paths.set(id, `${at}.id`)
      const envelope = yield* encodeEnvelope(queue, one.type, id, one.payload, trace, parent.id)
      nodes.push(
        one.children === undefined
          ? { envelope, priority: priorityOf(one.type), onChildFailure: "fail-parent", children: [] }
          : yield* flowNode(
            queue,
            envelope,
            priorityOf(one.type),
            one.children,
            one.onChildFailure,
            `${at}.`,
            trace,
            paths
          )
      )
    }
    return { envelope: parent, priority, onChildFailure, children: nodes }
  })

/** A job of the flow takes its type's priority (`validate` checked it), as `DurableQueue.enqueue` does. */
const priorityOf = (type: JobType.AnyContract): number => type.priority ?? 0

/** A `void` result means the type keeps none: such a type cannot be a flow's child. */
type KeepsResults<T> = [JobType.Result<T>] extends [void]
  ? { readonly "a flow's child needs a job type with a `result` schema": never }
  : unknown

const rows = (queue: DurableQueue, parentId: string) =>
  Effect.gen(function*() {
    const flows = queue.flows
    if (flows === undefined) return yield* new FlowsUnsupported({ queue: queue.name })
    if ((yield* flows.get(queue.name, parentId)) === undefined) return yield* new FlowNotFound({ jobId: parentId })
    return yield* flows.children(queue.name, parentId)
  })

const checkId = (id: string): Effect.Effect<string, InvalidJobId> =>
  typeof id === "string" && id.length > 0 && id.length <= maxJobIdLength
    ? Effect.succeed(id)
    : Effect.fail(new InvalidJobId({ id: String(id), length: typeof id === "string" ? id.length : 0 }))

/** The producer's span, stored with every job of the flow when an exporter listens (as `enqueue` does). */
const currentTrace: Effect.Effect<TraceContext | undefined> = Effect.flatMap(
  isTraced,
  (traced) =>
    traced
      ? Effect.currentSpan.pipe(
        Effect.map((span): TraceContext | undefined => ({
          traceId: span.traceId,
          spanId: span.spanId,
          sampled: span.sampled
        })),
        Effect.catchTag("NoSuchElementError", () => Effect.succeed(undefined))
      )
      : Effect.succeed(undefined)
)

const encodeEnvelope = (
  queue: DurableQueue,
  type: JobType.AnyContract,
  id: string,
  payload: unknown,
  trace: TraceContext | undefined,
  parent: string | undefined
): Effect.Effect<Envelope, EncodeFailed | PayloadTooLarge | PoolError.InvalidOptions> =>
  Effect.gen(function*() {
    yield* validate(type)
    const encoded = yield* Effect.mapError(
      Schema.encodeUnknownEffect(type.payloadJson)(payload),
      (error) => new EncodeFailed({ jobType: type.name, issue: error.message })
    )
    // the order of the keys matters: a stored row's type is read from its head (`typeFromHead`)
    const envelope: Envelope = {
      type: type.name,
      id,
      payload: encoded,
      ...(trace === undefined ? {} : { trace }),
      ...(parent === undefined ? {} : { parent })
    }
    yield* envelopeJson(queue, envelope)
    return envelope
  })
