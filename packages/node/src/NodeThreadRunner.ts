/**
 * The thread side of `NodeWorkerPool`: a worker file serves the tasks it knows with one handler each.
 *
 * @since 0.1.0
 */
import * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Result from "effect/Result"
import * as Schema from "effect/Schema"
import { parentPort, receiveMessageOnPort } from "node:worker_threads"
import { plainGuard } from "./internal/plain.ts"
import {
  Batch,
  collectTransferables,
  type DefectInfo,
  issueOf,
  type RejectedInfo,
  Reply,
  type ReplyKind,
  type Request,
  Shared,
  Spin,
  spin,
  SpinPolicy,
  Times,
  Wake
} from "./internal/threads.ts"
import type { AnyTask, Task } from "./NodeWorkerPool.ts"

/**
 * One handler per task, keyed by the task's name: it receives the decoded input and returns an Effect of the
 * task's output, failing with the task's error.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { NodeWorkerPool, type NodeThreadRunner } from "@fiberpool/node"
 *
 * const Square = NodeWorkerPool.defineTask({ name: "square", input: Schema.Number, output: Schema.Number })
 * const handlers: NodeThreadRunner.Handlers<readonly [typeof Square]> = {
 *   square: (n) => Effect.succeed(n * n)
 * }
 * console.log(Object.keys(handlers)) // => [ 'square' ]
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Handlers<Tasks extends ReadonlyArray<AnyTask>, R = never> = {
  readonly [T in Tasks[number] as T["name"]]: (
    input: Task.Input<T>
  ) => Effect.Effect<Task.Output<T>, Task.Error<T>, R>
}

/**
 * The services the handlers need.
 *
 * @example
 * ```ts
 * import { Effect, Schema } from "effect"
 * import { NodeWorkerPool, type NodeThreadRunner } from "@fiberpool/node"
 *
 * const Square = NodeWorkerPool.defineTask({ name: "square", input: Schema.Number, output: Schema.Number })
 * const handlers = { square: (n: number) => Effect.succeed(n * n) }
 * const none: NodeThreadRunner.HandlersContext<typeof handlers> = undefined as never
 * console.log(Square.name, none) // => square undefined
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type HandlersContext<H> = {
  [K in keyof H]: H[K] extends (input: any) => Effect.Effect<any, any, infer R> ? R : never
}[keyof H]

/**
 * Serves tasks in a worker thread: call it (and run it) at the top level of the worker file given to
 * `NodeWorkerPool.make`. It never completes; the pool ends the thread.
 *
 * **Details**
 *
 * Each request is decoded with its task's input Schema and handed to its handler; the output or the typed
 * error is encoded and sent back. An input, output or error that does not match its Schema, and a task this
 * file does not serve, fail that job with a typed `NodeError` (`InvalidInput`, `InvalidOutput`,
 * `TaskNotServed`); a defect (a throw inside the handler's Effect) is sent back as a defect of that job. Either
 * way the thread goes on.
 *
 * A thread runs one request at a time, in the order they were posted. A handler that returns an `Exit`
 * (`Effect.succeed`, `Effect.fail`) is answered without starting a fiber, and the requests that came in one message
 * are answered in one message (a reply waits for at most 0.2 ms of work on the next ones). With
 * nothing in flight, the thread waits for its next request for up to 50 ms before it goes back to its event loop,
 * so that back-to-back requests cost no event-loop turn: the worker file's own timers and I/O still run, up to
 * 50 ms late while synchronous requests keep arriving. It blocks in `Atomics.wait`; after a wake-up that took long
 * (the thread runs on another core than the main thread), it first polls for up to 50 µs for a while, so that the
 * main thread needs no system call to wake it. Handlers may need services: provide them to the returned Effect.
 * Outside a worker thread it dies.
 * The handler of a preempted job does not get to run its finalizers: the pool terminates the thread.
 *
 * @example
 * ```ts
 * // a sketch of a worker file (primes.worker.ts), started by NodeWorkerPool.make
 * import { Effect, Schema } from "effect"
 * import { NodeWorkerPool, NodeThreadRunner } from "@fiberpool/node"
 *
 * const CountPrimes = NodeWorkerPool.defineTask({ name: "countPrimes", input: Schema.Int, output: Schema.Int })
 *
 * NodeThreadRunner.serve([CountPrimes], {
 *   countPrimes: (below) =>
 *     Effect.sync(() => {
 *       let count = 0
 *       for (let n = 2; n < below; n++) {
 *         let prime = true
 *         for (let d = 2; d * d <= n; d++) if (n % d === 0) { prime = false; break }
 *         if (prime) count++
 *       }
 *       return count
 *     })
 * }).pipe(Effect.runFork)
 * ```
 *
 * @category running
 * @since 0.1.0
 */
export const serve = <const Tasks extends ReadonlyArray<AnyTask>, H extends Handlers<Tasks, any>>(
  tasks: Tasks,
  handlers: H
): Effect.Effect<never, never, HandlersContext<H>> =>
  Effect.flatMap(Effect.context<HandlersContext<H>>(), (context) => {
    const port = parentPort
    if (port === null) {
      return Effect.die(new Error("NodeThreadRunner.serve must run in a worker thread started by NodeWorkerPool"))
    }
    return Effect.callback<never>(() => {
      const byName = new Map<string, AnyTask>(tasks.map((task) => [task.name, task]))
      const served = tasks.map((task) => task.name).filter((name) =>
        typeof (handlers as Record<string, unknown>)[name] === "function"
      )
      const run = Effect.runForkWith(context)
      // replies wait in `outbox` (`kind, id, value` each) until the requests at hand are done, so that a batch of
      // requests is answered with one message; a reply is never held longer than `Batch.holdMillis` of work
      let outbox: Array<unknown> = []
      let outboxTransfers: Array<ReadonlyArray<ArrayBuffer> | undefined> = []
      let outboxSince = 0
      const flush = (): void => {
        if (outbox.length === 0) return
        const message = outbox
        const transfers = outboxTransfers
        outbox = []
        outboxTransfers = []
        let transfer: Array<ArrayBuffer> | undefined = undefined
        for (const one of transfers) if (one !== undefined) (transfer ??= []).push(...one)
        const sent = Result.try(() =>
          transfer === undefined ? port.postMessage(message) : port.postMessage(message, transfer)
        )
        if (Result.isSuccess(sent)) return
        // find the replies that cannot be sent (a value structured clone cannot copy): each is sent alone
        for (let i = 0; i < transfers.length; i++) {
          const one = message.slice(i * 3, i * 3 + 3)
          const list = transfers[i]
          const alone = Result.try(() => list === undefined ? port.postMessage(one) : port.postMessage(one, list))
          if (Result.isFailure(alone)) port.postMessage([Reply.Defect, one[1], defectInfo(alone.failure)])
        }
      }
      const send = (kind: ReplyKind, id: number, value: unknown, transfer?: ReadonlyArray<ArrayBuffer>): void => {
        if (outbox.length === 0) outboxSince = performance.now()
        outbox.push(kind, id, value)
        outboxTransfers.push(transfer !== undefined && transfer.length > 0 ? transfer : undefined)
        if (performance.now() - outboxSince >= Batch.holdMillis) flush()
      }
      const reject = (id: number, info: RejectedInfo): void => send(Reply.Rejected, id, info)
      let shared: Int32Array | undefined = undefined
      let times: Float64Array | undefined = undefined
      // the main thread's clock: performance.now() there is this minus its timeOrigin
      let clockOffset = 0
      let startedAt = 0
      let inFlight = 0
      let waiting = false
      let stopped = false
      // requests that arrived while an asynchronous handler runs (four items each): a thread runs one request at a
      // time, in order
      let queued: Array<unknown> = []
      const onRequest = (message: Request): void => {
        if (message[0] === Wake.initId) {
          shared = new Int32Array(message[2] as SharedArrayBuffer, 0, Shared.length)
          times = new Float64Array(message[2] as SharedArrayBuffer, Times.offset, 2)
          clockOffset = performance.timeOrigin - (message[3] as number)
          return
        }
        for (let i = 0; i < message.length; i += 4) {
          if (inFlight > 0) queued.push(message[i], message[i + 1], message[i + 2], message[i + 3])
          else start(message[i] as number, message[i + 1] as string, message[i + 2], message[i + 3] as number)
        }
        if (inFlight === 0) flush()
      }
      // how long the last request of each task ran here: replies are not held across one that may run long
      const lastRun = new Map<string, number>()
      const finished = (name: string, seq: number): void => {
        const millis = performance.now() - startedAt
        times![Times.lastMillis] = millis
        lastRun.set(name, millis)
        Atomics.store(shared!, Shared.done, seq)
      }
      const start = (id: number, name: string, input: unknown, seq: number): void => {
        // claim the request: the main thread may have taken it back (see Shared in internal/threads.ts)
        const counter = shared!
        const claimed = Atomics.compareExchange(counter, Shared.cells + seq % Shared.ring, seq, -seq) === seq
        Atomics.store(counter, Shared.consumed, seq)
        if (!claimed) return
        startedAt = performance.now()
        times![Times.started] = startedAt + clockOffset
        if (
          outbox.length > 0 &&
          (startedAt - outboxSince >= Batch.holdMillis || !((lastRun.get(name) ?? Batch.holdMillis) < Batch.holdMillis))
        ) flush()
        const task = byName.get(name)
        const handler =
          (handlers as Record<string, (input: unknown) => Effect.Effect<unknown, unknown, HandlersContext<H>>>)[name]
        if (task === undefined || typeof handler !== "function") {
          reject(id, { _tag: "TaskNotServed", served })
          return finished(name, seq)
        }
        let value: unknown = input
        if (plainGuard(task.input)?.(input) !== true) {
          const decoded = Schema.decodeUnknownExit(task.input)(input)
          if (Exit.isFailure(decoded)) {
            reject(id, { _tag: "InvalidInput", issue: issueOf(decoded.cause) })
            return finished(name, seq)
          }
          value = decoded.value
        }
        // a handler that returns an Exit (Effect.succeed, Effect.fail) has its result already: no fiber needed;
        // a throw while building the Effect is a defect of the job, as it would be inside a fiber
        const effect = Result.try(() => handler(value))
        if (Result.isSuccess(effect) && Exit.isExit(effect.success)) {
          reply(task, id, effect.success, send)
          return finished(name, seq)
        }
        // the replies so far go now: this one may take a while
        flush()
        const fiber = run(Result.isSuccess(effect) ? effect.success : Effect.die(effect.failure))
        // A fiber that ended inside `run` (`Effect.sync`) is answered here, like an Exit. Its observer would run
        // inside this call, start the requests queued behind it or wait for new ones, and so run requests out of
        // the order they came in while the caller still holds earlier ones (the main thread then sees `consumed`
        // go backwards and stops posting to this thread).
        const early = fiber.pollUnsafe()
        if (early !== undefined) {
          reply(task, id, early, send)
          return finished(name, seq)
        }
        inFlight++
        fiber.addObserver((exit) => {
          inFlight--
          reply(task, id, exit, send)
          finished(name, seq)
          const rest = queued
          queued = []
          for (let i = 0; i < rest.length; i += 4) {
            if (inFlight > 0) queued.push(rest[i], rest[i + 1], rest[i + 2], rest[i + 3])
            else start(rest[i] as number, rest[i + 1] as string, rest[i + 2], rest[i + 3] as number)
          }
          if (inFlight === 0) {
            flush()
            if (!waiting) awaitNext()
          }
        })
      }
      const spinPolicy = new SpinPolicy()
      /**
       * Waits for the next request while nothing is in flight and runs it at once, for at most `Wake.waitMillis` in
       * all: it polls for a moment while wake-ups are slow (`SpinPolicy`), then blocks in `Atomics.wait`; back
       * to the event loop after that, when none came, or when a handler goes asynchronous, so that the file's own
       * timers and I/O get a turn at least that often (requests that arrive meanwhile are delivered as message
       * events). The one blocking call of the thread side.
       */
      const awaitNext = (): void => {
        const counter = shared
        if (counter === undefined) return
        waiting = true
        const until = performance.now() + Wake.waitMillis
        // when the current idle period began, if it blocked at once
        let blockedSince: number | undefined = undefined
        while (inFlight === 0 && !stopped) {
          const now = performance.now()
          const left = until - now
          if (left <= 0) break
          const seen = Atomics.load(counter, Shared.counter)
          let received = receiveMessageOnPort(port)
          if (received === undefined && spinPolicy.polls()) {
            const result = spin(counter, seen, Math.min(Spin.millis, left))
            spinPolicy.record(result)
            // a request came, or may have come while the thread was descheduled: look again
            if (result !== "missed") continue
          } else if (received === undefined) {
            // this period blocks at once: its length tells how costly a wake-up is (see SpinPolicy)
            blockedSince ??= now
          }
          if (received === undefined) {
            Atomics.store(counter, Shared.waiting, 1)
            const woke = Atomics.wait(counter, Shared.counter, seen, left)
            Atomics.store(counter, Shared.waiting, 0)
            if (woke === "timed-out") break
            received = receiveMessageOnPort(port)
            if (received === undefined) continue
          }
          if (blockedSince !== undefined) {
            spinPolicy.blocked(performance.now() - blockedSince)
            blockedSince = undefined
          }
          onRequest(received.message as Request)
        }
        waiting = false
      }
      const onMessage = (message: Request): void => {
        onRequest(message)
        if (inFlight === 0 && !waiting) awaitNext()
      }
      port.on("message", onMessage)
      port.postMessage([Reply.Ready])
      return Effect.sync(() => {
        stopped = true
        port.off("message", onMessage)
      })
    })
  })

// ---- Internal ----

const reply = (
  task: AnyTask,
  id: number,
  exit: Exit.Exit<unknown, unknown>,
  send: (kind: ReplyKind, id: number, value: unknown, transfer?: ReadonlyArray<ArrayBuffer>) => void
): void => {
  if (Exit.isSuccess(exit)) {
    if (plainGuard(task.output)?.(exit.value) === true) return send(Reply.Success, id, exit.value)
    const encoded = Schema.encodeUnknownExit(task.output)(exit.value)
    if (Exit.isFailure(encoded)) {
      return send(Reply.Rejected, id, { _tag: "InvalidOutput", part: "output", issue: issueOf(encoded.cause) })
    }
    return send(
      Reply.Success,
      id,
      encoded.value,
      task.transfer ? collectTransferables(encoded.value) as Array<ArrayBuffer> : undefined
    )
  }
  const error = Cause.findError(exit.cause)
  if (Result.isSuccess(error)) {
    const encoded = Schema.encodeUnknownExit(task.error)(error.success)
    if (Exit.isFailure(encoded)) {
      return send(Reply.Rejected, id, { _tag: "InvalidOutput", part: "error", issue: issueOf(encoded.cause) })
    }
    return send(Reply.Failure, id, encoded.value)
  }
  send(Reply.Defect, id, defectInfo(Cause.squash(exit.cause)))
}

const defectInfo = (u: unknown): DefectInfo => {
  if (u instanceof Error) return { name: u.name, message: u.message, stack: u.stack }
  return { name: "Error", message: String(u), stack: undefined }
}
