/**
 * The failures raised by `@fiberpool/durable` itself. A job's own errors are not wrapped: they are what the
 * handler failed with, kept (rendered) as the dead letter's `error` once the job has used all its attempts.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * A job's stored payload does not decode with its type's `payload` schema. The job is dead-lettered at once
 * (never retried: the same bytes would fail the same way), and the worker goes on with the next job.
 *
 * @example
 * ```ts
 * import { DurableError } from "@fiberpool/durable"
 *
 * const error = new DurableError.MalformedPayload({ jobId: "j1", jobType: "email", issue: "Expected string" })
 * console.log(error.message) // => Job j1 (email): the payload does not match the schema: Expected string
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class MalformedPayload extends Schema.TaggedError<MalformedPayload>()("MalformedPayload", {
  jobId: Schema.String,
  jobType: Schema.String,
  issue: Schema.String
}) {
  override get message(): string {
    return `Job ${this.jobId} (${this.jobType}): the payload does not match the schema: ${this.issue}`
  }
}

/**
 * A worker claimed a job whose type it does not know (the queue is shared with workers of other types, or the
 * type was renamed). The job is dead-lettered with this error; re-queue it once a worker knows the type.
 *
 * @example
 * ```ts
 * import { DurableError } from "@fiberpool/durable"
 *
 * const error = new DurableError.UnknownJobType({ jobId: "j1", jobType: "sms", known: ["email"] })
 * console.log(error.message) // => Job j1 has type "sms", which this worker does not handle (it knows: email)
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class UnknownJobType extends Schema.TaggedError<UnknownJobType>()("UnknownJobType", {
  jobId: Schema.String,
  jobType: Schema.String,
  known: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `Job ${this.jobId} has type "${this.jobType}", which this worker does not handle (it knows: ${
      this.known.join(", ")
    })`
  }
}

/**
 * Awaiting a result: the job used all its attempts and is now a dead letter. `error` is its last error,
 * rendered.
 *
 * @example
 * ```ts
 * import { DurableError } from "@fiberpool/durable"
 *
 * const error = new DurableError.JobDeadLettered({ jobId: "j1", jobType: "email", attempts: 3, error: "SMTP 550" })
 * console.log(error.message) // => Job j1 (email) failed after 3 attempt(s): SMTP 550
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class JobDeadLettered extends Schema.TaggedError<JobDeadLettered>()("JobDeadLettered", {
  jobId: Schema.String,
  jobType: Schema.String,
  attempts: Schema.Number,
  error: Schema.String
}) {
  override get message(): string {
    return `Job ${this.jobId} (${this.jobType}) failed after ${this.attempts} attempt(s): ${this.error}`
  }
}

/**
 * The store (SQLite, PostgreSQL) failed: it could not be reached, or a statement failed. `cause` keeps the
 * driver's error.
 *
 * @example
 * ```ts
 * import { DurableError } from "@fiberpool/durable"
 *
 * const error = new DurableError.StoreError({ operation: "enqueue", cause: new Error("connection refused") })
 * console.log(error.message) // => The durable store failed during enqueue: connection refused
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class StoreError extends Schema.TaggedError<StoreError>()("StoreError", {
  operation: Schema.String,
  cause: Schema.Defect()
}) {
  override get message(): string {
    const cause = this.cause as { readonly message?: unknown } | undefined
    const detail = typeof cause?.message === "string" && cause.message !== "" ? cause.message : String(this.cause)
    return `The durable store failed during ${this.operation}: ${detail}`
  }
}

/**
 * A payload or result could not be encoded with its schema when enqueuing or storing it.
 *
 * @example
 * ```ts
 * import { DurableError } from "@fiberpool/durable"
 *
 * const error = new DurableError.EncodeFailed({ jobType: "email", issue: "Expected string, got 1" })
 * console.log(error.message) // => email: cannot encode: Expected string, got 1
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class EncodeFailed extends Schema.TaggedError<EncodeFailed>()("EncodeFailed", {
  jobType: Schema.String,
  issue: Schema.String
}) {
  override get message(): string {
    return `${this.jobType}: cannot encode: ${this.issue}`
  }
}

/**
 * A payload is over the queue's size limit (`maxPayloadBytes`, counted as the UTF-8 bytes of the stored JSON):
 * `enqueue` refuses it and stores nothing. A payload that large would slow every claim and, over the driver's
 * message limit (16 MiB for `@effect/sql-pg`), stall the queue. Store large data elsewhere and enqueue its key.
 *
 * @example
 * ```ts
 * import { DurableError } from "@fiberpool/durable"
 *
 * const error = new DurableError.PayloadTooLarge({ jobType: "export", bytes: 2_000_000, maxBytes: 1_048_576 })
 * console.log(error.message)
 * // => export: the payload is 2000000 bytes, over the limit of 1048576 (option "maxPayloadBytes")
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class PayloadTooLarge extends Schema.TaggedError<PayloadTooLarge>()("PayloadTooLarge", {
  jobType: Schema.String,
  bytes: Schema.Number,
  maxBytes: Schema.Number
}) {
  override get message(): string {
    return `${this.jobType}: the payload is ${this.bytes} bytes, over the limit of ${this.maxBytes} (option "maxPayloadBytes")`
  }
}

/**
 * A job id is empty or longer than 255 characters (the stores' key column). `id` is the start of the id given.
 *
 * @example
 * ```ts
 * import { DurableError } from "@fiberpool/durable"
 *
 * const error = new DurableError.InvalidJobId({ id: "", length: 0 })
 * console.log(error.message) // => Invalid job id "": expected 1 to 255 characters, got 0
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidJobId extends Schema.TaggedError<InvalidJobId>()("InvalidJobId", {
  id: Schema.String,
  length: Schema.Number
}) {
  override get message(): string {
    const shown = this.id.length > 40 ? `${this.id.slice(0, 40)}…` : this.id
    return `Invalid job id "${shown}": expected 1 to ${maxJobIdLength} characters, got ${this.length}`
  }
}

/**
 * A stored result cannot be read: its JSON does not parse, or it does not decode with the type's `result`
 * schema (the schema changed since the job ran, or the row was edited).
 *
 * @example
 * ```ts
 * import { DurableError } from "@fiberpool/durable"
 *
 * const error = new DurableError.MalformedResult({ jobId: "j1", jobType: "add", issue: "Expected number" })
 * console.log(error.message) // => Job j1 (add): the stored result cannot be read: Expected number
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class MalformedResult extends Schema.TaggedError<MalformedResult>()("MalformedResult", {
  jobId: Schema.String,
  jobType: Schema.String,
  issue: Schema.String
}) {
  override get message(): string {
    return `Job ${this.jobId} (${this.jobType}): the stored result cannot be read: ${this.issue}`
  }
}

/** @internal */
export const maxJobIdLength = 255

/**
 * Awaiting a result: the job was cancelled (`DurableQueue.cancel`) before it started.
 *
 * @example
 * ```ts
 * import { DurableError } from "@fiberpool/durable"
 *
 * const error = new DurableError.JobCancelled({ jobId: "j1", jobType: "email" })
 * console.log(error.message) // => Job j1 (email) was cancelled before it started
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class JobCancelled extends Schema.TaggedError<JobCancelled>()("JobCancelled", {
  jobId: Schema.String,
  jobType: Schema.String
}) {
  override get message(): string {
    return `Job ${this.jobId} (${this.jobType}) was cancelled before it started`
  }
}

/**
 * A flow's parent was dead-lettered because one of its children was (the flow's default `onChildFailure`,
 * `"fail-parent"`). Its message is the parent's dead-letter `error`, so `DurableQueue.result` of the parent fails
 * with a `JobDeadLettered` that names the child.
 *
 * @example
 * ```ts
 * import { DurableError } from "@fiberpool/durable"
 *
 * const error = new DurableError.ChildFailed({
 *   jobId: "report-1",
 *   jobType: "report",
 *   childId: "fetch-2",
 *   childType: "fetch",
 *   error: "timeout"
 * })
 * console.log(error.message) // => Job report-1 (report): child fetch-2 (fetch) was dead-lettered: timeout
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class ChildFailed extends Schema.TaggedError<ChildFailed>()("ChildFailed", {
  jobId: Schema.String,
  jobType: Schema.String,
  childId: Schema.String,
  childType: Schema.String,
  error: Schema.String
}) {
  override get message(): string {
    return `Job ${this.jobId} (${this.jobType}): child ${this.childId} (${this.childType}) was dead-lettered: ${this.error}`
  }
}

/**
 * The queue's store keeps no flows: `layerSql` on a database other than SQLite and PostgreSQL (the memory, SQLite,
 * PostgreSQL and Redis stores keep flows).
 *
 * @example
 * ```ts
 * import { DurableError } from "@fiberpool/durable"
 *
 * const error = new DurableError.FlowsUnsupported({ queue: "mail" })
 * console.log(error.message) // => Queue mail: its store keeps no flows (use memory, SQLite, PostgreSQL or Redis)
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class FlowsUnsupported extends Schema.TaggedError<FlowsUnsupported>()("FlowsUnsupported", {
  queue: Schema.String
}) {
  override get message(): string {
    return `Queue ${this.queue}: its store keeps no flows (use memory, SQLite, PostgreSQL or Redis)`
  }
}

/**
 * `DurableFlow.results` or `DurableFlow.children` was asked for the children of a job that is not a flow's parent
 * (enqueued with `DurableQueue.enqueue`, or its flow was removed by retention).
 *
 * @example
 * ```ts
 * import { DurableError } from "@fiberpool/durable"
 *
 * const error = new DurableError.FlowNotFound({ jobId: "j1" })
 * console.log(error.message) // => Job j1 is not the parent of a flow
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class FlowNotFound extends Schema.TaggedError<FlowNotFound>()("FlowNotFound", {
  jobId: Schema.String
}) {
  override get message(): string {
    return `Job ${this.jobId} is not the parent of a flow`
  }
}

/**
 * A `DurableSchedule` operation on a queue whose store keeps no schedules: a queue built without a schedule store
 * (`layerSql` on a database other than PostgreSQL and SQLite). The memory, SQLite, PostgreSQL and Redis stores keep
 * schedules.
 *
 * @example
 * ```ts
 * import { DurableError } from "@fiberpool/durable"
 *
 * const error = new DurableError.SchedulesUnsupported({ queue: "mail" })
 * console.log(error.message) // => Queue mail: its store keeps no recurring schedules (use memory, SQLite, PostgreSQL or Redis)
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class SchedulesUnsupported extends Schema.TaggedError<SchedulesUnsupported>()("SchedulesUnsupported", {
  queue: Schema.String
}) {
  override get message(): string {
    return `Queue ${this.queue}: its store keeps no recurring schedules (use memory, SQLite, PostgreSQL or Redis)`
  }
}
