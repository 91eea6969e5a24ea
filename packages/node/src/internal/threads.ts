/**
 * The thread set behind `NodeWorkerPool`: from `min` to `max` worker threads, each running at most one job, and
 * the small message protocol they speak. Plain callbacks, no fibers: the pool's job effects drive it, and it is
 * the boundary with Node's `Worker` API, so its two timers (startup and idle) are Node timers, unref'ed.
 *
 * Protocol (structured clone over the worker's port, arrays for speed):
 * - main → thread: first `[0, "", wakeBuffer]` (a SharedArrayBuffer: see `Wake`), then `[id, task, input]`,
 *   each followed by a wake-up of the thread through that buffer
 * - thread → main: `[Ready, servedTaskNames]` once the handler module has loaded, then one reply per request:
 *   `[Success, id, output]`, `[Failure, id, encodedError]`, `[Defect, id, { name, message, stack }]` or
 *   `[Rejected, id, RejectedInfo]` (the values did not match the task's Schemas, or the task is not served).
 *
 * Invariants:
 * - `live` counts the threads started and neither exited nor being terminated; `min <= live <= max` once
 *   started, except after a start failure (not replaced, so that a broken file cannot respawn in a loop: the next
 *   job that needs a thread starts one and fails with it).
 * - every thread in `idle` has no listener; `busy` is the number of live threads with one.
 * - a thread that is not ready within `startupTimeoutMillis` is terminated, and the job waiting on it (if any) is
 *   told, so no job and no startup waits unbounded on a thread.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Result from "effect/Result"
import { isMarkedAsUntransferable, type Transferable, Worker, type WorkerOptions } from "node:worker_threads"

/** @internal */
export const Reply = {
  Ready: 0,
  Success: 1,
  Failure: 2,
  Defect: 3,
  Rejected: 4
} as const

/** @internal */
export type ReplyKind = typeof Reply.Success | typeof Reply.Failure | typeof Reply.Defect | typeof Reply.Rejected

/** @internal */
export type Request = readonly [id: number, task: string, input: unknown]

/**
 * Wake-ups through shared memory. A thread with nothing in flight waits for its next request in `Atomics.wait`
 * on the buffer's counter for up to `waitMillis` (then goes back to its event loop), and takes the request with
 * `receiveMessageOnPort`: a request that arrives meanwhile costs no event-loop turn in the thread. The main
 * thread bumps the counter after each post, and notifies when the thread's `waiting` flag (index 1) is set. Both
 * sides use sequentially consistent atomics: the thread reads the counter before it looks for a message and sets
 * its flag before it waits, so a post between the two makes the wait return at once ("not-equal").
 *
 * @internal
 */
export const Wake = {
  /** The request id of the message that hands the buffer over. */
  initId: 0,
  waitMillis: 50
} as const

/** @internal */
export type Message =
  | readonly [typeof Reply.Ready, served: ReadonlyArray<string>]
  | readonly [ReplyKind, id: number, value: unknown]

/** @internal */
export interface DefectInfo {
  readonly name: string
  readonly message: string
  readonly stack: string | undefined
}

/** Why the thread refused a request: the fields of a `NodeError` reason. @internal */
export type RejectedInfo =
  | { readonly _tag: "InvalidInput"; readonly issue: string }
  | { readonly _tag: "InvalidOutput"; readonly part: "output" | "error"; readonly issue: string }
  | { readonly _tag: "TaskNotServed"; readonly served: ReadonlyArray<string> }

/** Why a ready thread ended without being asked to. @internal */
export type CrashReason = "exited" | "uncaughtException" | "outOfMemory"

/** @internal */
export interface CrashInfo {
  readonly threadId: number
  readonly exitCode: number
  readonly reason: CrashReason
  readonly message: string
}

/** Why a thread never became ready. @internal */
export interface StartFailure {
  readonly worker: string
  readonly threadId: number
  readonly reason: "timedOut" | "exited" | "loadFailed" | "spawnFailed"
  readonly exitCode: number | undefined
  readonly detail: string
}

/** What happened to the thread a job was waiting on. @internal */
export type Loss =
  | { readonly _tag: "Crashed"; readonly info: CrashInfo }
  | { readonly _tag: "StartFailed"; readonly info: StartFailure }

/** What a job waiting on a thread is told. @internal */
export interface Listener {
  readonly id: number
  readonly onReply: (kind: ReplyKind, value: unknown) => void
  readonly onLost: (loss: Loss) => void
}

/** @internal */
export interface ThreadSetOptions {
  readonly url: URL | string
  readonly min: number
  readonly max: number
  /** How long a thread above `min` may stay idle before it is ended. */
  readonly idleTimeoutMillis: number
  readonly startupTimeoutMillis: number
  readonly worker: WorkerOptions
}

type Timer = ReturnType<typeof setTimeout>

/** @internal */
export class Thread {
  readonly worker: Worker
  readonly threadId: number
  ready = false
  /** The task names the worker file serves, once ready. */
  served: ReadonlySet<string> | undefined = undefined
  /** The job running here, if any. */
  listener: Listener | undefined = undefined
  /** The last `error` event: an uncaught exception or an out-of-memory error, reported with the exit. */
  error: Error | undefined = undefined
  /** Set when the pool terminates the thread itself (preemption, idle, startup timeout, close): no crash. */
  killed = false
  exited = false
  exitWaiters: Array<() => void> = []
  startTimer: Timer | undefined = undefined
  /** `performance.now()` when the thread last became idle. */
  idleSince = 0
  /** `[counter, waiting]`: see `Wake`. */
  readonly wake = new Int32Array(new SharedArrayBuffer(8))
  constructor(worker: Worker) {
    this.worker = worker
    this.threadId = worker.threadId
    worker.postMessage([Wake.initId, "", this.wake.buffer] satisfies Request)
  }
  post(request: Request, transfer: ReadonlyArray<Transferable> | undefined): void {
    if (transfer === undefined || transfer.length === 0) this.worker.postMessage(request)
    else this.worker.postMessage(request, transfer)
    Atomics.add(this.wake, 0, 1)
    // notifying costs a system call: only when the thread is (about to be) waiting
    if (Atomics.load(this.wake, 1) === 1) Atomics.notify(this.wake, 0)
  }
}

/**
 * From `min` to `max` threads. Invariant kept by the callers (a core pool whose concurrency is `max`, one thread
 * per running job): when a job asks for a thread, one is idle or a slot is free to start one. A thread killed by
 * the pool (preemption) or crashed after it was ready is replaced at once, so that the next job never waits
 * behind it; one that fails to start is not.
 *
 * @internal
 */
export class ThreadSet {
  readonly options: ThreadSetOptions
  readonly workerName: string
  /** Every thread started and not yet exited, the ones being terminated included. */
  readonly all = new Set<Thread>()
  live = 0
  /** Idle threads, the most recently used last (taken first), so that the surplus ages at the front. */
  readonly idle: Array<Thread> = []
  busy = 0
  closed = false
  respawned = 0
  /** The first start failure: startup reports it. */
  startFailure: StartFailure | undefined = undefined
  readyWaiters: Array<() => void> = []
  sweepTimer: Timer | undefined = undefined

  constructor(options: ThreadSetOptions) {
    this.options = options
    this.workerName = options.url instanceof URL ? options.url.href : options.url
  }

  /** Starts a thread, idle; or records why Node refused to. */
  spawn(): Thread | StartFailure {
    // `new Worker` throws synchronously for options Node rejects
    const created = Result.try(() => new Worker(this.options.url, this.options.worker))
    if (Result.isFailure(created)) {
      const error = created.failure
      const failure: StartFailure = {
        worker: this.workerName,
        threadId: -1,
        reason: "spawnFailed",
        exitCode: undefined,
        detail: `Node refused to start it: ${error instanceof Error ? error.message : String(error)}`
      }
      this.startFailure ??= failure
      this.notifyReady()
      return failure
    }
    const worker = created.success
    const thread = new Thread(worker)
    this.all.add(thread)
    this.live++
    thread.idleSince = performance.now()
    this.idle.push(thread)
    worker.on("message", (message: Message) => this.onMessage(thread, message))
    worker.on("error", (error) => {
      thread.error = error
    })
    worker.on("exit", (code) => this.onExit(thread, code))
    thread.startTimer = setTimeout(() => this.onStartTimeout(thread), this.options.startupTimeoutMillis)
    thread.startTimer.unref()
    return thread
  }

  /** Starts threads until `min` are live; used at startup. */
  fill(): void {
    while (this.live < this.options.min && this.startFailure === undefined) this.spawn()
  }

  /**
   * Takes an idle thread (ready or still starting: a request posted meanwhile waits in its port), or starts one
   * below `max`. `undefined` when closed or at `max` (a broken caller invariant); a `StartFailure` when Node
   * refused to start a thread.
   */
  acquire(listener: Listener): Thread | StartFailure | undefined {
    // prefer a ready thread: a replacement still loading the worker file would make the job wait for it
    const idle = this.idle
    let thread: Thread | undefined = undefined
    const last = idle.length - 1
    if (last >= 0 && idle[last].ready) {
      thread = idle.pop()!
    } else {
      for (let i = last - 1; i >= 0; i--) {
        if (idle[i].ready) {
          thread = idle[i]
          idle.splice(i, 1)
          break
        }
      }
      // a thread still starting: below `max`, another one could start in parallel, but it would be no sooner
      thread ??= idle.pop()
    }
    if (thread === undefined) {
      if (this.closed || this.live >= this.options.max) return undefined
      const spawned = this.spawn()
      if (!(spawned instanceof Thread)) return spawned
      thread = idle.pop()!
    }
    thread.listener = listener
    this.busy++
    return thread
  }

  /** Gives a thread back after its reply. */
  release(thread: Thread): void {
    thread.listener = undefined
    this.busy--
    if (thread.exited || thread.killed) return
    thread.idleSince = performance.now()
    this.idle.push(thread)
    if (this.live > this.options.min) this.scheduleSweep(this.options.idleTimeoutMillis)
  }

  /**
   * Terminates a thread (its job was interrupted, or the pool closes), replaces it unless the set is closed,
   * and calls `onExit` once the thread has stopped.
   */
  kill(thread: Thread, onExit: () => void): void {
    if (thread.exited) return onExit()
    thread.exitWaiters.push(onExit)
    if (thread.killed) return
    this.terminate(thread)
    if (!this.closed) {
      this.spawn()
      this.respawned++
    }
  }

  /** Terminates every thread; `onDone` once all have exited. */
  close(onDone: () => void): void {
    this.closed = true
    if (this.sweepTimer !== undefined) clearTimeout(this.sweepTimer)
    this.sweepTimer = undefined
    const threads = [...this.all]
    let remaining = threads.length
    if (remaining === 0) return onDone()
    const one = () => {
      if (--remaining === 0) onDone()
    }
    for (const thread of threads) this.kill(thread, one)
  }

  /** Calls `onReady` once every live thread is ready, or when one failed to start. */
  whenReady(onReady: () => void): void {
    if (this.startFailure !== undefined || this.readyCount() >= this.live) return onReady()
    this.readyWaiters.push(onReady)
  }

  onMessage(thread: Thread, message: Message): void {
    if (message[0] === Reply.Ready) {
      if (thread.killed) return
      thread.ready = true
      thread.served = new Set(message[1])
      clearTimeout(thread.startTimer)
      thread.startTimer = undefined
      if (thread.listener === undefined) {
        thread.idleSince = performance.now()
        if (this.live > this.options.min) this.scheduleSweep(this.options.idleTimeoutMillis)
      }
      this.notifyReady()
      return
    }
    const listener = thread.listener
    // a reply for a job that was interrupted meanwhile is dropped with the thread
    if (listener === undefined || listener.id !== message[1]) return
    listener.onReply(message[0], message[2])
  }

  onStartTimeout(thread: Thread): void {
    thread.startTimer = undefined
    if (thread.ready || thread.killed || thread.exited) return
    const millis = this.options.startupTimeoutMillis
    const failure: StartFailure = {
      worker: this.workerName,
      threadId: thread.threadId,
      reason: "timedOut",
      exitCode: undefined,
      detail: `it did not call NodeThreadRunner.serve within ${millis} ms (is it a worker file, and is the ` +
        `Effect returned by serve run, e.g. with Effect.runFork?)`
    }
    const listener = thread.listener
    this.terminate(thread)
    this.startFailure ??= failure
    this.notifyReady()
    listener?.onLost({ _tag: "StartFailed", info: failure })
  }

  onExit(thread: Thread, code: number): void {
    thread.exited = true
    this.all.delete(thread)
    if (thread.startTimer !== undefined) clearTimeout(thread.startTimer)
    const listener = thread.listener
    if (!thread.killed) {
      this.detach(thread)
      if (thread.ready) {
        // replace first, so that the job failing below is followed by a job that finds a thread
        if (!this.closed) {
          this.spawn()
          this.respawned++
        }
        listener?.onLost({ _tag: "Crashed", info: crashInfo(thread, code) })
      } else {
        const failure = startFailure(this.workerName, thread, code)
        this.startFailure ??= failure
        this.notifyReady()
        listener?.onLost({ _tag: "StartFailed", info: failure })
      }
    }
    const waiters = thread.exitWaiters
    thread.exitWaiters = []
    for (const waiter of waiters) waiter()
  }

  // ---- helpers ----

  readyCount(): number {
    let n = 0
    for (const thread of this.all) if (thread.ready && !thread.killed) n++
    return n
  }

  /** Takes a thread out of the counts: no longer live, idle or busy. */
  detach(thread: Thread): void {
    this.live--
    if (thread.listener !== undefined) {
      thread.listener = undefined
      this.busy--
    } else {
      const index = this.idle.indexOf(thread)
      if (index >= 0) this.idle.splice(index, 1)
    }
  }

  /** Ends a thread the pool no longer wants; its exit is no crash. */
  terminate(thread: Thread): void {
    thread.killed = true
    if (thread.startTimer !== undefined) clearTimeout(thread.startTimer)
    thread.startTimer = undefined
    this.detach(thread)
    void thread.worker.terminate()
  }

  scheduleSweep(afterMillis: number): void {
    if (this.sweepTimer !== undefined || this.closed) return
    this.sweepTimer = setTimeout(() => this.sweep(), Math.max(1, Math.ceil(afterMillis)))
    this.sweepTimer.unref()
  }

  /** Ends the threads above `min` that have been idle for `idleTimeoutMillis`, the longest idle first. */
  sweep(): void {
    this.sweepTimer = undefined
    const now = performance.now()
    const timeout = this.options.idleTimeoutMillis
    let next = Number.POSITIVE_INFINITY
    let i = 0
    while (i < this.idle.length && this.live > this.options.min) {
      const thread = this.idle[i]
      if (thread.ready && now - thread.idleSince >= timeout) {
        this.terminate(thread)
      } else {
        if (thread.ready) next = Math.min(next, thread.idleSince + timeout - now)
        i++
      }
    }
    if (this.live > this.options.min && next !== Number.POSITIVE_INFINITY) this.scheduleSweep(next)
  }

  notifyReady(): void {
    if (this.readyWaiters.length === 0) return
    const waiters = this.readyWaiters
    this.readyWaiters = []
    for (const waiter of waiters) waiter()
  }
}

const startFailure = (worker: string, thread: Thread, exitCode: number): StartFailure => {
  const error = thread.error
  return error === undefined
    ? {
      worker,
      threadId: thread.threadId,
      reason: "exited",
      exitCode,
      detail: `it exited with code ${exitCode} before calling NodeThreadRunner.serve`
    }
    : {
      worker,
      threadId: thread.threadId,
      reason: "loadFailed",
      exitCode,
      detail: `it failed to load: ${error.name}: ${error.message}`
    }
}

const crashInfo = (thread: Thread, exitCode: number): CrashInfo => {
  const error = thread.error as (Error & { code?: unknown }) | undefined
  if (error !== undefined && error.code === "ERR_WORKER_OUT_OF_MEMORY") {
    return { threadId: thread.threadId, exitCode, reason: "outOfMemory", message: error.message }
  }
  if (error !== undefined) {
    return { threadId: thread.threadId, exitCode, reason: "uncaughtException", message: error.message }
  }
  return { threadId: thread.threadId, exitCode, reason: "exited", message: `The thread exited with code ${exitCode}` }
}

/** The text of a Schema failure. @internal */
export const issueOf = (cause: Cause.Cause<unknown>): string => {
  const error = Cause.squash(cause)
  return error instanceof Error ? error.message : String(error)
}

/**
 * The `ArrayBuffer`s reachable from an encoded value through arrays, plain objects and typed-array views,
 * each once, skipping the ones Node marks untransferable (its pooled `Buffer` slabs).
 *
 * @internal
 */
export const collectTransferables = (value: unknown): Array<Transferable> => {
  const found = new Set<ArrayBuffer>()
  const visit = (u: unknown, depth: number): void => {
    if (typeof u !== "object" || u === null || depth > 64) return
    if (u instanceof ArrayBuffer) {
      if (!isMarkedAsUntransferable(u)) found.add(u)
    } else if (ArrayBuffer.isView(u)) {
      const buffer = u.buffer
      if (buffer instanceof ArrayBuffer && !isMarkedAsUntransferable(buffer)) found.add(buffer)
    } else if (Array.isArray(u)) {
      for (const item of u) visit(item, depth + 1)
    } else {
      const proto = Object.getPrototypeOf(u)
      if (proto === Object.prototype || proto === null) {
        for (const key in u) visit((u as Record<string, unknown>)[key], depth + 1)
      }
    }
  }
  visit(value, 0)
  return [...found]
}
