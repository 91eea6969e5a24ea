/** piscina's and tinypool's worker file for the NodeWorkerPool benchmark: `{ seed, iterations }` or a number. */
import { work } from "./thread-work.ts"

export default (input: number | { readonly seed: number; readonly iterations: number }): number =>
  typeof input === "number" ? input : work(input.seed, input.iterations)
