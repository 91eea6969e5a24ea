import * as DateTime from "effect/DateTime"
import type * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import type * as Job from "../Job.ts"
import type { DeadLetter } from "../Job.ts"
import type { InvalidOptions } from "../PoolError.ts"
import * as PoolMetrics from "../PoolMetrics.ts"
import type { Backpressure, Options as WorkerPoolOptions } from "../PoolOptions.ts"
import type * as Shutdown from "../Shutdown.ts"
import * as Validation from "../Validation.ts"

/** @internal */
export type { Backpressure }

/** @internal */
export interface ResolvedShutdown {
  readonly mode: Shutdown.Mode
  readonly gracePeriodMillis: number
  readonly interruptTimeoutMillis: number
}

/** @internal */
export type DeadLetterSink = Queue.Enqueue<DeadLetter> | ((letter: DeadLetter) => Effect.Effect<void, unknown>)

/** @internal */
export interface RateLimit {
  readonly limit: number
  readonly interval: Duration.Input
}

/** @internal */
export interface ResolvedRateLimit {
  readonly limit: number
  readonly intervalMillis: number
}

/** @internal */
export type Spans = "auto" | "always" | "never"

/** @internal */
export interface ResolvedPoolOptions {
  readonly spans: Spans
  readonly name: string
  readonly concurrency: number
  readonly capacity: number
  readonly backpressure: Backpressure
  readonly timeoutMillis: number
  readonly shutdown: ResolvedShutdown
  /** 0 = no aging */
  readonly agingMillis: number
  readonly keyConcurrency: number
  readonly rateLimit: ResolvedRateLimit | undefined
  readonly keyRateLimit: ResolvedRateLimit | undefined
  readonly deadLetters: DeadLetterSink | undefined
  readonly durationBoundaries: ReadonlyArray<number>
  readonly progressIntervalMillis: number
}

/** @internal */
export interface ResolvedJobOptions {
  readonly id: string | undefined
  readonly timeoutMillis: number
  readonly deadline: number
  readonly retry: RetryOptions | undefined
  readonly metadata: Readonly<Record<string, unknown>> | undefined
  readonly priority: number
  readonly key: string | undefined
}

/** @internal */
export interface RetryOptions {
  readonly schedule?: Schedule.Schedule<unknown, unknown>
  readonly times?: number
  readonly while?: (error: unknown) => boolean
}

/** @internal */
export const defaults = {
  name: "fiberpool",
  capacity: 1024,
  backpressure: "suspend" as Backpressure,
  gracePeriodMillis: 30_000,
  agingMillis: 1_000,
  interruptTimeoutMillis: 5_000,
  progressIntervalMillis: 100
}

const backpressures: ReadonlyArray<Backpressure> = ["suspend", "fail", "dropping", "sliding"]
const modes: ReadonlyArray<Shutdown.Mode> = ["drain", "cancel"]

const invalid = (option: string, value: unknown, expected: string) =>
  Result.fail(Validation.invalid(option, value, expected))

/** Reads a duration option as milliseconds; `undefined` gives `fallback`. */
const durationMillis = (
  option: string,
  input: Duration.Input | undefined,
  fallback: number,
  positive: boolean
): Result.Result<number, InvalidOptions> => Validation.durationMillis(option, input, { fallback, positive })

/** The default boundaries of the duration histograms, checked once. */
const boundariesExpected = "a non-empty array of increasing, positive, finite numbers (seconds)"

const resolveBoundaries = (input: unknown): Result.Result<ReadonlyArray<number>, InvalidOptions> => {
  if (input === undefined) return Result.succeed(PoolMetrics.durationBoundaries)
  if (!Array.isArray(input) || input.length === 0) return invalid("durationBoundaries", input, boundariesExpected)
  for (let i = 0; i < input.length; i++) {
    const bound = input[i]
    if (typeof bound !== "number" || !Number.isFinite(bound) || bound <= 0 || (i > 0 && bound <= input[i - 1])) {
      return invalid("durationBoundaries", input, boundariesExpected)
    }
  }
  return Result.succeed([...input])
}

/** @internal */
export const resolveShutdown = (
  prefix: string,
  options: Shutdown.Options | undefined,
  base: ResolvedShutdown
): Result.Result<ResolvedShutdown, InvalidOptions> => {
  if (options === undefined) return Result.succeed(base)
  if (typeof options !== "object" || options === null) return invalid(prefix, options, "an object")
  const mode = options.mode ?? base.mode
  if (!modes.includes(mode)) return invalid(`${prefix}.mode`, options.mode, `one of ${modes.join(", ")}`)
  const grace = durationMillis(`${prefix}.gracePeriod`, options.gracePeriod, base.gracePeriodMillis, false)
  if (Result.isFailure(grace)) return Result.fail(grace.failure)
  const interrupt = durationMillis(
    `${prefix}.interruptTimeout`,
    options.interruptTimeout,
    base.interruptTimeoutMillis,
    false
  )
  if (Result.isFailure(interrupt)) return Result.fail(interrupt.failure)
  return Result.succeed({ mode, gracePeriodMillis: grace.success, interruptTimeoutMillis: interrupt.success })
}

const resolveRateLimit = (
  option: string,
  input: RateLimit | undefined
): Result.Result<ResolvedRateLimit | undefined, InvalidOptions> => {
  if (input === undefined) return Result.succeed(undefined)
  if (typeof input !== "object" || input === null) return invalid(option, input, "{ limit, interval }")
  if (!Number.isSafeInteger(input.limit) || input.limit < 1) {
    return invalid(`${option}.limit`, input.limit, "a positive integer")
  }
  const interval = Validation.durationMillis(`${option}.interval`, input.interval, { positive: true })
  if (Result.isFailure(interval)) return Result.fail(interval.failure)
  return Result.succeed({ limit: input.limit, intervalMillis: interval.success })
}

/** @internal */
export const resolvePoolOptions = (
  options: WorkerPoolOptions
): Result.Result<ResolvedPoolOptions, InvalidOptions> => {
  if (typeof options !== "object" || options === null) return invalid("options", options, "an object")
  const name = options.name ?? defaults.name
  if (typeof name !== "string" || name.length === 0) return invalid("name", options.name, "a non-empty string")
  const concurrencyResult = Validation.integer("concurrency", options.concurrency)
  if (Result.isFailure(concurrencyResult)) return Result.fail(concurrencyResult.failure)
  const concurrency = concurrencyResult.success
  const capacityResult = Validation.integer("capacity", options.capacity, {
    min: 0,
    infinity: true,
    fallback: defaults.capacity
  })
  if (Result.isFailure(capacityResult)) return Result.fail(capacityResult.failure)
  const capacity = capacityResult.success
  const backpressure = options.backpressure ?? defaults.backpressure
  if (!backpressures.includes(backpressure)) {
    return invalid("backpressure", options.backpressure, `one of ${backpressures.join(", ")}`)
  }
  if (backpressure === "sliding" && capacity === 0) {
    return invalid("capacity", capacity, "at least 1 with backpressure \"sliding\" (a queued job to push out)")
  }
  const timeout = durationMillis("timeout", options.timeout, Number.POSITIVE_INFINITY, true)
  if (Result.isFailure(timeout)) return Result.fail(timeout.failure)
  const spans = options.spans ?? "auto"
  if (spans !== "auto" && spans !== "always" && spans !== "never") {
    return invalid("spans", options.spans, "one of auto, always, never")
  }
  const shutdown = resolveShutdown("shutdown", options.shutdown, {
    mode: "drain",
    gracePeriodMillis: defaults.gracePeriodMillis,
    interruptTimeoutMillis: defaults.interruptTimeoutMillis
  })
  if (Result.isFailure(shutdown)) return Result.fail(shutdown.failure)
  let agingMillis = defaults.agingMillis
  if (options.aging === false) agingMillis = 0
  else if (options.aging !== undefined) {
    const aging = durationMillis("aging", options.aging, defaults.agingMillis, true)
    if (Result.isFailure(aging)) return Result.fail(aging.failure)
    agingMillis = aging.success
  }
  const keyConcurrencyResult = Validation.integer("keyConcurrency", options.keyConcurrency, {
    infinity: true,
    fallback: Number.POSITIVE_INFINITY
  })
  if (Result.isFailure(keyConcurrencyResult)) return Result.fail(keyConcurrencyResult.failure)
  const keyConcurrency = keyConcurrencyResult.success
  const rateLimit = resolveRateLimit("rateLimit", options.rateLimit)
  if (Result.isFailure(rateLimit)) return Result.fail(rateLimit.failure)
  const keyRateLimit = resolveRateLimit("keyRateLimit", options.keyRateLimit)
  if (Result.isFailure(keyRateLimit)) return Result.fail(keyRateLimit.failure)
  const deadLetters = options.deadLetters
  if (deadLetters !== undefined && typeof deadLetters !== "function" && !Queue.isEnqueue(deadLetters)) {
    return invalid("deadLetters", deadLetters, "a Queue or a function returning an Effect")
  }
  const durationBoundaries = resolveBoundaries(options.durationBoundaries)
  if (Result.isFailure(durationBoundaries)) return Result.fail(durationBoundaries.failure)
  const progressInterval = durationMillis(
    "progressInterval",
    options.progressInterval,
    defaults.progressIntervalMillis,
    false
  )
  if (Result.isFailure(progressInterval)) return Result.fail(progressInterval.failure)
  return Result.succeed({
    durationBoundaries: durationBoundaries.success,
    progressIntervalMillis: progressInterval.success,
    agingMillis,
    keyConcurrency,
    rateLimit: rateLimit.success,
    keyRateLimit: keyRateLimit.success,
    deadLetters,
    spans,
    name,
    concurrency,
    capacity,
    backpressure,
    timeoutMillis: timeout.success,
    shutdown: shutdown.success
  })
}

/** @internal */
export const noJobOptions: ResolvedJobOptions = {
  id: undefined,
  timeoutMillis: Number.POSITIVE_INFINITY,
  deadline: Number.POSITIVE_INFINITY,
  retry: undefined,
  metadata: undefined,
  priority: 0,
  key: undefined
}

/** @internal */
export const resolveJobOptions = (
  options: Job.Options<any>,
  now: number
): Result.Result<ResolvedJobOptions, InvalidOptions> => {
  if (typeof options !== "object" || options === null) return invalid("options", options, "an object")
  const id = options.id
  if (id !== undefined && (typeof id !== "string" || id.length === 0)) return invalid("id", id, "a non-empty string")
  const timeout = durationMillis("timeout", options.timeout, Number.POSITIVE_INFINITY, true)
  if (Result.isFailure(timeout)) return Result.fail(timeout.failure)
  let deadline = Number.POSITIVE_INFINITY
  if (options.deadline !== undefined) {
    deadline = DateTime.isDateTime(options.deadline) ? DateTime.toEpochMillis(options.deadline) : options.deadline
    if (typeof deadline !== "number" || !Number.isFinite(deadline)) {
      return invalid("deadline", options.deadline, "a DateTime or finite epoch milliseconds")
    }
    if (deadline <= now) {
      return invalid("deadline", options.deadline, `an instant after now (${new Date(now).toISOString()})`)
    }
  }
  let retry: RetryOptions | undefined
  if (options.retry !== undefined) {
    const input = options.retry
    if (Schedule.isSchedule(input)) {
      retry = { schedule: input as Schedule.Schedule<unknown, unknown> }
    } else if (typeof input === "object" && input !== null) {
      if (input.times !== undefined && (!Number.isSafeInteger(input.times) || input.times < 0)) {
        return invalid("retry.times", input.times, "an integer of zero or more")
      }
      if (input.schedule !== undefined && !Schedule.isSchedule(input.schedule)) {
        return invalid("retry.schedule", input.schedule, "a Schedule")
      }
      if (input.while !== undefined && typeof input.while !== "function") {
        return invalid("retry.while", input.while, "a predicate on the job's error")
      }
      if (input.schedule === undefined && input.times === undefined) {
        return invalid("retry", input, "a Schedule, or an object with a schedule or a number of times")
      }
      retry = input as RetryOptions
    } else {
      return invalid("retry", input, "a Schedule or { schedule, times, while }")
    }
  }
  const metadata = options.metadata
  if (metadata !== undefined && (typeof metadata !== "object" || metadata === null)) {
    return invalid("metadata", metadata, "an object")
  }
  const priority = options.priority ?? 0
  if (typeof priority !== "number" || !Number.isFinite(priority)) {
    return invalid("priority", options.priority, "a finite number")
  }
  const key = options.key
  if (key !== undefined && (typeof key !== "string" || key.length === 0)) {
    return invalid("key", key, "a non-empty string")
  }
  return Result.succeed({ id, timeoutMillis: timeout.success, deadline, retry, metadata, priority, key })
}
