/**
 * The thread set behind `NodeWorkerPool`: `size` worker threads, each running at most one job, and the small
 * message protocol they speak. Plain callbacks, no fibers: the pool's job effects drive it.
 *
 * Protocol (structured clone over the worker's port, arrays for speed):
 * - main → thread: `[id, task, encodedInput]`
 * - thread → main: `[Ready]` once the handler module has loaded, then one reply per request:
 *   `[Success, id, encodedOutput]`, `[Failure, id, encodedError]` or `[Defect, id, { name, message, stack }]`.
 *
 * @internal
 */
import { isMarkedAsUntransferable, type Transferable, Worker, type WorkerOptions } from "node:worker_threads"

/** @internal */
export const Reply = {
  Ready: 0,
  Success: 1,
  Failure: 2,
  Defect: 3
} as const

/** @internal */
export type ReplyKind = typeof Reply.Success | typeof Reply.Failure | typeof Reply.Defect

/** @internal */
export type Request = readonly [id: number, task: string, input: unknown]

/** @internal */
export type Message =
  | readonly [typeof Reply.Ready]
  | readonly [ReplyKind, id: number, value: unknown]

/** @internal */
export interface DefectInfo {
  readonly name: string
  readonly message: string
  readonly stack: string | undefined
}

/** Why a thread ended without being asked to. @internal */
export type CrashReason = "exited" | "uncaughtException" | "outOfMemory" | "startFailed"

/** @internal */
export interface CrashInfo {
  readonly threadId: number
  readonly exitCode: number
  readonly reason: CrashReason
  readonly message: string
}

/** What a job waiting on a thread is told. @internal */
export interface Listener {
  readonly id: number
  readonly onReply: (kind: ReplyKind, value: unknown) => void
  readonly onCrash: (info: CrashInfo) => void
}

/** @internal */
export interface ThreadSetOptions {
  readonly url: URL | string
  readonly size: number
  readonly worker: WorkerOptions
  /** Called after every change of the busy / idle counts, and with `respawned` after each replacement. */
  readonly onChange: (busy: number, idle: number, respawned: boolean) => void
}

/** @internal */
export class Thread {
  readonly worker: Worker
  readonly threadId: number
  ready = false
  /** The job running here, if any. */
  listener: Listener | undefined = undefined
  /** The last `error` event: an uncaught exception or an out-of-memory error, reported with the exit. */
  error: Error | undefined = undefined
  /** Set when the pool terminates the thread itself (preemption, close): its exit is no crash. */
  killed = false
  exited = false
  exitWaiters: Array<() => void> = []
  constructor(worker: Worker) {
    this.worker = worker
    this.threadId = worker.threadId
  }
  post(request: Request, transfer: ReadonlyArray<Transferable> | undefined): void {
    if (transfer === undefined || transfer.length === 0) this.worker.postMessage(request)
    else this.worker.postMessage(request, transfer)
  }
}

/**
 * `size` threads. Invariant kept by the callers (a core pool whose concurrency is `size`, one thread per
 * running job): when a job asks for a thread, one is idle or a slot is free to start one. A thread killed by
 * the pool or crashed after it was ready is replaced at once, so that the next job never waits behind it; a
 * thread that dies before it is ready (a broken worker file) is not, so a broken file cannot respawn in a loop:
 * the next job that needs the slot starts a thread again, and fails with it.
 *
 * @internal
 */
export class ThreadSet {
  readonly options: ThreadSetOptions
  /** Every thread started and not yet exited, the ones being terminated included. */
  readonly all = new Set<Thread>()
  /** Threads counted against `size`: started, not exited, not being terminated. */
  live = 0
  readonly idle: Array<Thread> = []
  busy = 0
  closed = false
  respawned = 0
  /** The first thread that died before it was ready: startup reports it. */
  startFailure: CrashInfo | undefined = undefined
  readyWaiters: Array<() => void> = []

  constructor(options: ThreadSetOptions) {
    this.options = options
  }

  spawn(): Thread {
    const worker = new Worker(this.options.url, this.options.worker)
    const thread = new Thread(worker)
    this.all.add(thread)
    this.live++
    this.idle.push(thread)
    worker.on("message", (message: Message) => this.onMessage(thread, message))
    worker.on("error", (error) => {
      thread.error = error
    })
    worker.on("exit", (code) => this.onExit(thread, code))
    return thread
  }

  /** Starts threads until `size` are live; used at startup. */
  fill(): void {
    while (this.live < this.options.size) this.spawn()
    this.changed(false)
  }

  get readyCount(): number {
    let n = 0
    for (const thread of this.all) if (thread.ready && !thread.killed) n++
    return n
  }

  /** Takes an idle thread (ready or still starting: requests posted meanwhile wait in its port). */
  acquire(listener: Listener): Thread | undefined {
    // prefer a ready thread: a replacement still loading the worker file would make the job wait for it
    let thread: Thread | undefined = undefined
    for (let i = this.idle.length - 1; i >= 0; i--) {
      if (this.idle[i].ready) {
        thread = this.idle[i]
        this.idle.splice(i, 1)
        break
      }
    }
    thread ??= this.idle.pop()
    if (thread === undefined) {
      if (this.closed || this.live >= this.options.size) return undefined
      this.spawn()
      thread = this.idle.pop()!
    }
    thread.listener = listener
    this.busy++
    this.changed(false)
    return thread
  }

  /** Gives a thread back after its reply. */
  release(thread: Thread): void {
    thread.listener = undefined
    this.busy--
    if (thread.exited || thread.killed) return
    this.idle.push(thread)
    this.changed(false)
  }

  /**
   * Terminates a thread (its job was interrupted, or the pool closes), replaces it unless the set is closed,
   * and calls `onExit` once the thread has stopped.
   */
  kill(thread: Thread, onExit: () => void): void {
    if (thread.listener !== undefined) {
      thread.listener = undefined
      this.busy--
    }
    if (thread.exited) return onExit()
    thread.exitWaiters.push(onExit)
    if (thread.killed) return
    thread.killed = true
    this.live--
    const index = this.idle.indexOf(thread)
    if (index >= 0) this.idle.splice(index, 1)
    if (!this.closed) {
      this.spawn()
      this.respawned++
      this.changed(true)
    } else {
      this.changed(false)
    }
    void thread.worker.terminate()
  }

  /** Terminates every thread; `onDone` once all have exited. */
  close(onDone: () => void): void {
    this.closed = true
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
    if (this.readyCount >= this.live) return onReady()
    this.readyWaiters.push(onReady)
  }

  onMessage(thread: Thread, message: Message): void {
    if (message[0] === Reply.Ready) {
      thread.ready = true
      this.notifyReady()
      return
    }
    const listener = thread.listener
    // a reply for a job that was interrupted meanwhile is dropped with the thread
    if (listener === undefined || listener.id !== message[1]) return
    listener.onReply(message[0], message[2])
  }

  onExit(thread: Thread, code: number): void {
    thread.exited = true
    this.all.delete(thread)
    const wasKilled = thread.killed
    if (!wasKilled) {
      this.live--
      const index = this.idle.indexOf(thread)
      if (index >= 0) this.idle.splice(index, 1)
    }
    const listener = thread.listener
    if (listener !== undefined) {
      thread.listener = undefined
      this.busy--
    }
    if (!wasKilled) {
      // replace first, so that the job failing below is followed by a job that finds a thread
      const replace = thread.ready && !this.closed
      if (replace) {
        this.spawn()
        this.respawned++
      }
      this.changed(replace)
      const info = crashInfo(thread, code)
      if (!thread.ready) {
        this.startFailure ??= info
        this.notifyReady()
      }
      listener?.onCrash(info)
    }
    const waiters = thread.exitWaiters
    thread.exitWaiters = []
    for (const waiter of waiters) waiter()
  }

  notifyReady(): void {
    if (this.readyWaiters.length === 0) return
    const waiters = this.readyWaiters
    this.readyWaiters = []
    for (const waiter of waiters) waiter()
  }

  changed(respawned: boolean): void {
    this.options.onChange(this.busy, this.live - this.busy, respawned)
  }
}

const crashInfo = (thread: Thread, exitCode: number): CrashInfo => {
  const error = thread.error as (Error & { code?: unknown }) | undefined
  if (error !== undefined && error.code === "ERR_WORKER_OUT_OF_MEMORY") {
    return { threadId: thread.threadId, exitCode, reason: "outOfMemory", message: error.message }
  }
  if (!thread.ready) {
    return {
      threadId: thread.threadId,
      exitCode,
      reason: "startFailed",
      message: error === undefined
        ? `The thread exited with code ${exitCode} before it was ready`
        : `The thread failed to start: ${error.message}`
    }
  }
  if (error !== undefined) {
    return { threadId: thread.threadId, exitCode, reason: "uncaughtException", message: error.message }
  }
  return { threadId: thread.threadId, exitCode, reason: "exited", message: `The thread exited with code ${exitCode}` }
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
