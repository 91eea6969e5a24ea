/**
 * The option checks of `@fiberpool/node` that core's public `Validation` helpers do not cover: the worker file and
 * object-valued options. Every rejection is built with `Validation.invalid`, so it renders bad values as core and
 * the rest of this package do (and `NodeShutdown` maps it to exit code 2).
 *
 * @internal
 */
import { type PoolError, Validation } from "@fiberpool/core"
import * as Result from "effect/Result"
import { isAbsolute } from "node:path"

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
      : Result.fail(Validation.invalid("worker", input.href, "a file: or data: URL"))
  }
  if (
    typeof input === "string" &&
    (isAbsolute(input) || input.startsWith("./") || input.startsWith("../"))
  ) {
    return Result.succeed(input)
  }
  return Result.fail(
    Validation.invalid(
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
    : Result.fail(Validation.invalid(option, input, "an object"))
