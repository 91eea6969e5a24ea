/**
 * Helpers that validate options and build the `InvalidOptions` reason, with one rendering of bad values. Core's
 * own options are checked with them, and packages built on core (such as `@fiberpool/node`) use them so that
 * every option error reads the same way.
 *
 * @since 0.1.0
 */
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import { InvalidOptions } from "./PoolError.ts"

/**
 * Renders a bad option value for an error message: strings quoted, numbers as written (`NaN`, `Infinity`),
 * durations and dates in their usual format, other values as JSON when they have one.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Validation } from "@fiberpool/core"
 *
 * assert.strictEqual(Validation.render("ten"), "\"ten\"")
 * assert.strictEqual(Validation.render(Number.NaN), "NaN")
 * assert.strictEqual(Validation.render({ limit: 5 }), "{\"limit\":5}")
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export const render = (value: unknown): string => {
  if (typeof value === "string") return JSON.stringify(value)
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") return String(value)
  if (value === undefined) return "undefined"
  if (value === null) return "null"
  if (typeof value === "function") return "a function"
  if (DateTime.isDateTime(value)) return DateTime.formatIso(value)
  if (Duration.isDuration(value)) return Duration.format(value)
  // the boundary with `JSON.stringify`, which throws on cycles and BigInts inside objects
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

/**
 * Builds the `InvalidOptions` reason for an option, rendering its value with {@link render}.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Validation } from "@fiberpool/core"
 *
 * const error = Validation.invalid("threads", 0, "a positive integer")
 * assert.strictEqual(error.message, "Invalid option \"threads\": expected a positive integer, got 0")
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const invalid = (option: string, value: unknown, expected: string): InvalidOptions =>
  new InvalidOptions({ option, value: render(value), expected })

const fail = (option: string, value: unknown, expected: string): Result.Result<never, InvalidOptions> =>
  Result.fail(invalid(option, value, expected))

/**
 * Reads a duration option as milliseconds. `undefined` gives `options.fallback` (when there is no fallback,
 * the option is required). Only finite durations pass (`NaN` never does); with `positive` zero is refused too.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Result } from "effect"
 * import { Validation } from "@fiberpool/core"
 *
 * const ok = Validation.durationMillis("timeout", "2 seconds", { positive: true })
 * assert.deepStrictEqual(ok, Result.succeed(2000))
 * const fallback = Validation.durationMillis("timeout", undefined, { fallback: 500 })
 * assert.deepStrictEqual(fallback, Result.succeed(500))
 * const bad = Validation.durationMillis("timeout", Number.NaN, { positive: true })
 * assert.ok(Result.isFailure(bad) && bad.failure.value === "NaN")
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const durationMillis = (
  option: string,
  input: Duration.Input | undefined,
  options?: { readonly fallback?: number | undefined; readonly positive?: boolean | undefined }
): Result.Result<number, InvalidOptions> => {
  const positive = options?.positive === true
  const expected = positive ? "a positive, finite duration" : "a finite duration of zero or more"
  if (input === undefined) {
    return options?.fallback === undefined ? fail(option, input, expected) : Result.succeed(options.fallback)
  }
  if (typeof input === "number" && Number.isNaN(input)) return fail(option, input, expected)
  const decoded = Duration.fromInput(input)
  if (Option.isNone(decoded)) return fail(option, input, expected)
  const millis = Duration.toMillis(decoded.value)
  if (!Number.isFinite(millis) || (positive ? millis <= 0 : millis < 0)) return fail(option, input, expected)
  return Result.succeed(millis)
}

/**
 * Reads an integer option of at least `options.min` (default 1), or `Infinity` when `options.infinity` allows
 * it. `undefined` gives `options.fallback` (required when there is none).
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Result } from "effect"
 * import { Validation } from "@fiberpool/core"
 *
 * assert.deepStrictEqual(Validation.integer("threads", 4), Result.succeed(4))
 * const zero = Validation.integer("threads", 0)
 * assert.ok(Result.isFailure(zero) && zero.failure.expected === "a positive integer")
 * const capacity = Validation.integer("capacity", undefined, { min: 0, infinity: true, fallback: 1024 })
 * assert.deepStrictEqual(capacity, Result.succeed(1024))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const integer = (
  option: string,
  input: unknown,
  options?: {
    readonly min?: number | undefined
    readonly infinity?: boolean | undefined
    readonly fallback?: number | undefined
  }
): Result.Result<number, InvalidOptions> => {
  const min = options?.min ?? 1
  const infinity = options?.infinity === true
  if (input === undefined && options?.fallback !== undefined) return Result.succeed(options.fallback)
  if (typeof input === "number" && (Number.isSafeInteger(input) && input >= min)) return Result.succeed(input)
  if (input === Number.POSITIVE_INFINITY && infinity) return Result.succeed(input)
  const base = min === 1
    ? "a positive integer"
    : min === 0
    ? "an integer of zero or more"
    : `an integer of ${min} or more`
  return fail(option, input, infinity ? `${base}, or Infinity` : base)
}
