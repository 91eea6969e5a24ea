/**
 * The CPU job of the example, shared by the main thread and the worker file: count the primes in a range.
 */
import * as NodeWorkerPool from "@fiberpool/node/NodeWorkerPool"
import { Schema } from "effect"

export class InvalidRange extends Schema.TaggedError<InvalidRange>()("InvalidRange", {
  from: Schema.Int,
  to: Schema.Int
}) {}

export const CountPrimes = NodeWorkerPool.defineTask({
  name: "countPrimes",
  input: Schema.Struct({ from: Schema.Int, to: Schema.Int }),
  output: Schema.Int,
  error: InvalidRange
})

/** Counts the primes in [from, to) by trial division: deliberately CPU-bound. */
export const countPrimes = (from: number, to: number): number => {
  let count = 0
  for (let n = Math.max(2, from); n < to; n++) {
    let prime = true
    for (let d = 2; d * d <= n; d++) {
      if (n % d === 0) {
        prime = false
        break
      }
    }
    if (prime) count++
  }
  return count
}
