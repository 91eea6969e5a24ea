/**
 * The limits on when a queued job may start, apart from free workers: the pool's rate window, each key's
 * concurrency and rate window, and the one wake-up timer that brings dispatch back when a window reopens.
 */
import type * as Clock from "effect/Clock"
import type * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import type * as Fiber from "effect/Fiber"
import type { JobEntry } from "./entry.ts"
import { type JobQueue, KeyState, SlidingLog } from "./jobQueue.ts"
import type { ResolvedPoolOptions } from "./options.ts"

/** @internal */
export class Limits {
  readonly keys = new Map<string, KeyState<JobEntry>>()
  readonly limiter: SlidingLog | undefined
  /** Keys whose jobs are parked by their rate limit, to unpark when their window reopens. */
  readonly rateBlocked = new Set<KeyState<JobEntry>>()
  /** Unused keys kept only for their rate window, forgotten once it has passed. */
  readonly lingering = new Set<KeyState<JobEntry>>()
  wakeAt = Number.POSITIVE_INFINITY
  wakeFiber: Fiber.Fiber<void> | undefined = undefined
  readonly keyConcurrency: number
  readonly options: ResolvedPoolOptions
  readonly queue: JobQueue<JobEntry>
  readonly clock: Clock.Clock
  readonly context: Context.Context<never>
  /** The pool's timer operation: runs when a window the pool waits on reopens. */
  readonly onWake: () => void

  constructor(
    options: ResolvedPoolOptions,
    queue: JobQueue<JobEntry>,
    clock: Clock.Clock,
    context: Context.Context<never>,
    onWake: () => void
  ) {
    this.options = options
    this.keyConcurrency = options.keyConcurrency
    this.queue = queue
    this.clock = clock
    this.context = context
    this.onWake = onWake
    this.limiter = options.rateLimit === undefined
      ? undefined
      : new SlidingLog(options.rateLimit.limit, options.rateLimit.intervalMillis)
  }

  keyState(key: string): KeyState<JobEntry> {
    let state = this.keys.get(key)
    if (state === undefined) {
      const rate = this.options.keyRateLimit
      state = new KeyState(key, rate === undefined ? undefined : new SlidingLog(rate.limit, rate.intervalMillis))
      this.keys.set(key, state)
    }
    return state
  }

  /** Forgets a key with nothing running or parked, once its rate window (if any) holds no recent start. */
  dropIfUnused(state: KeyState<JobEntry>): void {
    if (state.running > 0 || state.parked.head !== undefined) return
    if (state.limiter !== undefined && state.limiter.idleAt() > this.clock.currentTimeMillisUnsafe()) {
      this.lingering.add(state)
      this.wakeUpAt(state.limiter.idleAt())
      return
    }
    this.lingering.delete(state)
    this.keys.delete(state.key)
    this.rateBlocked.delete(state)
  }

  /** Every key forgotten that can be (after the queue was drained). */
  dropAllUnused(): void {
    if (this.keys.size === 0) return
    for (const state of [...this.keys.values()]) this.dropIfUnused(state)
  }

  firstParked(): JobEntry | undefined {
    for (const state of this.keys.values()) if (state.parked.head !== undefined) return state.parked.head
    return undefined
  }

  /** Whether the rate and key limits let a job start now. */
  allows(entry: JobEntry, now: number): boolean {
    if (this.limiter !== undefined && !this.limiter.allows(now)) return false
    const key = entry.options.key
    if (key === undefined) return true
    const state = this.keys.get(key)
    if (state === undefined) return true // a key with nothing running, queued or in its rate window
    return state.running < this.keyConcurrency && (state.limiter === undefined || state.limiter.allows(now))
  }

  /** Whether the pool's own rate window is full now; if so a wake-up is set for when it reopens. */
  poolRateFull(now: number): boolean {
    if (this.limiter === undefined || this.limiter.allows(now)) return false
    this.wakeUpAt(this.limiter.nextAt())
    return true
  }

  /** Sets a wake-up for when the rate limits that hold `entry` back let it start. */
  wakeForRate(entry: JobEntry): void {
    const now = this.clock.currentTimeMillisUnsafe()
    if (this.limiter !== undefined && !this.limiter.allows(now)) this.wakeUpAt(this.limiter.nextAt())
    const state = entry.key === undefined ? undefined : this.keys.get(entry.key)
    if (state?.limiter !== undefined && !state.limiter.allows(now)) this.wakeUpAt(state.limiter.nextAt())
  }

  /**
   * Whether the key of the job at the head of the queue lets it start; if not, the job is parked on its key
   * (and a wake-up is set for the key's rate window), so that it never blocks other keys.
   */
  keyAllows(entry: JobEntry, now: number): boolean {
    const state = this.keyState(entry.key!)
    if (state.running >= this.keyConcurrency) {
      this.queue.park(entry, state)
      return false
    }
    if (state.limiter !== undefined && !state.limiter.allows(now)) {
      this.queue.park(entry, state)
      this.rateBlocked.add(state)
      this.wakeUpAt(state.limiter.nextAt())
      return false
    }
    return true
  }

  /** A job starts: its starts count in the windows, and it holds a slot of its key. */
  recordStart(entry: JobEntry, now: number): void {
    this.limiter?.record(now)
    const key = entry.options.key
    if (key === undefined) return
    const state = this.keyState(key)
    state.running++
    state.limiter?.record(now)
    // the key's next parked job is looked at again: it starts, or parks with a wake-up for its window
    if (state.parked.head !== undefined && state.running < this.keyConcurrency && !this.rateBlocked.has(state)) {
      this.queue.unparkHead(state)
    }
  }

  /** A running job stops holding its key's slot. */
  release(entry: JobEntry): void {
    const key = entry.options.key
    if (key === undefined) return
    const state = this.keys.get(key)!
    state.running--
    if (state.parked.head !== undefined && !this.rateBlocked.has(state)) this.queue.unparkHead(state)
    else this.dropIfUnused(state)
  }

  /** The key a parked job waits on, if it is parked. */
  parkedOn(entry: JobEntry): KeyState<JobEntry> | undefined {
    return entry.key === undefined ? undefined : this.keys.get(entry.key)
  }

  /** The windows that have reopened by now: their keys are forgotten or their parked jobs come back. */
  reopen(): void {
    const now = this.clock.currentTimeMillisUnsafe()
    for (const state of this.lingering) {
      if (this.keys.get(state.key) !== state) this.lingering.delete(state)
      else this.dropIfUnused(state)
    }
    for (const state of this.rateBlocked) {
      if (state.limiter!.allows(now)) {
        this.rateBlocked.delete(state)
        if (state.running < this.keyConcurrency) this.queue.unparkHead(state)
      } else {
        this.wakeUpAt(state.limiter!.nextAt())
      }
    }
  }

  /** Makes sure dispatch runs again at `at` (a rate window reopens). One timer at a time, the earliest. */
  wakeUpAt(at: number): void {
    if (at >= this.wakeAt) return
    this.wakeAt = at
    this.wakeFiber?.interruptUnsafe()
    const delay = Math.max(0, at - this.clock.currentTimeMillisUnsafe())
    this.wakeFiber = Effect.runForkWith(this.context)(
      Effect.andThen(
        Effect.sleep(delay),
        Effect.sync(() => {
          this.wakeFiber = undefined
          this.wakeAt = Number.POSITIVE_INFINITY
          this.onWake()
        })
      )
    )
  }

  stop(): void {
    this.wakeFiber?.interruptUnsafe()
  }
}
