/**
 * The worker file of 06-cpu-offload: each thread of the pool loads it and serves `CountPrimes`.
 */
import * as NodeThreadRunner from "@fiberpool/node/NodeThreadRunner"
import { Effect } from "effect"
import { CountPrimes, countPrimes, InvalidRange } from "./primes.ts"

NodeThreadRunner.serve([CountPrimes], {
  countPrimes: ({ from, to }) =>
    to < from ? Effect.fail(new InvalidRange({ from, to })) : Effect.sync(() => countPrimes(from, to))
}).pipe(Effect.runFork)
