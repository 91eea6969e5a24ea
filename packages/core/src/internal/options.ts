import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Result from "effect/Result"
import * as Schedule from "effect/Schedule"
import type * as Job from "../Job.ts"
import type { DeadLetter } from "../Job.ts"
import { InvalidOptions } from "../PoolError.ts"
import type * as Shutdown from "../Shutdown.ts"
import type { Options as WorkerPoolOptions } from "../WorkerPool.ts"

/** @internal */
export type Backpressure = "suspend" | "fail" | "dropping" | "sliding"

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
  interruptTimeoutMillis: 5_000
}

const backpressures: ReadonlyArray<Backpressure> = ["suspend", "fail", "dropping", "sliding"]
const modes: ReadonlyArray<Shutdown.Mode> = ["drain", "cancel"]

/** @internal */
export const render = (value: unknown): string => {
  if (typeof value === "string") return JSON.stringify(value)
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") return String(value)
  if (value === undefined) return "undefined"
  if (value === null) return "null"
  if (DateTime.isDateTime(value)) return DateTime.formatIso(value)
  if (Duration.isDuration(value)) return Duration.format(value)
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

const invalid = (option: string, value: unknown, expected: string) =>
  Result.fail(new InvalidOptions({ option, value: render(value), expected }))

/**
 * Reads a duration option as milliseconds. `undefined` gives `fallback`. Only finite, non-NaN values pass,
 * and `min` is the least allowed value (exclusive when `positive`).
 */
const durationMillis = (
  option: string,
  input: Duration.Input | undefined,
  fallback: number,
  positive: boolean
): Result.Result<number, InvalidOptions> => {
  if (input === undefined) return Result.succeed(fallback)
  const expected = positive ? "a positive, finite duration" : "a finite duration of zero or more"
  const decoded = Duration.fromInput(input)
  if (Option.isNone(decoded)) return invalid(option, input, expected)
  const millis = Duration.toMillis(decoded.value)
  if (!Number.isFinite(millis) || (positive ? millis <= 0 : millis < 0)) return invalid(option, input, expected)
  return Result.succeed(millis)
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
  const interval = durationMillis(`${option}.interval`, input.interval ?? Number.NaN, 0, true)
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
  const concurrency = options.concurrency
  if (typeof concurrency !== "number" || !Number.isSafeInteger(concurrency) || concurrency < 1) {
    return invalid("concurrency", concurrency, "a positive integer")
  }
  const capacity = options.capacity ?? defaults.capacity
  if (
    typeof capacity !== "number" ||
    !(capacity === Number.POSITIVE_INFINITY || (Number.isSafeInteger(capacity) && capacity >= 0))
  ) {
    return invalid("capacity", options.capacity, "an integer of zero or more, or Infinity")
  }
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
  const keyConcurrency = options.keyConcurrency ?? Number.POSITIVE_INFINITY
  if (!(keyConcurrency === Number.POSITIVE_INFINITY || (Number.isSafeInteger(keyConcurrency) && keyConcurrency >= 1))) {
    return invalid("keyConcurrency", options.keyConcurrency, "a positive integer, or Infinity")
  }
  const rateLimit = resolveRateLimit("rateLimit", options.rateLimit)
  if (Result.isFailure(rateLimit)) return Result.fail(rateLimit.failure)
  const keyRateLimit = resolveRateLimit("keyRateLimit", options.keyRateLimit)
  if (Result.isFailure(keyRateLimit)) return Result.fail(keyRateLimit.failure)
  const deadLetters = options.deadLetters
  if (deadLetters !== undefined && typeof deadLetters !== "function" && !Queue.isEnqueue(deadLetters)) {
    return invalid("deadLetters", deadLetters, "a Queue or a function returning an Effect")
  }
  return Result.succeed({
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
