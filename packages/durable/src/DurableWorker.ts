/**
 * The durable worker: a fiberpool `WorkerPool` (concurrency, deadlines, metrics, events, shutdown report) whose
 * jobs come from a `DurableQueue`. It claims a job only when a slot is free, so it never holds more jobs than it
 * runs.
 *
 * @since 0.1.0
 */
import { Job, PoolError, type Shutdown, WorkerPool } from "@fiberpool/core"
import * as Cause from "effect/Cause"
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Fiber from "effect/Fiber"
import * as FiberSet from "effect/FiberSet"
import * as Latch from "effect/Latch"
import * as Layer from "effect/Layer"
import * as Random from "effect/Random"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import * as Scope from "effect/Scope"
import * as Stream from "effect/Stream"
import * as Tracer from "effect/Tracer"
import { EncodeFailed, MalformedPayload, PayloadTooLarge, StoreError, UnknownJobType } from "./DurableError.ts"
import type { Envelope, TraceContext } from "./DurableQueue.ts"
import {
  applyRetention,
  declareLimits,
  finishFlowParent,
  isTraced,
  maintain,
  messagingSystem,
  Service as QueueService,
  settleFlowChild
} from "./DurableQueue.ts"
import { fire as fireSchedules } from "./DurableSchedule.ts"
import * as QueueMetrics from "./internal/queueMetrics.ts"
import type { Claimed, Claimer } from "./internal/sqlStore.ts"
import * as Wakeups from "./internal/wakeups.ts"
import * as JobType from "./JobType.ts"

/**
 * Options of a worker.
 *
 * - `types`: the job types this worker runs.
 * - `unknownTypes`: what to do with a job of a type this worker does not run, see {@link UnknownTypePolicy}.
 *   Default: leave it for another worker, for up to 10 minutes after it was enqueued.
 * - `concurrency`: how many jobs run at once (and how many are claimed at most).
 * - `name`: the pool's name in logs, metrics and the shutdown report. Default: the queue name.
 * - `shutdown`: the pool's shutdown options. Default: `{ gracePeriod: "30 seconds", interruptTimeout: "5 seconds" }`.
 *   When the grace period ends, what still runs is interrupted and handed back to the store at once, without
 *   using an attempt.
 * - `spans`: a `fiberpool.job` span per delivery, of kind `consumer`, with the OpenTelemetry messaging attributes
 *   (`messaging.system` `"fiberpool"`, `messaging.destination.name` the queue, `messaging.message.id` the job id,
 *   `messaging.operation.type` `"process"`) and `fiberpool.job.type`, `fiberpool.attempt`. It is the child of
 *   the span that enqueued the job (`enqueue` stores that span's context with the job, in any process); a job
 *   enqueued untraced gets a root span. The handler's spans are its children. `"auto"` (default): when a tracer
 *   other than Effect's built-in one is installed; `"always"`, `"never"`.
 * - `metricsInterval`: how often the worker samples the queue's counts into the `DurableMetrics` gauges (SQL
 *   stores). Default 15 seconds, the first sample at a random point of the first interval; `"0 millis"` turns the
 *   sampling off.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { DurableWorker, JobType } from "@fiberpool/durable"
 *
 * const Ping = JobType.make({ name: "ping", payload: Schema.String, handler: () => Effect.void })
 * const options: DurableWorker.Options<typeof Ping> = { types: [Ping], concurrency: 8, shutdown: { gracePeriod: "10 seconds" } }
 * console.log(options.concurrency) // => 8
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Options<T extends JobType.Any> {
  readonly types: ReadonlyArray<T>
  readonly concurrency: number
  readonly unknownTypes?: UnknownTypePolicy | undefined
  readonly name?: string | undefined
  readonly shutdown?: Shutdown.Options | undefined
  readonly spans?: "auto" | "always" | "never" | undefined
  readonly metricsInterval?: Duration.Input | undefined
}

/**
 * What a worker does with a job of a type it does not run (during a rolling deploy, a producer of the new release
 * enqueues a new type before every worker knows it).
 *
 * - `{ retryAfter, deadLetterAfter }` (the default, `5 seconds` and `10 minutes`): the job is released untouched,
 *   its attempt not counted, and offered again after `retryAfter`, so a worker that knows the type takes it;
 *   once the job was enqueued more than `deadLetterAfter` ago, it is dead-lettered with `UnknownJobType` (no
 *   worker knows it: a typo, a removed type). SQL stores only: the memory store dead-letters at once.
 * - `"dead-letter"`: dead-letter it at once (queues whose workers all run the same types).
 *
 * @example
 * ```ts
 * import type { DurableWorker } from "@fiberpool/durable"
 *
 * const patient: DurableWorker.UnknownTypePolicy = { retryAfter: "2 seconds", deadLetterAfter: "1 hour" }
 * const strict: DurableWorker.UnknownTypePolicy = "dead-letter"
 * console.log(typeof patient, strict) // => object dead-letter
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type UnknownTypePolicy = "dead-letter" | {
  readonly retryAfter?: Duration.Input | undefined
  readonly deadLetterAfter?: Duration.Input | undefined
}

/**
 * A running worker.
 *
 * - `pool`: its `WorkerPool` (use `WorkerPool.stats`, `WorkerPool.events`...).
 * - `shutdown`: stops claiming, lets running jobs finish within the grace period, hands the rest back, and
 *   returns the pool's report. Idempotent; closing the worker's scope does the same.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 * import { DurableQueue, DurableWorker, JobType } from "@fiberpool/durable"
 *
 * const Ping = JobType.make({ name: "ping", payload: Schema.String, handler: () => Effect.void })
 * const program = Effect.gen(function*() {
 *   const worker: DurableWorker.DurableWorker = yield* DurableWorker.make({ types: [Ping], concurrency: 2 })
 *   console.log((yield* WorkerPool.stats(worker.pool)).concurrency) // => 2
 *   yield* worker.shutdown
 * })
 * await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(DurableQueue.layerMemory())))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface DurableWorker {
  readonly queue: string
  readonly pool: WorkerPool.WorkerPool
  readonly shutdown: Effect.Effect<Shutdown.Report>
}

/**
 * Starts a worker on the current `DurableQueue`; it runs until its scope closes (or `shutdown`).
 *
 * **Details**
 *
 * Each job runs on the pool with its type's timeout. Its outcome settles the claim in the store:
 *
 * - success: done (and the result is kept, if the type has a `result` schema);
 * - failure, timeout or defect: delivered again after the type's `retry` delay, until `maxAttempts`, then kept as
 *   a dead letter with its last error;
 * - a payload that does not decode, or an unknown type: dead-lettered at once, never retried;
 * - interrupted by the shutdown: handed back at once, the attempt not counted.
 *
 * A process that dies while running jobs does not settle them: they are delivered again once their lease
 * expires (`lockExpiration`), and the lost attempt counts.
 *
 * The worker also fires the queue's due recurring schedules (`DurableSchedule`) on the queue's poll interval,
 * whatever job types it runs.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect, Schema } from "effect"
 * import { DurableQueue, DurableWorker, JobType } from "@fiberpool/durable"
 *
 * const seen: Array<string> = []
 * const Greet = JobType.make({
 *   name: "greet",
 *   payload: Schema.Struct({ name: Schema.String }),
 *   handler: ({ name }) => Effect.sync(() => seen.push(name))
 * })
 * const program = Effect.gen(function*() {
 *   const worker = yield* DurableWorker.make({ types: [Greet], concurrency: 2 })
 *   yield* DurableQueue.enqueue(Greet, { name: "Ada" })
 *   yield* DurableQueue.enqueue(Greet, { name: "Alan" })
 *   while (seen.length < 2) yield* Effect.sleep("10 millis")
 *   const report = yield* worker.shutdown
 *   assert.strictEqual(report.totals.succeeded, 2)
 * })
 * await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(DurableQueue.layerMemory())))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = <T extends JobType.Any>(
  options: Options<T>
): Effect.Effect<DurableWorker, PoolError.InvalidOptions, Scope.Scope | QueueService | JobType.Services<T>> =>
  Effect.gen(function*() {
    const queue = yield* QueueService
    for (const type of options.types) yield* JobType.validate(type)
    yield* declareLimits(queue, options.types)
    const registry = new Map<string, JobType.Any>(options.types.map((type) => [type.name, type]))
    const hasBatchTypes = options.types.some((type) => type.batch !== undefined)
    const unknownPolicy = yield* resolveUnknownPolicy(options.unknownTypes)
    const known = [...registry.keys()]
    const metricsInterval = yield* resolveMetricsInterval(options.metricsInterval)
    // this worker's id among the queue's listeners (see `notifyOthers`)
    const self = crypto.randomUUID()
    const hints = yield* FiberSet.make<void>()
    // the readers of jobs' progress (see ProgressPersister)
    const progressReaders = yield* FiberSet.make<void>()

    // the job spans: decided once, in `make`'s context (the claimers run in it)
    const traced = options.spans === "always" || (options.spans !== "never" && (yield* isTraced))
    // one decoder per type, made once
    const decoders = new Map<JobType.Any, (input: unknown) => Effect.Effect<unknown, Schema.SchemaError>>()
    const decoderOf = (type: JobType.Any) => {
      let decode = decoders.get(type)
      if (decode === undefined) {
        decode = Schema.decodeUnknownEffect(type.payloadJson) as (
          input: unknown
        ) => Effect.Effect<unknown, Schema.SchemaError>
        decoders.set(type, decode)
      }
      return decode
    }

    const pool = yield* WorkerPool.make({
      name: options.name ?? queue.name,
      concurrency: options.concurrency,
      capacity: options.concurrency,
      // the worker makes the job spans itself (kind consumer, parented to the producer's span)
      spans: "never",
      shutdown: { gracePeriod: "30 seconds", interruptTimeout: "5 seconds", ...options.shutdown }
    })

    // Records the dead letter, then ends the claim with the store's dead-letter signal, so that the store marks
    // the row `failed` (not `completed`) and never delivers it again.
    const deadLetter = (envelope: EnvelopeLike, error: string, attempts: number) =>
      Effect.flatMap(Clock.currentTimeMillis, (now) =>
        record(envelope, {
          jobId: envelope.id,
          jobType: envelope.type,
          status: "dead",
          // the SQL stores keep the payload in the job's row; the memory store's rows cannot be read back
          payload: queue.table === undefined ? JSON.stringify(envelope.payload ?? null) : null,
          result: null,
          error,
          attempts,
          finishedAt: now
        }, { status: "dead", error })).pipe(
          Effect.tap(() => Effect.logWarning(`job ${envelope.id} (${envelope.type}) dead-lettered: ${error}`)),
          Effect.andThen(Effect.fail(storeDeadLetter(error)))
        )

    // Records a job's outcome (none for a success without a result schema) before its claim is settled, and, in
    // the same transaction, what it does to a flow: a flow's child reports to its flow (offering or failing the
    // parent), a flow's parent marks its flow done. A crash before the commit redelivers the job, whose second
    // report is a no-op; the outcome never says more than the flow. The memory store re-queues a dead letter
    // without the envelope's marks, and its report is a lookup in a map: it always reports.
    const record = (
      envelope: Envelope,
      outcome: Parameters<typeof queue.outcomes.put>[1] | undefined,
      settlement: Parameters<typeof settleFlowChild>[2]
    ): Effect.Effect<void, StoreError> => {
      const parent = envelope.flow === true || queue.table === undefined
      const put = outcome === undefined ? Effect.void : queue.outcomes.put(queue.name, outcome)
      const before = parent ? Effect.andThen(put, finishFlowParent(queue, envelope.id)) : put
      if (envelope.parent === undefined && queue.table !== undefined) {
        return parent ? queue.outcomes.transaction(before) : put
      }
      return settleFlowChild(queue, envelope.id, settlement, before)
    }

    const reportProgress = (envelope: Envelope, attempt: number) => (value: unknown) =>
      Effect.gen(function*() {
        // JSON.stringify throws on bigints and cycles: the boundary with a value of unknown shape
        const json = yield* Effect.try({
          try: () => JSON.stringify(value) ?? "null",
          catch: (error) => new EncodeFailed({ jobType: envelope.type, issue: `progress: ${String(error)}` })
        })
        if (json.length > maxProgressBytes) {
          return yield* new PayloadTooLarge({ jobType: envelope.type, bytes: json.length, maxBytes: maxProgressBytes })
        }
        const now = yield* Clock.currentTimeMillis
        yield* queue.outcomes.putProgress(queue.name, envelope.id, json, attempt, now)
      })

    type Item = { readonly id: string; readonly attempts: number; readonly element: unknown }

    // Runs one claimed job and decides how the claim settles: success → done; failure → the store retries it
    // (with `current.type`'s delay) or, at its last attempt, marks it failed; interruption → handed back.
    // The common path (a known type, a payload that decodes synchronously) is a chain of steps, no generator: it
    // runs once per job, and a generator's frame and continuations were about a tenth of what a job allocated.
    const process = (item: Item, current: { type: JobType.Any | undefined }): Effect.Effect<void, unknown> =>
      Effect.suspend(() => {
        const envelope = toEnvelope(item)
        // the queue's wake row, inserted as a job after it was deleted: completing it makes it the wake row again
        if (envelope.type === Wakeups.wakeType && envelope.id === Wakeups.wakeId) return Effect.void
        const type = registry.get(envelope.type)
        if (type === undefined) return unknownType(item, envelope)
        current.type = type
        if (item.attempts > type.maxAttempts) {
          // the process that ran the last allowed attempt died before settling it
          return deadLetter(
            envelope,
            `the process running attempt ${type.maxAttempts} of ${type.maxAttempts} stopped before finishing it (lease expired)`,
            type.maxAttempts
          )
        }
        const decoded = decoderOf(type)(envelope.payload)
        // a synchronous Schema decodes to an Exit: no step for it
        return Exit.isExit(decoded)
          ? afterDecode(item, envelope, type, decoded as Exit.Exit<unknown, Schema.SchemaError>)
          : Effect.flatMap(Effect.exit(decoded), (exit) => afterDecode(item, envelope, type, exit))
      })

    // A job whose type this worker does not run: left for another worker (`unknownTypes`), or dead-lettered.
    const unknownType = (item: Item, envelope: Envelope): Effect.Effect<void, unknown> =>
      Effect.gen(function*() {
        if (envelope.type !== "<missing>" && unknownPolicy !== undefined && queue.table) {
          const released = yield* queue.table.release(
            queue.name,
            item.id,
            unknownPolicy.retryAfter,
            unknownPolicy.deadLetterAfter
          )
          if (released !== undefined) {
            // Whoever polls first once the job is visible again claims it, and pollers keep their phase: an old
            // worker can win its own released job back round after round (5 rounds in a row in the tests). So
            // when it is visible, the other workers are woken, this one not: they claim it first.
            const wakeups = queue.wakeups
            if (wakeups !== undefined) {
              yield* FiberSet.run(
                hints,
                Effect.sleep(Duration.millis(Math.ceil(released) + 2)).pipe(
                  Effect.andThen(wakeups.notifyOthers(queue.name, self)),
                  Effect.ignore({ log: "Debug" })
                )
              )
            }
            return yield* Effect.logDebug(`job ${envelope.id} has type "${envelope.type}", left for another worker`)
          }
        }
        return yield* deadLetter(
          envelope,
          new UnknownJobType({ jobId: envelope.id, jobType: envelope.type, known }).message,
          item.attempts
        )
      })

    // The decoded payload: a malformed one is dead-lettered (a defect of the decoder stays a defect)
    const afterDecode = (
      item: Item,
      envelope: Envelope,
      type: JobType.Any,
      decoded: Exit.Exit<unknown, Schema.SchemaError>
    ): Effect.Effect<void, unknown> => {
      if (decoded._tag === "Success") return runJob(item, envelope, type, decoded.value)
      const error = recoverableError(decoded.cause)
      if (Result.isFailure(error)) return decoded
      const malformed = new MalformedPayload({ jobId: envelope.id, jobType: type.name, issue: error.success.message })
      return deadLetter(envelope, malformed.message, item.attempts)
    }

    // Runs the handler as a job of the pool, then records its outcome.
    const runJob = (
      item: Item,
      envelope: Envelope,
      type: JobType.Any,
      payload: unknown
    ): Effect.Effect<void, unknown> => {
      const jobContext: JobType.JobContext = {
        id: envelope.id,
        type: type.name,
        attempt: item.attempts,
        maxAttempts: type.maxAttempts
      }
      // What the handler reports through core's `Job.Current` is stored as well, at the pool's rate (its
      // `progressInterval`), so a handler needs one progress API whether it runs in a pool or a durable queue.
      // The reader of the handle's `progressUpdates` starts at the first report (the stream starts with the last
      // value sent): a job that reports nothing costs no fiber.
      const progress = new ProgressPersister(
        progressReaders,
        (value) => Effect.ignore(reportProgress(envelope, item.attempts)(value), { log: "Warn" })
      )
      // The handler runs in the pool's job fiber, whose context is this worker's (the pool runs a job in its
      // submitter's, and the claimers are `make`'s children, so it holds every service of `make`'s context), with
      // the job's span and log annotations: it only needs the job's progress reporters added (two overlays, no
      // copy of the context per job).
      let job: Effect.Effect<unknown, unknown> = Effect.updateContext(
        type.handler(payload, jobContext) as Effect.Effect<unknown, unknown, JobType.Services<T>>,
        (current: Context.Context<never>) => {
          const withProgress = Context.add(current, JobType.CurrentProgress, reportProgress(envelope, item.attempts))
          const info = Context.getOrUndefined(current, Job.Current)
          return (info === undefined
            ? withProgress
            : Context.add(withProgress, Job.Current, progress.watch(info))) as Context.Context<JobType.Services<T>>
        }
      )
      if (traced) {
        job = Effect.withSpan(job, `process ${queue.name}`, {
          kind: "consumer",
          // a child of the producer's span, in the producer's trace; a job enqueued untraced starts its own
          // trace rather than joining whatever span was open around `make`
          ...(envelope.trace === undefined
            ? { root: true }
            : { parent: Tracer.externalSpan(envelope.trace) }),
          attributes: {
            "messaging.system": messagingSystem,
            "messaging.destination.name": queue.name,
            "messaging.operation.type": "process",
            "messaging.operation.name": "process",
            "messaging.message.id": envelope.id,
            "messaging.message.delivery_count": item.attempts,
            "fiberpool.pool": pool.name,
            "fiberpool.job": envelope.id,
            "fiberpool.job.type": type.name,
            "fiberpool.attempt": item.attempts
          },
          captureStackTrace: false
        })
      }
      const submit = WorkerPool.submit(pool, job, {
        id: envelope.id,
        timeout: type.timeout,
        metadata: { type: type.name, attempt: item.attempts }
      })
      return Effect.flatMap(Effect.exit(submit), (submitted) => {
        if (submitted._tag === "Failure") {
          // the pool is closing (or runs a job with the same id): hand the job back untouched; a defect stays one
          return Result.isSuccess(recoverableError(submitted.cause)) ? Effect.interrupt : submitted
        }
        const handle = submitted.value
        const settled = Effect.flatMap(handle.exit, (exit) => {
          // the last report is stored before the outcome, so a producer that sees the result sees it too
          const stored = progress.await
          return stored === undefined
            ? outcome(item, envelope, type, exit)
            : Effect.andThen(stored, outcome(item, envelope, type, exit))
        })
        // most jobs report nothing: then there is no reader to start or to wait for
        const reader = progress.attach(handle)
        return reader === undefined ? settled : Effect.andThen(reader, settled)
      })
    }

    // What the job's exit records: its result (encoded with the type's result schema), a dead letter at its last
    // attempt, a failure the store retries, or a hand-back when the pool stopped it.
    const outcome = (
      item: Item,
      envelope: Envelope,
      type: JobType.Any,
      exit: Exit.Exit<unknown, unknown>
    ): Effect.Effect<void, unknown> => {
      if (Exit.isSuccess(exit)) {
        if (type.resultJson === undefined) return record(envelope, undefined, { status: "succeeded", result: null })
        return storeResult(item, envelope, type, exit.value)
      }
      if (isHandBack(exit.cause)) return Effect.interrupt
      if (item.attempts >= type.maxAttempts) return deadLetter(envelope, Cause.pretty(exit.cause), item.attempts)
      return Effect.failCause(exit.cause)
    }

    const storeResult = (item: Item, envelope: Envelope, type: JobType.Any, value: unknown) =>
      Effect.gen(function*() {
        const encoded = yield* Effect.result(Schema.encodeUnknownEffect(type.resultJson!)(value))
        if (Result.isFailure(encoded)) {
          return yield* deadLetter(envelope, `the result does not encode: ${encoded.failure.message}`, item.attempts)
        }
        const now = yield* Clock.currentTimeMillis
        const result = JSON.stringify(encoded.success)
        return yield* record(envelope, {
          jobId: envelope.id,
          jobType: type.name,
          status: "succeeded",
          payload: null,
          result,
          error: null,
          attempts: item.attempts,
          finishedAt: now
        }, { status: "succeeded", result })
      })

    // the retry delay of a job whose type `process` found (none yet: at once)
    const retryDelayOf = (current: { type: JobType.Any | undefined }) => (attempts: number) =>
      current.type === undefined ? Effect.succeed(Duration.zero) : JobType.retryDelay(current.type, attempts)

    const settlements = yield* FiberSet.make<void>()
    // Claims and settles one job. Waiting for a job is interruptible (that is how the shutdown stops claiming);
    // once claimed, the job is awaited uninterruptibly: the pool's shutdown decides when it stops. The claim is
    // settled (the store's acknowledgement) in the background, so the next claim does not wait for that round
    // trip; the shutdown waits for every pending settlement.
    const claimOnce = Effect.uninterruptibleMask((restore) =>
      Effect.gen(function*() {
        const scope = yield* Scope.make()
        const current: { type: JobType.Any | undefined } = { type: undefined }
        const exit = yield* Effect.exit(Effect.gen(function*() {
          const item = yield* restore(queue.store.take({
            name: queue.name,
            maxAttempts: storeMaxAttempts,
            retryDelay: retryDelayOf(current)
          })).pipe(
            Scope.provide(scope),
            Effect.mapError((cause) => new StoreError({ operation: "claim", cause }))
          )
          return yield* process(item, current)
        }))
        yield* FiberSet.run(settlements, Scope.close(scope, exit), { startImmediately: true })
        return yield* exit
      })
    )

    // Batched claims (SQL stores): one fiber claims as many jobs as there are free slots in one statement and
    // starts each at once; a job's slot is free again when it has run, and its claim settles in the background
    // (completions group-committed by the store). Claiming and starting a batch is uninterruptible, so no claimed
    // job is left unstarted: the shutdown stops the loop while it waits (for room or for work).
    const batchClaimer = (claims: Claimer): Effect.Effect<void> =>
      Effect.gen(function*() {
        let free = options.concurrency
        const room = Latch.makeUnsafe(true)
        const run = (claimed: Claimed): Effect.Effect<void> =>
          Effect.suspend(() => {
            const current: { type: JobType.Any | undefined } = { type: undefined }
            return Effect.flatMap(Effect.exit(process(claimed, current)), (exit) => {
              free++
              room.openUnsafe()
              return claimed.settle(exit, retryDelayOf(current))
            })
          })
        // A batch (a batch type's claimed jobs, up to its `maxSize`) is one job of the pool; its exit is each of
        // its jobs' outcome. Jobs that all succeed (not in a flow) are completed in one write.
        const runBatch = (type: JobType.Any, batch: PendingBatch): Effect.Effect<void> =>
          Effect.suspend(() => {
            const { jobs, members } = batch
            // a handler that throws is a defect of the pool's job (a failed attempt), never of this fiber
            let job = Effect.suspend(() => type.batch!.handler(jobs)) as Effect.Effect<unknown, unknown>
            if (traced) {
              job = Effect.withSpan(job, `process ${queue.name}`, batchSpan(queue.name, pool.name, type, jobs))
            }
            const submit = WorkerPool.submit(pool, job, {
              timeout: type.timeout,
              metadata: { type: type.name, batch: jobs.length }
            })
            return Effect.flatMap(Effect.exit(Effect.flatMap(submit, (handle) => handle.exit)), (submitted) => {
              // refused by the pool (it is closing): handed back untouched; a defect stays one
              const exit: Exit.Exit<unknown, unknown> = Exit.isSuccess(submitted) ?
                submitted.value :
                Result.isSuccess(recoverableError(submitted.cause)) ?
                Exit.interrupt() :
                submitted
              free += members.length
              room.openUnsafe()
              const settleOne = (member: Claimed) => {
                const current = { type }
                const envelope = batch.envelopes.get(member)!
                return Effect.flatMap(
                  Effect.exit(outcome(member, envelope, type, exit)),
                  (settled) => member.settle(settled, retryDelayOf(current))
                )
              }
              // a success records nothing for a job outside a flow (a batch type has no result): only its claim
              // is completed; a failure, or a job in a flow, goes the single job's way
              if (Exit.isFailure(exit) || queue.table === undefined) {
                return Effect.forEach(members, settleOne, { concurrency: "unbounded", discard: true })
              }
              if (batch.inFlows === 0) return claims.completeSucceeded(members)
              const inFlow = (member: Claimed) => isInFlow(batch.envelopes.get(member)!)
              return Effect.all([
                claims.completeSucceeded(members.filter((member) => !inFlow(member))),
                Effect.forEach(members.filter(inFlow), settleOne, { concurrency: "unbounded", discard: true })
              ], { concurrency: 2, discard: true })
            })
          })
        // a claimed job that joins a batch: of a batch type, at or under its last attempt, its payload decoded
        // synchronously; any other (a payload that does not decode is dead-lettered) goes the single job's way
        const batchJob = (
          claimed: Claimed
        ): readonly [JobType.Any, Envelope, JobType.BatchJob<unknown>] | undefined => {
          const envelope = toEnvelope(claimed)
          const type = registry.get(envelope.type)
          if (type?.batch === undefined || claimed.attempts > type.maxAttempts) return undefined
          const decoded = decoderOf(type)(envelope.payload)
          if (!Exit.isExit(decoded) || Exit.isFailure(decoded as Exit.Exit<unknown, unknown>)) return undefined
          return [type, envelope, {
            id: envelope.id,
            type: type.name,
            attempt: claimed.attempts,
            maxAttempts: type.maxAttempts,
            payload: (decoded as Exit.Success<unknown>).value
          }]
        }
        // each job's fiber (or batch's) is started in place, in this fiber's context, and joins the settlements
        // (one call per job, no effect to build for it); once claimed, a job is awaited and settled
        // uninterruptibly: the pool's shutdown decides when it stops
        const start = yield* FiberSet.runtime(settlements)()
        const claimAndStart = Effect.uninterruptible(Effect.map(claims.claim(free), (claimed) => {
          free -= claimed.length
          let batches: Map<JobType.Any, PendingBatch> | undefined
          for (let i = 0; i < claimed.length; i++) {
            const joined = hasBatchTypes ? batchJob(claimed[i]) : undefined
            if (joined === undefined) {
              start(run(claimed[i]), uninterruptibly)
              continue
            }
            const [type, envelope, job] = joined
            batches ??= new Map()
            let batch = batches.get(type)
            if (batch === undefined) {
              batch = { members: [], jobs: [], envelopes: new Map(), inFlows: 0 }
              batches.set(type, batch)
            }
            batch.members.push(claimed[i])
            batch.jobs.push(job)
            batch.envelopes.set(claimed[i], envelope)
            if (isInFlow(envelope)) batch.inFlows++
            if (batch.members.length >= type.batch!.maxSize) {
              start(runBatch(type, batch), uninterruptibly)
              batches.delete(type)
            }
          }
          if (batches !== undefined) {
            for (const [type, batch] of batches) start(runBatch(type, batch), uninterruptibly)
          }
          return claimed.length
        }))
        while (!(yield* WorkerPool.stats(pool)).closed) {
          if (free <= 0) {
            room.closeUnsafe()
            yield* room.await
            continue
          }
          const started = yield* Effect.result(claimAndStart)
          if (Result.isFailure(started)) {
            // the store is unreachable: don't spin
            yield* Effect.logWarning("claiming jobs failed; retrying in 500 millis", started.failure)
            yield* Effect.sleep("500 millis")
          } else if (started.success === 0) {
            yield* claims.awaitWork
          }
        }
      })

    const claimer = Effect.gen(function*() {
      // the pool may close on its own (a `Shutdown.Controller` asked it to): then stop claiming
      while (!(yield* WorkerPool.stats(pool)).closed) {
        const exit = yield* Effect.exit(claimOnce)
        if (Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)) {
          const error = Cause.findError(exit.cause)
          if (Result.isSuccess(error) && error.success instanceof StoreError) {
            // the store is unreachable: don't spin
            yield* Effect.logWarning("claiming a job failed; retrying in 1 second", exit.cause)
            yield* Effect.sleep("1 second")
          }
        }
      }
    })

    const fibers: Array<Fiber.Fiber<void>> = []
    const makeClaimer = queue.jobs?.claimer
    if (makeClaimer !== undefined) {
      const claims = yield* makeClaimer({
        name: queue.name,
        maxAttempts: storeMaxAttempts,
        maxBytes: queue.maxPayloadBytes
      })
      fibers.push(yield* Effect.forkDetach(batchClaimer(claims), { startImmediately: true }))
    } else {
      for (let i = 0; i < options.concurrency; i++) {
        fibers.push(yield* Effect.forkDetach(claimer, { startImmediately: true }))
      }
    }
    // housekeeping: dead-letter rows no claim can take, apply the retention, sample the metrics; a failure is
    // logged and retried at the next round, never fatal. Spread: the first round comes at a random point of the
    // first interval, so that workers started together (a deploy, a scale-up) do not all scan the queue at once,
    // and a starting worker's first claims do not wait behind its scans.
    const every = (
      interval: Duration.Duration,
      label: string,
      task: Effect.Effect<unknown, StoreError>,
      spread: boolean
    ) => {
      const rounds = task.pipe(
        Effect.catchCause((cause) =>
          Effect.logWarning(`${label} failed; retrying in ${Duration.format(interval)}`, cause)
        ),
        Effect.andThen(Effect.sleep(interval)),
        Effect.forever
      )
      // an infinite interval runs its task once, at start
      return spread && Duration.isFinite(interval)
        ? Effect.andThen(
          Effect.flatMap(Random.next, (r) => Effect.sleep(Duration.millis(r * Duration.toMillis(interval)))),
          rounds
        )
        : rounds
    }
    fibers.push(
      yield* Effect.forkDetach(
        every(
          queue.maintenanceInterval,
          "looking for unclaimable jobs",
          maintain(queue),
          true
        ),
        { startImmediately: true }
      ),
      yield* Effect.forkDetach(every(queue.retention.interval, "retention", applyRetention(queue), true), {
        startImmediately: true
      })
    )
    if (queue.wakeups !== undefined) {
      fibers.push(yield* Effect.forkDetach(queue.wakeups.listen(queue.name, self), { startImmediately: true }))
    }
    // recurring schedules: every worker polls the due ones; the store's compare-and-swap lets one fire each tick
    const schedules = queue.schedules
    if (schedules !== undefined) {
      const interval = Duration.max(queue.pollInterval, Duration.millis(50))
      fibers.push(
        yield* Effect.forkDetach(every(interval, "firing due schedules", fireSchedules(queue, schedules), false), {
          startImmediately: true
        })
      )
    }
    if (queue.table !== undefined && Duration.isPositive(metricsInterval)) {
      const gauges = yield* QueueMetrics.make(queue.name)
      fibers.push(
        yield* Effect.forkDetach(every(metricsInterval, "sampling the queue's metrics", gauges.sample(queue), true), {
          startImmediately: true
        })
      )
    }

    const done = yield* Deferred.make<Shutdown.Report>()
    let started = false
    const shutdown: Effect.Effect<Shutdown.Report> = Effect.uninterruptible(Effect.suspend(() => {
      if (started) return Deferred.await(done)
      started = true
      return Effect.gen(function*() {
        // stop claiming (waiting claimers end at once; busy ones end when their job has settled), and shut
        // the pool down concurrently: it bounds how long the busy ones take
        const stopClaimers = yield* Effect.forkChild(
          Effect.forEach(fibers, Fiber.interrupt, { concurrency: "unbounded" }),
          {
            startImmediately: true
          }
        )
        const report = yield* WorkerPool.shutdown(pool).pipe(Effect.orDie)
        // Every job has ended by now; a claimer still running is waiting in the store's take. effect 4.1's SQL
        // store re-enters that wait uninterruptibly after it skips a row whose JSON does not parse, so such a
        // claimer is left behind rather than waited for: if it ever claims a job, the closed pool refuses it; the
        // hand-back is settled while the worker's scope is open, and once it has closed the job is claimable
        // again when its lease expires.
        yield* Effect.timeoutOption(Fiber.join(stopClaimers), "1 second")
        yield* FiberSet.awaitEmpty(settlements)
        yield* Deferred.succeed(done, report)
        return report
      })
    }))
    yield* Effect.addFinalizer(() => shutdown)

    return { queue: queue.name, pool, shutdown }
  })

/**
 * A layer that runs a worker for as long as the layer lives (for example `Layer.launch` under
 * `NodeRuntime.runMain`: SIGTERM then shuts it down gracefully).
 *
 * @example
 * ```ts
 * import { Effect, Layer, Schema } from "effect"
 * import { DurableQueue, DurableWorker, JobType } from "@fiberpool/durable"
 *
 * const Ping = JobType.make({ name: "ping", payload: Schema.String, handler: () => Effect.void })
 * const Worker = DurableWorker.layer({ types: [Ping], concurrency: 4 }).pipe(Layer.provide(DurableQueue.layerMemory()))
 * await Effect.runPromise(Effect.scoped(Layer.build(Worker)))
 * console.log("started and stopped") // => started and stopped
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = <T extends JobType.Any>(
  options: Options<T>
): Layer.Layer<never, PoolError.InvalidOptions, QueueService | JobType.Services<T>> =>
  Layer.effectDiscard(make(options))

// ---- Internal ----

const resolveUnknownPolicy = (
  policy: UnknownTypePolicy | undefined
): Effect.Effect<
  { readonly retryAfter: Duration.Duration; readonly deadLetterAfter: Duration.Duration } | undefined,
  PoolError.InvalidOptions
> => {
  if (policy === "dead-letter") return Effect.succeed(undefined)
  const read = (option: string, input: Duration.Input | undefined, fallback: Duration.Duration) => {
    if (input === undefined) return Effect.succeed(fallback)
    const duration = Duration.fromInput(input)
    return duration._tag === "Some" && Duration.isFinite(duration.value) && !Duration.isNegative(duration.value)
      ? Effect.succeed(duration.value)
      : Effect.fail(
        new PoolError.InvalidOptions({ option: `unknownTypes.${option}`, value: String(input), expected: "a duration" })
      )
  }
  return Effect.all({
    retryAfter: read("retryAfter", policy?.retryAfter, Duration.seconds(5)),
    deadLetterAfter: read("deadLetterAfter", policy?.deadLetterAfter, Duration.minutes(10))
  })
}

const resolveMetricsInterval = (
  input: Duration.Input | undefined
): Effect.Effect<Duration.Duration, PoolError.InvalidOptions> => {
  if (input === undefined) return Effect.succeed(Duration.seconds(15))
  const duration = Duration.fromInput(input)
  return duration._tag === "Some" && Duration.isFinite(duration.value) && !Duration.isNegative(duration.value)
    ? Effect.succeed(duration.value)
    : Effect.fail(
      new PoolError.InvalidOptions({ option: "metricsInterval", value: String(input), expected: "a duration" })
    )
}

/**
 * PersistedQueue's own attempt cap. The worker dead-letters by the job type's `maxAttempts` itself (the store
 * only sees one cap per queue); this cap only stops a job whose dead-lettering keeps failing.
 */
const storeMaxAttempts = 1000

/** The largest progress report, in characters of JSON (64 KiB): progress is a figure, not a payload. */
const maxProgressBytes = 64 * 1024

const uninterruptibly = { uninterruptible: true } as const

/** A batch being made from one claim's jobs (see `runBatch`): the claims, what the handler gets, and how many are in a flow. */
interface PendingBatch {
  readonly members: Array<Claimed>
  readonly jobs: Array<JobType.BatchJob<unknown>>
  readonly envelopes: Map<Claimed, Envelope>
  inFlows: number
}

/** A flow's child or parent: its success is recorded with its flow (`record`), not only completed. */
const isInFlow = (envelope: Envelope): boolean => envelope.parent !== undefined || envelope.flow === true

/** A batch's span: one per handler call, with the batch's size (OpenTelemetry's `messaging.batch.message_count`). */
const batchSpan = (
  queue: string,
  pool: string,
  type: JobType.Any,
  jobs: ReadonlyArray<JobType.BatchJob<unknown>>
) => ({
  kind: "consumer" as const,
  root: true,
  attributes: {
    "messaging.system": messagingSystem,
    "messaging.destination.name": queue,
    "messaging.operation.type": "process",
    "messaging.operation.name": "process",
    "messaging.batch.message_count": jobs.length,
    "fiberpool.pool": pool,
    "fiberpool.job.type": type.name,
    "fiberpool.jobs": jobs.map((job) => job.id)
  },
  captureStackTrace: false
})

/** A cause's failure as `Effect.result` sees it: a cause that holds a defect is a defect, even beside a failure. */
const recoverableError = <E>(cause: Cause.Cause<E>): Result.Result<E, unknown> =>
  Cause.hasDies(cause) ? Result.fail(cause) : Cause.findError(cause)

type EnvelopeLike = Envelope

/**
 * Stores what a job reports through core's `Job.Current`: reads the job handle's `progressUpdates` from the first
 * report on (`watch` wraps the job's `Job.Info`; `attach` gives the handle, whichever comes first starts it).
 */
class ProgressPersister {
  readonly fibers: FiberSet.FiberSet<void>
  readonly store: (value: unknown) => Effect.Effect<void>
  handle: { readonly progressUpdates: Stream.Stream<unknown> } | undefined = undefined
  reported = false
  fiber: Fiber.Fiber<void> | undefined = undefined
  constructor(fibers: FiberSet.FiberSet<void>, store: (value: unknown) => Effect.Effect<void>) {
    this.fibers = fibers
    this.store = store
  }
  private start(): Effect.Effect<void> {
    const handle = this.handle
    if (!this.reported || handle === undefined || this.fiber !== undefined) return Effect.void
    return Effect.map(
      FiberSet.run(this.fibers, Stream.runForEach(handle.progressUpdates, this.store), { startImmediately: true }),
      (fiber) => {
        this.fiber = fiber
      }
    )
  }
  watch(info: Job.Info): Job.Info {
    return new WatchedInfo(info, this)
  }
  /** gives the handle; when the job has reported, the effect that starts the reader (undefined: nothing to do) */
  attach(handle: { readonly progressUpdates: Stream.Stream<unknown> }): Effect.Effect<void> | undefined {
    this.handle = handle
    return this.reported ? this.start() : undefined
  }
  /** a reader was started: waits until it has stored the last report (undefined: no reader) */
  get await(): Effect.Effect<void> | undefined {
    return this.fiber === undefined ? undefined : Effect.asVoid(Fiber.await(this.fiber))
  }
  /** called by `WatchedInfo.progress` after the pool took the report */
  onReport(): Effect.Effect<void> {
    this.reported = true
    return this.start()
  }
}

/** A job's `Job.Info` whose progress reports also start the job's `ProgressPersister` (a class: one per job). */
class WatchedInfo implements Job.Info {
  readonly info: Job.Info
  readonly progress: (value: unknown) => Effect.Effect<void>
  constructor(info: Job.Info, persister: ProgressPersister) {
    this.info = info
    this.progress = (value) => Effect.andThen(info.progress(value), Effect.suspend(() => persister.onReport()))
  }
  get id() {
    return this.info.id
  }
  get pool() {
    return this.info.pool
  }
  get attempt() {
    return this.info.attempt
  }
  get metadata() {
    return this.info.metadata
  }
  get deadline() {
    return this.info.deadline
  }
}

const toEnvelope = (item: { readonly id: string; readonly element: unknown }): Envelope => {
  const element = item.element as Partial<Record<keyof Envelope, unknown>> | null | undefined
  const trace = element?.trace as Partial<Record<keyof TraceContext, unknown>> | null | undefined
  return {
    id: typeof element?.id === "string" ? element.id : item.id,
    type: typeof element?.type === "string" ? element.type : "<missing>",
    payload: element?.payload,
    trace: typeof trace?.traceId === "string" && typeof trace.spanId === "string"
      ? { traceId: trace.traceId, spanId: trace.spanId, sampled: trace.sampled !== false }
      : undefined,
    parent: typeof element?.parent === "string" ? element.parent : undefined,
    flow: element?.flow === true ? true : undefined
  }
}

/**
 * The signal effect's `PersistedQueue` stores read from a take's failure to mark the element `failed` at once
 * (whatever its attempt count) instead of retrying it. effect 4.1 does not export its class; every store matches
 * it by this `_tag` (`deadLetterFromCause` in `effect/persistence/PersistedQueue`). The durable tests check that a
 * dead letter's row says `failed`, so a change on effect's side is caught.
 */
const storeDeadLetter = (reason: string) => ({
  _tag: "~effect/persistence/PersistedQueue/DeadLetter",
  cause: Cause.fail(reason)
})

const handBackReasons = new Set(["JobInterrupted", "JobCancelled", "JobAbandoned"])

const isHandBack = (cause: Cause.Cause<unknown>): boolean => {
  if (Cause.hasInterruptsOnly(cause)) return true
  const error = Cause.findError(cause)
  return Result.isSuccess(error) && error.success instanceof PoolError.JobError &&
    handBackReasons.has(error.success.reason._tag)
}
