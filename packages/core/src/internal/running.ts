/**
 * Running jobs: dispatch (queued jobs onto free workers), a job's start (its context, attempts, span, timeout),
 * its exit, and the operator's controls over dispatch.
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as References from "effect/References"
import * as Tracer from "effect/Tracer"
import * as Job from "../Job.ts"
import { JobTimedOut } from "../PoolError.ts"
import { PoolCore } from "./core.ts"
import { type AnyExit, Flag, type JobEntry, jobFailure, outcomeOf, relative, withoutStack } from "./entry.ts"
import { JobInfo } from "./progress.ts"

/** @internal */
export abstract class PoolRunning extends PoolCore {
  /** The last submitter context a job started in, and what was read from it. */
  lastContext: Context.Context<never> | undefined = undefined
  /** Its log annotations, undefined when it has none. */
  lastAnnotations: Readonly<Record<string, unknown>> | undefined = undefined
  lastTraced = false

  /** Admits the first waiting submitter whose job could start now (queue empty, a worker free). */
  abstract admitStartable(): boolean
  /** Admits the first waiting submitter into a free queue slot. */
  abstract admitIntoRoom(): boolean

  /**
   * Starts queued jobs while workers are free and limits allow, then moves waiting submitters into free queue
   * slots. Runs once per operation, from `settle`: a job that completes synchronously inside `start` only
   * records its outcome (its exit is a nested operation), and this loop sees the freed worker, so a long run
   * of synchronous jobs never grows the stack.
   */
  dispatch(): void {
    // one clock read for the jobs started in one pass: they start in the same step
    let now = -1
    while (true) {
      if (this.runningList.size < this.concurrency && !this.dispatchPaused) {
        const next = this.queue.peek()
        if (next !== undefined) {
          if (now < 0) now = this.clock.currentTimeMillisUnsafe()
          if (!this.limits.poolRateFull(now)) {
            if (next.key !== undefined && !this.limits.keyAllows(next, now)) continue
            this.queue.remove(next)
            this.start(next, now)
            continue
          }
        } else if (this.admitStartable()) continue
      }
      if (this.admitIntoRoom()) continue
      return
    }
  }

  /** Starts a job (inside an operation). */
  start(entry: JobEntry, now: number): void {
    const options = entry.options
    const budget = Math.min(options.timeoutMillis, this.options.timeoutMillis, options.deadline - now)
    if (budget <= 0) {
      // the deadline passed while the job waited: it never starts, and uses no worker, key slot or rate
      this.finish(
        entry,
        "timedOut",
        jobFailure(
          entry.id,
          withoutStack(() => new JobTimedOut({ timeoutMillis: options.deadline - entry.submittedAt }))
        )
      )
      return
    }
    entry.state = "running"
    this.runningList.push(entry)
    if (this.limits.limiter !== undefined || options.key !== undefined) this.limits.recordStart(entry, now)
    entry.startedRel = relative(now, this.epoch)
    this.instruments.observeWait(entry.startedRel - entry.submittedRel)
    const once = entry.body as Effect.Effect<unknown, unknown>
    const context = this.jobContext(entry, entry.run as Context.Context<never>, budget)
    entry.body = entry.run = undefined
    // without retries the single attempt is set up here; with them, at the start of each attempt
    let program: Effect.Effect<unknown, unknown>
    if (options.retry !== undefined) {
      program = Effect.retry(Effect.suspend(() => this.attempt(entry, once)), options.retry as any) as Effect.Effect<
        unknown,
        unknown
      >
    } else {
      program = this.attempt(entry, once)
    }
    if (budget !== Number.POSITIVE_INFINITY) {
      program = Effect.timeoutOrElse(program, {
        duration: budget,
        orElse: () =>
          Effect.sync(() => {
            entry.flags |= Flag.TimedOut
          })
      })
    }
    const fiber = Effect.runForkWith(context)(program)
    const exit = fiber.pollUnsafe()
    if (exit !== undefined) {
      // it ran to the end in this step: no time passed on the Clock, so no second clock read, unless it has a
      // time limit that synchronous work may have overrun
      this.onJobExit(entry, exit, budget === Number.POSITIVE_INFINITY ? now : undefined)
      return
    }
    entry.run = fiber
    fiber.addObserver((exit) => this.onJobExit(entry, exit))
    if (entry.flags & Flag.CancelRequested) fiber.interruptUnsafe()
  }

  /**
   * The context a job runs in: the submitter's, with the job's log annotations (set once here rather than with
   * `Effect.annotateLogs`, which costs an extra context per job).
   */
  jobContext(entry: JobEntry, context: Context.Context<never>, budget: number): Context.Context<never> {
    // consecutive jobs mostly come from one submitter's context: what is read from it is read once
    if (context !== this.lastContext) {
      this.lastContext = context
      const annotations = Context.get(context, References.CurrentLogAnnotations)
      this.lastAnnotations = Object.keys(annotations).length === 0 ? undefined : annotations
      this.lastTraced = this.options.spans === "always" ||
        (this.options.spans === "auto" && Context.get(context, Tracer.Tracer) !== Tracer.nativeTracer &&
          Context.get(context, References.TracerEnabled))
    }
    if (this.lastTraced) entry.flags |= Flag.Traced
    const inherited = this.lastAnnotations
    const annotations = inherited === undefined
      ? { "fiberpool.pool": this.name, "fiberpool.job": entry.id }
      : { ...inherited, "fiberpool.pool": this.name, "fiberpool.job": entry.id }
    const info = new JobInfo(
      entry,
      this.name,
      budget === Number.POSITIVE_INFINITY ? undefined : this.epoch + entry.startedRel + budget,
      this
    )
    return Context.add(Context.add(context, References.CurrentLogAnnotations, annotations), Job.Current, info)
  }

  /**
   * One attempt of a job, with its events, and its span (a child of the submitter's span) when the job is
   * traced. Retries add the attempt number to the log annotations.
   */
  attempt(entry: JobEntry, job: Effect.Effect<unknown, unknown, never>): Effect.Effect<unknown, unknown> {
    const attempt = entry.startAttempt()
    if (attempt > 1) this.counters.retries++
    if (this.subscribers.size > 0) this.emit("Started", entry)
    let program = job
    // a single attempt's failure is reported by `finish`; only retried attempts need watching here
    if (this.subscribers.size > 0 && entry.options.retry !== undefined) {
      program = Effect.tapCause(program, (cause) =>
        Effect.sync(() => {
          if (Cause.hasFails(cause)) this.emit("AttemptFailed", entry, cause)
        }))
    }
    if (attempt > 1) program = Effect.annotateLogs(program, "fiberpool.attempt", attempt)
    if (entry.flags & Flag.Traced) program = this.traced(entry, program, attempt)
    return program
  }

  /**
   * The span of an attempt, per OpenTelemetry's messaging conventions: a consumer span named
   * `process <pool>`, with `messaging.*` attributes, the time the job waited in the queue, and `error.type`
   * when the attempt fails.
   */
  traced(entry: JobEntry, job: Effect.Effect<unknown, unknown>, attempt: number): Effect.Effect<unknown, unknown> {
    const program = Effect.tapCause(job, (cause) => {
      const type = errorType(cause)
      return type === undefined ? Effect.void : Effect.annotateCurrentSpan("error.type", type)
    })
    return Effect.withSpan(program, `process ${this.name}`, {
      kind: "consumer",
      attributes: {
        "messaging.system": "fiberpool",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.destination.name": this.name,
        "messaging.message.id": entry.id,
        "fiberpool.pool": this.name,
        "fiberpool.job": entry.id,
        "fiberpool.attempt": attempt,
        "fiberpool.wait_ms": entry.startedRel - entry.submittedRel
      },
      captureStackTrace: false
    })
  }

  /** A job's fiber has ended: an operation (nested when the job ended inside `start`). */
  onJobExit(entry: JobEntry, exit: AnyExit, endedAt?: number): void {
    if (entry.state !== "running") return // abandoned at shutdown: already reported
    this.depth++
    try {
      this.runningList.remove(entry)
      if (entry.options.key !== undefined) this.limits.release(entry)
      entry.run = undefined
      let status = outcomeOf(entry, exit)
      if (status === "succeeded" || status === "failed") {
        // a job that blocked the event loop past its time (synchronous work) kept its timer from firing: it
        // ran out of time all the same, and is reported so when it returns
        const startedAt = this.epoch + entry.startedRel
        const options = entry.options
        const budget = Math.min(options.timeoutMillis, this.options.timeoutMillis, options.deadline - startedAt)
        if (budget !== Number.POSITIVE_INFINITY) {
          endedAt ??= this.clock.currentTimeMillisUnsafe()
          if (endedAt - startedAt > budget) status = "timedOut"
        }
      }
      let result: AnyExit | undefined = exit
      if (status === "timedOut") {
        result = jobFailure(
          entry.id,
          withoutStack(() => new JobTimedOut({ timeoutMillis: this.budget(entry, entry.startedAt!) }))
        )
      } else if (status === "interrupted") {
        result = undefined // built when first read (`JobEntry.settled`)
      }
      this.finish(entry, status, result, endedAt)
    } finally {
      this.leave()
    }
  }

  /** The time a job starting at `startedAt` has: its timeout (the pool's, or its own if shorter), or less if its deadline is closer. */
  budget(entry: JobEntry, startedAt: number): number {
    const options = entry.options
    return Math.min(options.timeoutMillis, this.options.timeoutMillis, options.deadline - startedAt)
  }

  /** A running job stops holding its worker and its key's slot. */
  release(entry: JobEntry): void {
    this.runningList.remove(entry)
    this.limits.release(entry)
  }

  // ---- operator controls ----

  pause(intake: boolean): void {
    this.transact(() => {
      if (intake) this.intakePaused = true
      else this.dispatchPaused = true
    })
  }

  resume(intake: boolean): void {
    this.transact(() => {
      if (intake) this.intakePaused = false
      else this.dispatchPaused = false
    })
  }

  resize(concurrency: number): void {
    this.transact(() => {
      this.concurrency = concurrency
    })
  }
}

/**
 * The `error.type` of a failed attempt: the failure's `_tag` or class name, `"defect"` for a defect, nothing for
 * an interruption (the span's own status tells it).
 */
const errorType = (cause: Cause.Cause<unknown>): string | undefined => {
  const failure = Cause.findErrorOption(cause)
  if (failure._tag === "Some") {
    const error = failure.value
    if (typeof error === "object" && error !== null) {
      if ("_tag" in error && typeof error._tag === "string") return error._tag
      if (error instanceof Error) return error.constructor.name
    }
    return "_OTHER"
  }
  return Cause.hasDies(cause) ? "defect" : undefined
}
