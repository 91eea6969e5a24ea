/**
 * fiberpool with an unbounded queue (`capacity: Infinity`): the same submit loops as `fiberpool`, so that
 * the price of the bound (suspending the submitter when 100 wait) shows as the ratio between the two.
 */
import type { Peer } from "../lib.ts"
import { makeThroughput } from "./fiberpool.ts"

export const peer: Peer = makeThroughput(Number.POSITIVE_INFINITY)
