/**
 * The thread set behind `NodeWorkerPool`: from `min` to `max` worker threads, and the small message protocol they
 * speak. Plain callbacks, no fibers: the pool's job effects drive it, and it is the boundary with Node's `Worker`
 * API, so its two timers (startup and idle) are Node timers, unref'ed.
 *
 * Protocol (structured clone over the worker's port, flat arrays for speed):
 * - main → thread: first `[0, "", sharedBuffer, performance.timeOrigin]` (see `Shared`), then batches of requests,
 *   four items each: `id, task, input, seq` (`seq` counts the thread's requests from 1). A request to an idle
 *   thread goes at once; the ones for a busy thread are sent together at the end of the current turn of the event
 *   loop (`ThreadSet.flush`), each message followed by one wake-up of the thread through the buffer.
 * - thread → main: `[Ready]` once the handler module has loaded, then batches of replies, three items each:
 *   `Success, id, output`, `Failure, id, encodedError`, `Defect, id, { name, message, stack }` or
 *   `Rejected, id, RejectedInfo` (the values did not match the task's Schemas, or the task is not served). A
 *   thread answers the requests of one message together, holding a reply for `Batch.holdMillis` of work at most.
 *
 * Dispatch: a job goes to an idle thread; else (elastic) to a new thread below `max`; else, while the recent
 * tasks are short (see `Prefetch`), it is posted to a busy thread behind its running task, so that the thread
 * finds its next request in its port when it replies instead of waiting a round trip; else it waits in `waiting`
 * for the first thread that frees up. A thread runs its requests one at a time, in order. A request posted behind
 * another one can be taken back before it starts (the `Shared` cells): when its job is interrupted, when its thread
 * crashes or is preempted, or when another thread goes idle with nothing to do (it moves there).
 *
 * Invariants:
 * - `live` counts the threads started and neither exited nor being terminated; `min <= live <= max` once
 *   started, except after a start failure (not replaced, so that a broken file cannot respawn in a loop: the next
 *   job that needs a thread starts one and fails with it).
 * - every thread in `idle` has no listener; `busy` is the number of live threads with one; a thread has at most
 *   `depth` listeners, and only a ready thread has more than one.
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

/** Main → thread: requests, four items each: `id, task, input, seq`. @internal */
export type Request = ReadonlyArray<unknown>

/**
 * The `Int32Array` over a SharedArrayBuffer that each thread shares with the main thread.
 *
 * - `counter`, `waiting`: wake-ups. A thread with nothing in flight waits for its next request on `counter` for up
 *   to `Wake.waitMillis` (then goes back to its event loop): it may poll the counter briefly (see `Spin`), then blocks in
 *   `Atomics.wait`, and takes the request with `receiveMessageOnPort`: a request that arrives meanwhile costs no
 *   event-loop turn in the thread. The main thread bumps the counter after each post, and notifies when the
 *   thread's `waiting` flag is set (not while it polls). Both sides use sequentially consistent atomics: the thread
 *   reads the counter before it looks for a message and sets its flag before it waits, so a post between the two
 *   makes the wait return at once ("not-equal").
 * - `consumed`, `done`: the `seq` of the last request the thread took from its port (ran or skipped), and of the
 *   last one it answered.
 * - `cells`: one cell per request in flight, at `cells + seq % ring`: `seq` once posted; the thread claims it
 *   with a compare-and-swap to `-seq` before it runs it, and the main thread takes a request back with a
 *   compare-and-swap to `0`; whoever swaps first wins, so a request either runs or is skipped, never both.
 * - after the `Int32`s, two `Float64`s (`Times`, not atomic: heuristics only): when the thread started its
 *   current request, on the main thread's `performance.now()` clock (the init message carries the main thread's
 *   `performance.timeOrigin`), and how long its last request ran, in milliseconds.
 *
 * @internal
 */
export const Shared = {
  counter: 0,
  waiting: 1,
  consumed: 2,
  done: 3,
  cells: 4,
  ring: 32,
  length: 36,
  bytes: 160
} as const

/** @internal */
export const Times = {
  started: 0,
  lastMillis: 1,
  /** The byte offset of the Float64s. */
  offset: 144
} as const

/** How long a thread may hold the replies of a batch of requests while it runs the next ones. @internal */
export const Batch = {
  holdMillis: 0.2
} as const

/** @internal */
export const Wake = {
  /** The request id of the message that hands the buffer over. */
  initId: 0,
  waitMillis: 50
} as const

/**
 * How an idle thread polls for its next request before it blocks in `Atomics.wait` (see `spin` and `SpinPolicy`).
 *
 * - `millis`: the longest poll. A blocked thread costs two system calls per request, the main thread's
 *   `Atomics.notify` and the thread's wait, and its wake-up latency: up to tens of µs each when the thread sleeps on
 *   another, idle core (an inter-processor interrupt, a virtual CPU to resume). A one-at-a-time round trip's next
 *   request comes one wake-up of the main thread and one pass through the core job later: about 10–30 µs.
 * - `preemptedMillis`: a gap this long between two polls means the thread was descheduled while it polled: its core
 *   is shared (with the main thread, perhaps), so polling takes CPU time from the thread it waits for.
 * - `maxBackoff`: after a poll that did not pay (nothing came, or the thread was descheduled), the next idle periods
 *   block at once whatever their wake-ups: 1, then 2, 4, ... up to this many, so that an idle pool or a busy machine
 *   pays a poll rarely.
 * - `slowWakeMillis`, `maxGapMillis`, `pollPeriods`: a thread blocks at once by default; an idle period that blocked
 *   and ended with a request more than `slowWakeMillis` after it began (but within `maxGapMillis`: a longer gap is
 *   the caller's) shows a costly wake-up, and the next `pollPeriods` periods poll (see `SpinPolicy`).
 *
 * @internal
 */
export const Spin = {
  millis: 0.05,
  preemptedMillis: 0.01,
  maxBackoff: 256,
  slowWakeMillis: 0.04,
  maxGapMillis: 1,
  pollPeriods: 64
} as const

/** @internal */
export type SpinResult = "caught" | "missed" | "preempted"

// `Atomics.pause` (Node 24): a CPU hint while polling; Node 22 has none
const pause: () => void = (Atomics as { readonly pause?: () => void }).pause ?? (() => {})

/**
 * Polls `shared[Shared.counter]` until it differs from `seen` (`"caught"`: a request was posted), for `millis` at
 * most (`"missed"`), or until a gap between two polls shows that the thread was descheduled (`"preempted"`: a
 * request may have been posted meanwhile, by a main thread that ran on this core while this one could not, so the
 * caller looks again).
 *
 * @internal
 */
export const spin = (
  shared: Int32Array,
  seen: number,
  millis: number,
  now: () => number = () => performance.now()
): SpinResult => {
  let last = now()
  const end = last + millis
  while (true) {
    // the gap first: a request found after a deschedule was posted by a main thread that ran meanwhile, perhaps on
    // this core, so it does not show that polling pays
    const time = now()
    if (time - last >= Spin.preemptedMillis) return "preempted"
    if (Atomics.load(shared, Shared.counter) !== seen) return "caught"
    if (time >= end) return "missed"
    last = time
    pause()
  }
}

/**
 * Whether an idle thread polls before it blocks.
 *
 * A thread blocks at once by default: when the kernel runs it on the main thread's core, a round trip is two context
 * switches there, and a poll would only hold the core the main thread needs. When it runs on another core, each
 * wake-up is an inter-processor interrupt, slow: an idle period that blocked and still took over
 * `Spin.slowWakeMillis` to end with a request makes the next `Spin.pollPeriods` periods poll, and then one blocks
 * again, which both measures the wake-up again and lets the kernel move the thread (a polling thread keeps its core
 * busy, so the kernel keeps it there).
 *
 * A poll that does not pay (nothing came, or the thread was descheduled: its core is shared after all) ends the
 * polling at once, and the next `backoff` periods block whatever their wake-ups, `backoff` doubling up to
 * `Spin.maxBackoff`; a poll that catches a request halves it.
 *
 * @internal
 */
export class SpinPolicy {
  /** Idle periods left that poll; at 0 they block at once, and measure the wake-up. */
  pollFor = 0
  /** Idle periods left that block at once whatever their wake-ups, after a poll that did not pay. */
  skip = 0
  backoff = 1
  /** Whether this idle period polls. */
  polls(): boolean {
    if (this.skip > 0) {
      this.skip--
      return false
    }
    if (this.pollFor === 0) return false
    this.pollFor--
    return true
  }
  record(result: SpinResult): void {
    if (result === "caught") {
      this.backoff = Math.max(1, this.backoff / 2)
      return
    }
    this.pollFor = 0
    this.skip = this.backoff
    this.backoff = Math.min(this.backoff * 2, Spin.maxBackoff)
  }
  /** An idle period that blocked at once ended with a request `millis` after it began. */
  blocked(millis: number): void {
    if (this.skip === 0 && millis > Spin.slowWakeMillis && millis <= Spin.maxGapMillis) {
      this.pollFor = Spin.pollPeriods
    }
  }
}

/**
 * How many requests a thread holds (`depth`, a power of two up to `maxDepth`): as many as fit in `shortMillis` at
 * the average run time of the last requests (an exponential average over ~8, measured by the threads), with a
 * factor 2 of hysteresis; 1 once a request takes about `shortMillis`. Requests are only posted behind one that has
 * run for less than `shortMillis`, so a request waits about that long at most behind the ones of its thread (and
 * moves to a thread that goes idle meanwhile). With `maxDepth` requests in flight and as many taken back and not
 * yet skipped, `seq` never gets `Shared.ring` ahead of the thread.
 *
 * @internal
 */
const Prefetch = {
  maxDepth: 16,
  shortMillis: 1
} as const

/** Thread → main: `[Ready]`, or replies, three items each: `kind, id, value`. @internal */
export type Message = ReadonlyArray<unknown>

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

/** What happened to the request of a job. @internal */
export type Loss =
  | { readonly _tag: "Crashed"; readonly info: CrashInfo }
  | { readonly _tag: "StartFailed"; readonly info: StartFailure }
  | { readonly _tag: "PostFailed"; readonly error: unknown }

/** A job's request, and what its job is told. @internal */
export class Listener {
  readonly id: number
  readonly task: string
  readonly input: unknown
  /** The buffers moved with the input: such a request is never posted behind another one (it could not move). */
  readonly transfer: ReadonlyArray<Transferable> | undefined
  readonly onReply: (kind: ReplyKind, value: unknown) => void
  readonly onLost: (loss: Loss) => void
  /** The thread it was posted to, and its `seq` there. */
  thread: Thread | undefined = undefined
  seq = 0
  constructor(
    id: number,
    task: string,
    input: unknown,
    transfer: ReadonlyArray<Transferable> | undefined,
    onReply: (kind: ReplyKind, value: unknown) => void,
    onLost: (loss: Loss) => void
  ) {
    this.id = id
    this.task = task
    this.input = input
    this.transfer = transfer !== undefined && transfer.length > 0 ? transfer : undefined
    this.onReply = onReply
    this.onLost = onLost
  }
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
  /** The requests posted here and not answered, in order: the first one runs (or is about to). */
  readonly listeners: Array<Listener> = []
  /** The `seq` of the last request posted here. */
  lastSeq = 0
  /** Requests queued this turn (`[id, task, input, seq]` each), and their listeners. */
  outbox: Array<unknown> = []
  unsent: Array<Listener> = []
  dirty = false
  /** The last `error` event: an uncaught exception or an out-of-memory error, reported with the exit. */
  error: Error | undefined = undefined
  /** Set when the pool terminates the thread itself (preemption, idle, startup timeout, close): no crash. */
  killed = false
  /** The request whose job was interrupted while it ran here, which ended the thread. */
  preempted: Listener | undefined = undefined
  exited = false
  exitWaiters: Array<() => void> = []
  startTimer: Timer | undefined = undefined
  /** `performance.now()` when the thread last became idle. */
  idleSince = 0
  /** See `Shared` and `Times`. */
  readonly shared: Int32Array
  readonly times: Float64Array
  constructor(worker: Worker) {
    this.worker = worker
    this.threadId = worker.threadId
    const buffer = new SharedArrayBuffer(Shared.bytes)
    this.shared = new Int32Array(buffer, 0, Shared.length)
    this.times = new Float64Array(buffer, Times.offset, 2)
    worker.postMessage([Wake.initId, "", buffer, performance.timeOrigin])
  }
  /** Queues a request, sent with the others of this turn of the event loop by `flush`. */
  enqueue(listener: Listener): void {
    const seq = ++this.lastSeq
    listener.seq = seq
    listener.thread = this
    Atomics.store(this.shared, Shared.cells + seq % Shared.ring, seq)
    this.listeners.push(listener)
    this.outbox.push(listener.id, listener.task, listener.input, seq)
    this.unsent.push(listener)
  }
  /**
   * Sends the queued requests in one message and wakes the thread. Returns the requests that could not be sent
   * (a value structured clone cannot copy: each is then tried alone), with the error.
   */
  flush(): Array<[Listener, unknown]> | undefined {
    const message = this.outbox
    const sent = this.unsent
    this.outbox = []
    this.unsent = []
    if (sent.length === 0 || this.killed || this.exited) return undefined
    let transfer: Array<Transferable> | undefined = undefined
    for (const listener of sent) if (listener.transfer !== undefined) (transfer ??= []).push(...listener.transfer)
    const posted = Result.try(() =>
      transfer === undefined ? this.worker.postMessage(message) : this.worker.postMessage(message, transfer)
    )
    let failed: Array<[Listener, unknown]> | undefined = undefined
    if (Result.isFailure(posted)) {
      for (let i = 0; i < sent.length; i++) {
        const listener = sent[i]
        const one = message.slice(i * 4, i * 4 + 4)
        const alone = Result.try(() =>
          listener.transfer === undefined
            ? this.worker.postMessage(one)
            : this.worker.postMessage(one, listener.transfer)
        )
        if (Result.isFailure(alone)) {
          Atomics.store(this.shared, Shared.cells + listener.seq % Shared.ring, 0)
          ;(failed ??= []).push([listener, alone.failure])
        }
      }
    }
    Atomics.add(this.shared, Shared.counter, 1)
    // notifying costs a system call: only when the thread is (about to be) waiting
    if (Atomics.load(this.shared, Shared.waiting) === 1) Atomics.notify(this.shared, Shared.counter)
    return failed
  }
  /** Takes a request back before the thread starts it; false when the thread has claimed it. */
  takeBack(listener: Listener): boolean {
    const seq = listener.seq
    return Atomics.compareExchange(this.shared, Shared.cells + seq % Shared.ring, seq, 0) === seq
  }
  /**
   * Whether the thread can take one more request behind the ones it holds, up to `depth`. Not while requests taken
   * back wait to be skipped (so that `seq` stays less than `Shared.ring` ahead of the thread), and only behind a
   * request of a short task (`isShort`) that has not run for long already.
   */
  acceptsBehind(now: number, depth: number, isShort: (task: string) => boolean): boolean {
    const listeners = this.listeners
    const held = listeners.length
    if (held === 0 || held >= depth || !this.ready || this.killed) return false
    const consumed = Atomics.load(this.shared, Shared.consumed)
    if (this.lastSeq - consumed > held) return false
    return consumed < listeners[0].seq
      ? isShort(listeners[0].task)
      : now - this.times[Times.started] < Prefetch.shortMillis
  }
}

/**
 * From `min` to `max` threads, and the jobs waiting for one. A thread killed by the pool (preemption) or crashed
 * after it was ready is replaced at once, so that the next job never waits behind it; one that fails to start is
 * not.
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
  /** Jobs that found no thread, oldest first. */
  readonly waiting: Array<Listener> = []
  /** The threads with requests to send this turn. */
  dirty: Array<Thread> = []
  busy = 0
  closed = false
  respawned = 0
  /** The first start failure: startup reports it. */
  startFailure: StartFailure | undefined = undefined
  readyWaiters: Array<() => void> = []
  sweepTimer: Timer | undefined = undefined
  /** Requests per thread: see `Prefetch`. */
  depth = 1
  /** The average run time of the last requests, in milliseconds, and per task. */
  averageMillis = Prefetch.shortMillis
  readonly taskMillis = new Map<string, number>()
  /** Told when `depth` changes: the core pool runs `depth × max` jobs at once. */
  onDepth: ((depth: number) => void) | undefined = undefined

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
   * Hands a job's request to a thread (see the dispatch order above), or queues it. `"closed"` when the set is
   * closed; a `StartFailure` when Node refused to start a thread. A failed post is reported to the listener.
   */
  submit(listener: Listener): StartFailure | "closed" | undefined {
    if (this.closed) return "closed"
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
    if (thread === undefined && this.live < this.options.max) {
      const spawned = this.spawn()
      if (!(spawned instanceof Thread)) return spawned
      thread = idle.pop()!
    }
    if (thread !== undefined) {
      this.busy++
      this.post(thread, listener)
      return
    }
    if (this.depth > 1) {
      if (this.fitsBehind(listener)) {
        const now = performance.now()
        for (const busy of this.all) {
          if (busy.acceptsBehind(now, this.depth, this.isShort)) {
            this.post(busy, listener)
            return
          }
        }
      } else {
        // a task not known to be short found no thread: one job per thread again, so that the core pool starts no
        // more jobs than there are threads (a job waiting here counts its wait toward its timeout)
        this.setDepth(1)
      }
    }
    this.waiting.push(listener)
  }

  /**
   * The job of `listener` was interrupted: takes its request back (from the queue, or from its thread if the thread
   * has not started it), or else terminates the thread that runs it (moving the requests behind it elsewhere) and
   * calls `onDone` once the thread has stopped.
   */
  cancel(listener: Listener, onDone: () => void): void {
    const thread = listener.thread
    if (thread === undefined) {
      const index = this.waiting.indexOf(listener)
      if (index >= 0) this.waiting.splice(index, 1)
      return onDone()
    }
    if (thread.exited || !thread.listeners.includes(listener)) return onDone()
    if (thread.takeBack(listener)) {
      this.remove(thread, listener)
      return onDone()
    }
    // it runs: take back the requests behind it, so that terminating the thread loses nothing else
    const listeners = thread.listeners
    const moved: Array<Listener> = []
    let movedOn = false
    for (let i = listeners.indexOf(listener) + 1; i < listeners.length; i++) {
      if (thread.takeBack(listeners[i])) moved.push(listeners[i])
      else movedOn = true
    }
    for (const other of moved) listeners.splice(listeners.indexOf(other), 1)
    if (movedOn || Atomics.load(thread.shared, Shared.done) >= listener.seq) {
      // it has already answered (the reply is on its way): nothing to stop
      this.remove(thread, listener)
      this.resubmit(moved)
      return onDone()
    }
    // the requests before it have run, but the thread may still hold their replies: they run again elsewhere if
    // the thread ends without sending them (see onExit)
    thread.preempted = listener
    this.kill(thread, onDone)
    this.resubmit(moved)
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
      this.serveWaiting()
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
    if (this.allReady()) return onReady()
    this.readyWaiters.push(onReady)
  }

  onMessage(thread: Thread, message: Message): void {
    if (message[0] === Reply.Ready) {
      if (thread.killed) return
      thread.ready = true
      clearTimeout(thread.startTimer)
      thread.startTimer = undefined
      if (thread.listeners.length === 0) {
        thread.idleSince = performance.now()
        if (this.live > this.options.min) this.scheduleSweep(this.options.idleTimeoutMillis)
      }
      this.notifyReady()
      return
    }
    const now = performance.now()
    let last: Listener | undefined = undefined
    for (let i = 0; i < message.length; i += 3) {
      const listeners = thread.listeners
      const id = message[i + 1]
      // a reply for a job that was interrupted meanwhile is dropped
      const index = listeners.length > 0 && listeners[0].id === id ? 0 : listeners.findIndex((l) => l.id === id)
      if (index < 0) continue
      const listener = listeners[index]
      last = listener
      this.remove(thread, listener, now)
      listener.onReply(message[i] as ReplyKind, message[i + 2])
    }
    // the thread's last run time is (about) the last reply's
    if (last !== undefined) this.observe(last.task, thread.times[Times.lastMillis])
    // the replies may have started more jobs (on this thread too); an idle thread takes a request queued behind
    // another thread's running one
    if (thread.listeners.length === 0 && !thread.killed && !thread.exited) this.steal(thread)
    this.updateDepth()
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
    const listeners = thread.listeners.splice(0)
    this.terminate(thread, listeners.length > 0)
    this.startFailure ??= failure
    this.notifyReady()
    for (const listener of listeners) listener.onLost({ _tag: "StartFailed", info: failure })
  }

  onExit(thread: Thread, code: number): void {
    thread.exited = true
    this.all.delete(thread)
    if (thread.startTimer !== undefined) clearTimeout(thread.startTimer)
    if (!thread.killed) {
      const listeners = thread.listeners.splice(0)
      this.detach(thread, listeners.length > 0)
      if (thread.ready) {
        // requests it never started, or answered without sending the reply, go elsewhere; the one it ran fails
        const lost: Array<Listener> = []
        const moved: Array<Listener> = []
        const done = Atomics.load(thread.shared, Shared.done)
        for (const listener of listeners) {
          // moved buffers went with the thread: such a request cannot be sent again
          const again = listener.transfer === undefined && (listener.seq <= done || thread.takeBack(listener))
          ;(again ? moved : lost).push(listener)
        }
        // replace first, so that the job failing below is followed by a job that finds a thread
        if (!this.closed) {
          this.spawn()
          this.respawned++
        }
        this.resubmit(moved)
        this.serveWaiting()
        const info = crashInfo(thread, code)
        for (const listener of lost) listener.onLost({ _tag: "Crashed", info })
      } else {
        const failure = startFailure(this.workerName, thread, code)
        this.startFailure ??= failure
        this.notifyReady()
        for (const listener of listeners) listener.onLost({ _tag: "StartFailed", info: failure })
      }
    } else if (!this.closed) {
      // answered requests whose replies the thread still held when it was ended: their jobs wait on them
      const unanswered = thread.listeners.splice(0).filter((listener) => listener !== thread.preempted)
      this.resubmit(unanswered.filter((listener) => listener.transfer === undefined))
      const info = crashInfo(thread, code)
      for (const listener of unanswered) if (listener.transfer !== undefined) listener.onLost({ _tag: "Crashed", info })
    }
    const waiters = thread.exitWaiters
    thread.exitWaiters = []
    for (const waiter of waiters) waiter()
  }

  // ---- helpers ----

  /**
   * Posts to `thread`, which the caller counted busy: at once to an idle thread (it waits for it); to a busy one at
   * the end of this turn of the event loop, with the others posted meanwhile (it has work until then).
   */
  post(thread: Thread, listener: Listener): void {
    const idle = thread.listeners.length === 0
    thread.enqueue(listener)
    if (idle) return this.flushOne(thread)
    if (thread.dirty) return
    thread.dirty = true
    this.dirty.push(thread)
    if (this.dirty.length === 1) queueMicrotask(this.flush)
  }

  /** Sends what was posted this turn: one message per thread. */
  readonly flush = (): void => {
    const threads = this.dirty
    this.dirty = []
    for (const thread of threads) {
      thread.dirty = false
      this.flushOne(thread)
    }
  }

  flushOne(thread: Thread): void {
    const failed = thread.flush()
    if (failed === undefined) return
    for (const [listener, error] of failed) {
      this.remove(thread, listener)
      listener.onLost({ _tag: "PostFailed", error })
    }
  }

  /** Takes an answered or taken-back request off its thread; an emptied thread serves the queue or goes idle. */
  remove(thread: Thread, listener: Listener, now = performance.now()): void {
    const listeners = thread.listeners
    const index = listeners.indexOf(listener)
    if (index < 0) return
    listeners.splice(index, 1)
    if (thread.killed || thread.exited) return
    if (listeners.length === 0) {
      this.busy--
      this.toIdle(thread, now)
    } else if (this.waiting.length > 0 && thread.acceptsBehind(now, this.depth, this.isShort)) {
      this.postWaiting(thread)
    }
  }

  /** A thread with no request: the oldest waiting job, or the idle list. */
  toIdle(thread: Thread, now: number): void {
    if (this.waiting.length > 0) {
      this.busy++
      this.post(thread, this.waiting.shift()!)
      return
    }
    thread.idleSince = now
    this.idle.push(thread)
    if (this.live > this.options.min) this.scheduleSweep(this.options.idleTimeoutMillis)
  }

  /** Posts the oldest waiting job that may go behind others to `thread`; false when there is none. */
  postWaiting(thread: Thread): boolean {
    const index = this.waiting.findIndex(this.fitsBehind)
    if (index < 0) return false
    this.post(thread, this.waiting.splice(index, 1)[0])
    return true
  }

  /** Hands waiting jobs to idle threads (after a thread was replaced). */
  serveWaiting(): void {
    while (this.waiting.length > 0 && this.idle.length > 0) {
      this.busy++
      this.post(this.idle.pop()!, this.waiting.shift()!)
    }
  }

  /** Requests taken back from a thread: dispatched again, ahead of the jobs that came later. */
  resubmit(listeners: ReadonlyArray<Listener>): void {
    for (let i = listeners.length - 1; i >= 0; i--) {
      const listener = listeners[i]
      listener.thread = undefined
      this.waiting.unshift(listener)
    }
    if (this.closed) return
    this.serveWaiting()
    const now = performance.now()
    for (const thread of this.all) {
      if (this.waiting.length === 0 || this.depth === 1) break
      while (this.waiting.length > 0 && thread.acceptsBehind(now, this.depth, this.isShort)) {
        if (!this.postWaiting(thread)) break
      }
    }
  }

  /** An idle `thread` takes over a request waiting behind another thread's running one. */
  steal(thread: Thread): void {
    const index = this.idle.lastIndexOf(thread)
    if (index < 0) return
    for (const other of this.all) {
      const listeners = other.listeners
      if (other === thread || listeners.length < 2 || other.killed) continue
      const last = listeners[listeners.length - 1]
      if (!other.takeBack(last)) continue
      listeners.pop()
      this.idle.splice(index, 1)
      this.busy++
      this.post(thread, last)
      return
    }
  }

  /**
   * Records how long a request of `task` ran, in the pool's average and the task's; capped, so that one pause (a
   * GC) does not end prefetching for long.
   */
  observe(task: string, millis: number): void {
    const sample = Math.min(millis, 8 * Prefetch.shortMillis)
    this.averageMillis += (sample - this.averageMillis) / 8
    const average = this.taskMillis.get(task)
    this.taskMillis.set(task, average === undefined ? sample : average + (sample - average) / 8)
  }

  /** Whether the recent requests of `task` ran for less than `Prefetch.shortMillis` on average. */
  readonly isShort = (task: string): boolean =>
    (this.taskMillis.get(task) ?? Prefetch.shortMillis) < Prefetch.shortMillis

  /** Whether a request may wait behind others: a short task, without buffers to move (it could not move again). */
  readonly fitsBehind = (listener: Listener): boolean => listener.transfer === undefined && this.isShort(listener.task)

  updateDepth(): void {
    const average = this.averageMillis
    let depth = this.depth
    while (depth < Prefetch.maxDepth && average * depth * 4 <= Prefetch.shortMillis) depth *= 2
    while (depth > 1 && average * depth > Prefetch.shortMillis) depth /= 2
    this.setDepth(depth)
  }

  setDepth(depth: number): void {
    if (depth === this.depth || this.closed) return
    this.depth = depth
    this.onDepth?.(depth)
  }

  allReady(): boolean {
    if (this.startFailure !== undefined) return true
    for (const thread of this.all) if (!thread.ready && !thread.killed) return false
    return true
  }

  /** Takes a thread out of the counts: no longer live, idle or busy. */
  detach(thread: Thread, busy: boolean): void {
    this.live--
    if (busy) {
      this.busy--
    } else {
      const index = this.idle.indexOf(thread)
      if (index >= 0) this.idle.splice(index, 1)
    }
  }

  /** Ends a thread the pool no longer wants; its exit is no crash. */
  terminate(thread: Thread, busy = thread.listeners.length > 0): void {
    thread.killed = true
    if (thread.startTimer !== undefined) clearTimeout(thread.startTimer)
    thread.startTimer = undefined
    this.detach(thread, busy)
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
    if (this.readyWaiters.length === 0 || !this.allReady()) return
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
