/**
 * The CPU work of the NodeWorkerPool benchmark, the same function for every pool: `iterations` rounds of an
 * integer hash (xorshift), returning the final state so that a skipped job shows as a wrong sum.
 */
export const work = (seed: number, iterations: number): number => {
  let x = seed | 1
  for (let i = 0; i < iterations; i++) {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
  }
  return x >>> 0
}
