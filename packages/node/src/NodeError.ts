/**
 * The typed errors of `@fiberpool/node`, grouped under one tagged error with a `reason`, as core's `PoolError`:
 *
 * - {@link ThreadCrashed}: the thread running a job died (uncaught exception, `process.exit`, out of memory).
 * - {@link ThreadStartFailed}: a thread never became ready: its worker file failed to load, exited, or did not
 *   call `NodeThreadRunner.serve` within the startup timeout.
 * - {@link InvalidInput}, {@link InvalidOutput}, {@link TaskNotServed}: a job whose values do not match its
 *   task's Schemas, or whose task the worker file does not serve. The job fails; the thread goes on.
 * - {@link ListenError}: the metrics endpoint could not listen.
 *
 * A job on a thread pool fails with `Task.Error<T> | NodeError`: match one reason with
 * `Effect.catchReason("NodeError", "ThreadCrashed", ...)`. `NodeWorkerPool.make` fails with
 * `InvalidOptions | NodeError`. Options that are rejected are core's `PoolError.InvalidOptions`, naming the option.
 *
 * All errors are `Schema.TaggedError` classes: they encode to plain data.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * The thread running a job died: an uncaught exception, `process.exit`, or out of memory under
 * `resourceLimits`. Only that job fails; the thread is replaced. `reason` tells which; `exitCode` is the
 * thread's exit code.
 *
 * @example
 * ```ts
 * import { NodeError } from "@fiberpool/node"
 *
 * const error = new NodeError.ThreadCrashed({
 *   task: "resize",
 *   threadId: 3,
 *   exitCode: 1,
 *   reason: "outOfMemory",
 *   message: "Worker terminated due to reaching memory limit: JS heap out of memory"
 * })
 * console.log(error._tag, error.reason) // => ThreadCrashed outOfMemory
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class ThreadCrashed extends Schema.TaggedError<ThreadCrashed>()("ThreadCrashed", {
  task: Schema.String,
  threadId: Schema.Number,
  exitCode: Schema.Number,
  reason: Schema.Literals(["exited", "uncaughtException", "outOfMemory"]),
  message: Schema.String
}) {}

/**
 * A thread never became ready. `worker` is the worker file; `reason` says what happened:
 *
 * - `"timedOut"`: it did not call `NodeThreadRunner.serve` within the startup timeout (a file that is not a
 *   worker file, a forgotten `serve(...).pipe(Effect.runFork)`, an import that never settles); it was terminated.
 * - `"exited"`: it exited before it was ready (`exitCode`).
 * - `"loadFailed"`: loading the file threw (`detail` has the error: a missing module, a throw at import).
 * - `"spawnFailed"`: Node refused to start the thread (`detail` has Node's error).
 *
 * `NodeWorkerPool.make` fails with it when a thread of the first `minThreads` cannot start; a job fails with it
 * when the thread started for it (a respawn, a new elastic thread) cannot.
 *
 * @example
 * ```ts
 * import { NodeError } from "@fiberpool/node"
 *
 * const error = new NodeError.ThreadStartFailed({
 *   worker: "file:///app/worker.ts",
 *   threadId: 1,
 *   reason: "timedOut",
 *   exitCode: undefined,
 *   detail: "it did not call NodeThreadRunner.serve within 30000 ms"
 * })
 * console.log(error.message)
 * // => The worker file file:///app/worker.ts did not start a thread: it did not call NodeThreadRunner.serve within 30000 ms
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class ThreadStartFailed extends Schema.TaggedError<ThreadStartFailed>()("ThreadStartFailed", {
  worker: Schema.String,
  threadId: Schema.Number,
  reason: Schema.Literals(["timedOut", "exited", "loadFailed", "spawnFailed"]),
  exitCode: Schema.UndefinedOr(Schema.Number),
  detail: Schema.String
}) {
  override get message(): string {
    return `The worker file ${this.worker} did not start a thread: ${this.detail}`
  }
}

/**
 * A job's input does not match its task's input Schema. Checked on the main thread before the job is sent
 * (`side: "main"`), and again by the thread when it decodes (`side: "thread"`: the two sides disagree on the
 * Schema). The job fails; the thread goes on.
 *
 * @example
 * ```ts
 * import { NodeError } from "@fiberpool/node"
 *
 * const error = new NodeError.InvalidInput({ task: "resize", side: "main", issue: "Expected number, got \"x\"" })
 * console.log(error.message) // => Invalid input for task "resize": Expected number, got "x"
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidInput extends Schema.TaggedError<InvalidInput>()("InvalidInput", {
  task: Schema.String,
  side: Schema.Literals(["main", "thread"]),
  issue: Schema.String
}) {
  override get message(): string {
    return `Invalid input for task "${this.task}": ${this.issue}`
  }
}

/**
 * A handler's result does not match its task's Schemas: its output (`part: "output"`) or its typed error
 * (`part: "error"`), found when the thread encodes it or the main thread decodes it. The job fails; the thread
 * goes on.
 *
 * @example
 * ```ts
 * import { NodeError } from "@fiberpool/node"
 *
 * const error = new NodeError.InvalidOutput({ task: "resize", part: "output", issue: "Expected number, got null" })
 * console.log(error.message) // => Invalid output of task "resize": Expected number, got null
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class InvalidOutput extends Schema.TaggedError<InvalidOutput>()("InvalidOutput", {
  task: Schema.String,
  part: Schema.Literals(["output", "error"]),
  issue: Schema.String
}) {
  override get message(): string {
    return `Invalid ${this.part} of task "${this.task}": ${this.issue}`
  }
}

/**
 * The worker file does not serve the task a job asked for (it is missing from `NodeThreadRunner.serve`'s task
 * list or handlers). `served` lists what it serves. The job fails; the thread goes on.
 *
 * @example
 * ```ts
 * import { NodeError } from "@fiberpool/node"
 *
 * const error = new NodeError.TaskNotServed({ task: "resize", served: ["crop", "rotate"] })
 * console.log(error.message) // => The worker file does not serve the task "resize" (it serves: crop, rotate)
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class TaskNotServed extends Schema.TaggedError<TaskNotServed>()("TaskNotServed", {
  task: Schema.String,
  served: Schema.Array(Schema.String)
}) {
  override get message(): string {
    return `The worker file does not serve the task "${this.task}" (it serves: ${this.served.join(", ") || "none"})`
  }
}

/**
 * The metrics endpoint could not listen: the port is busy (`code: "EADDRINUSE"`), the address is not local to
 * this machine (`"EADDRNOTAVAIL"`), or binding needs privileges (`"EACCES"`). `NodeMetrics.make` fails with it.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { NodeError } from "@fiberpool/node"
 *
 * const error = new NodeError.ListenError({ host: "127.0.0.1", port: 9464, code: "EADDRINUSE" })
 * assert.strictEqual(error.message, "Cannot listen on 127.0.0.1:9464: the port is already in use (EADDRINUSE)")
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class ListenError extends Schema.TaggedError<ListenError>()("ListenError", {
  host: Schema.String,
  port: Schema.Number,
  code: Schema.String
}) {
  override get message(): string {
    const why = this.code === "EADDRINUSE"
      ? "the port is already in use"
      : this.code === "EACCES"
      ? "permission denied"
      : this.code === "EADDRNOTAVAIL"
      ? "the address is not available on this machine"
      : "the server could not start"
    return `Cannot listen on ${this.host}:${this.port}: ${why} (${this.code})`
  }
}

/**
 * A failure raised by `@fiberpool/node` itself. Match one reason with
 * `Effect.catchReason("NodeError", "ThreadCrashed", ...)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { NodeError } from "@fiberpool/node"
 *
 * const crashed = new NodeError.ThreadCrashed({
 *   task: "resize",
 *   threadId: 3,
 *   exitCode: 7,
 *   reason: "exited",
 *   message: "The thread exited with code 7"
 * })
 * const program = Effect.fail(new NodeError.NodeError({ reason: crashed })).pipe(
 *   Effect.catchReason("NodeError", "ThreadCrashed", (reason) => Effect.succeed(reason.exitCode))
 * )
 * assert.strictEqual(await Effect.runPromise(program), 7)
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export class NodeError extends Schema.TaggedError<NodeError>()("NodeError", {
  reason: Schema.Union([ThreadCrashed, ThreadStartFailed, InvalidInput, InvalidOutput, TaskNotServed, ListenError])
}) {
  override get message(): string {
    return this.reason.message
  }
}

/**
 * Tells whether a value is a {@link NodeError}.
 *
 * @example
 * ```ts
 * import { NodeError } from "@fiberpool/node"
 *
 * const error = new NodeError.NodeError({ reason: new NodeError.TaskNotServed({ task: "a", served: [] }) })
 * console.log(NodeError.isNodeError(error), NodeError.isNodeError(new Error("x"))) // => true false
 * ```
 *
 * @category guards
 * @since 0.1.0
 */
export const isNodeError = (u: unknown): u is NodeError => u instanceof NodeError
