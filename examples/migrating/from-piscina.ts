/**
 * @title Migrating from piscina: the "after" program of packages/core/docs/migrating-from-piscina.md
 *
 * CPU-bound tasks on worker threads, scheduled by a promise pool: each job runs one task on its own thread,
 * and its AbortSignal terminates the thread, so a timed-out or cancelled task really stops (the CPU is given
 * back), and `close` names any job it had to abandon. No `effect` import.
 *
 * Run: `node examples/migrating/from-piscina.ts`
 */
import { createPool, JobError } from "@fiberpool/core/promise"
import { Worker } from "node:worker_threads"

// the worker's code: count the primes below `limit` (a busy loop that never looks at any signal)
const workerSource = `
const { parentPort, workerData } = require("node:worker_threads")
let count = 0
for (let n = 2; n < workerData.limit; n++) {
  let prime = true
  for (let d = 2; d * d <= n; d++) if (n % d === 0) { prime = false; break }
  if (prime) count++
}
parentPort.postMessage(count)
`

/** One task on one thread; aborting the signal terminates the thread. */
const onThread = (limit: number, signal: AbortSignal): Promise<number> =>
  new Promise((resolve, reject) => {
    const worker = new Worker(workerSource, { eval: true, workerData: { limit } })
    const stop = () => void worker.terminate()
    signal.addEventListener("abort", stop, { once: true })
    worker.once("message", (count: number) => {
      signal.removeEventListener("abort", stop)
      void worker.terminate()
      resolve(count)
    })
    worker.once("error", reject)
    worker.once("exit", () => reject(signal.reason ?? new Error("the worker exited")))
  })

const pool = createPool({ name: "primes", concurrency: 2, timeout: "10 seconds" })
const jobs = [10_000, 20_000, 30_000].map((limit) =>
  pool.add((signal) => onThread(limit, signal), { id: `primes-${limit}` })
)
// a task far too big for its budget: the timeout terminates its thread. Its rejection is handled from the start:
// it can come before the counts are in, and an unhandled rejection ends the process
const tooBig = pool.add((signal) => onThread(1e12, signal), { id: "too-big", timeout: 300 }).catch((e: unknown) => e)

console.log("counts:", (await Promise.all(jobs)).join(", "))
const error = await tooBig
console.log("too-big:", error instanceof JobError ? error.reason._tag : String(error))
const report = await pool.close({ gracePeriod: "1 second" })
console.log(`closed: ${report.totals.succeeded} succeeded, ${report.totals.timedOut} timed out`)
