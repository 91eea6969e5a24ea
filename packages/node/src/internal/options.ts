/**
 * Option validation of `@fiberpool/node`: one rendering of bad values, one way to read a duration or a count.
 * Every rejection is core's `PoolError.InvalidOptions` (so that `NodeShutdown` maps it to exit code 2), built
 * only here.
 *
 * The helpers mirror core's internal ones (`render`, `durationMillis`) with the same rendering and messages;
 * when core exposes its validation helpers publicly, `render`, `invalid` and `durationMillis` become
 * re-exports of them and nothing else changes.
 *
 * @internal
 */
import { PoolError } from "@fiberpool/core"
import * as DateTime from "effect/DateTime"
import * as Duration from "effect/Duration"
import * as Option from "effect/Option"
import * as Result from "effect/Result"
import { isAbsolute } from "node:path"

/** How a rejected value is shown in `InvalidOptions.value`. @internal */
export const render = (value: unknown): string => {
  if (typeof value === "string") return JSON.stringify(value)
  if (typeof value === "number" || typeof value === "bigint" || typeof value === "boolean") return String(value)
  if (value === undefined) return "undefined"
  if (value === null) return "null"
  if (value instanceof URL) return value.href
  if (DateTime.isDateTime(value)) return DateTime.formatIso(value)
  if (Duration.isDuration(value)) return Duration.format(value)
  if (typeof value === "function") return "a function"
  // JSON.stringify throws on cycles and BigInts inside objects: a value that cannot be shown is named by its type
  const json = Result.try(() => JSON.stringify(value))
  return Result.isSuccess(json) && json.success !== undefined ? json.success : Object.prototype.toString.call(value)
}

/** The rejection of one option. @internal */
export const invalid = (option: string, value: unknown, expected: string): PoolError.InvalidOptions =>
  new PoolError.InvalidOptions({ option, value: render(value), expected })

/**
 * Reads a duration option as milliseconds: `undefined` gives `fallback`; only finite values pass, positive
 * ones when `positive`, zero or more otherwise.
 *
 * @internal
 */
export const durationMillis = (
  option: string,
  input: Duration.Input | undefined,
  fallback: number,
  positive: boolean
): Result.Result<number, PoolError.InvalidOptions> => {
  if (input === undefined) return Result.succeed(fallback)
  const expected = positive ? "a positive, finite duration" : "a finite duration of zero or more"
  const decoded = Duration.fromInput(input)
  if (Option.isNone(decoded)) return Result.fail(invalid(option, input, expected))
  const millis = Duration.toMillis(decoded.value)
  if (!Number.isFinite(millis) || (positive ? millis <= 0 : millis < 0)) {
    return Result.fail(invalid(option, input, expected))
  }
  return Result.succeed(millis)
}

/** Reads an integer option of at least `min`: `undefined` gives `fallback`. @internal */
export const integer = (
  option: string,
  input: unknown,
  fallback: number,
  min: number
): Result.Result<number, PoolError.InvalidOptions> => {
  if (input === undefined) return Result.succeed(fallback)
  if (typeof input !== "number" || !Number.isSafeInteger(input) || input < min) {
    return Result.fail(invalid(option, input, min === 1 ? "a positive integer" : `an integer of ${min} or more`))
  }
  return Result.succeed(input)
}

/**
 * Reads the `worker` option: a `file:` or `data:` URL, or a path that Node's `Worker` accepts (absolute, or
 * relative to the working directory and starting with `./` or `../`).
 *
 * @internal
 */
export const workerFile = (input: unknown): Result.Result<URL | string, PoolError.InvalidOptions> => {
  if (input instanceof URL) {
    return input.protocol === "file:" || input.protocol === "data:"
      ? Result.succeed(input)
      : Result.fail(invalid("worker", input, "a file: or data: URL"))
  }
  if (
    typeof input === "string" &&
    (isAbsolute(input) || input.startsWith("./") || input.startsWith("../"))
  ) {
    return Result.succeed(input)
  }
  return Result.fail(
    invalid(
      "worker",
      input,
      "a URL (new URL(\"./worker.ts\", import.meta.url)), an absolute path, or a path starting with ./ or ../"
    )
  )
}

/** Reads an option that must be an object when given. @internal */
export const object = <A>(
  option: string,
  input: A | undefined
): Result.Result<A | undefined, PoolError.InvalidOptions> =>
  input === undefined || (typeof input === "object" && input !== null)
    ? Result.succeed(input)
    : Result.fail(invalid(option, input, "an object"))
