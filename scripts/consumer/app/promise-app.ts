// A consumer who never imports `effect`: plain async functions through `@fiberpool/core/promise`, with a
// timeout that aborts the job's signal, a user signal, progress, backpressure told, invalid options and the
// shutdown report. Type-checked without @types/node, run on plain Node (24 and the system's 20), bundled.
import { createPool, JobError, PoolError, type ShutdownReport } from "@fiberpool/core/promise"

const untilAborted = (signal: AbortSignal): Promise<never> =>
  new Promise((_, reject) => signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true }))

const main = async () => {
  let invalid = ""
  try {
    createPool({ concurrency: 0 })
  } catch (error) {
    if (error instanceof PoolError) invalid = `${error.reason._tag} ${error.message}`
  }
  const pool = createPool({ name: "consumer-promise", concurrency: 2, capacity: 4, timeout: "5 seconds" })
  const values: Array<string> = await Promise.all(
    ["a", "b", "c"].map((id) => pool.add(async (_signal, ctx) => `${ctx.id}:${id.toUpperCase()}`, { id }))
  )
  const timedOut = await pool.add(untilAborted, { timeout: 20 }).catch((error: unknown) =>
    error instanceof JobError ? error.reason._tag : String(error)
  )
  const controller = new AbortController()
  const cancelled = pool.add(untilAborted, { signal: controller.signal }).catch((error: unknown) =>
    error instanceof JobError ? error.reason._tag : String(error)
  )
  setTimeout(() => controller.abort(), 10)
  const progress: Array<unknown> = []
  await pool.add(async (_signal, ctx) => ctx.progress("half"), { onProgress: (value) => progress.push(value) })
  const own = await pool.add(async () => {
    throw new RangeError("mine")
  }).catch((error: unknown) => error instanceof RangeError ? error.message : "wrapped")
  await pool.onIdle()
  const report: ShutdownReport = await pool.close({ gracePeriod: "1 second" })
  console.log(JSON.stringify({
    invalid,
    values,
    timedOut,
    cancelled: await cancelled,
    progress,
    own,
    succeeded: report.totals.succeeded,
    size: pool.size + pool.pending
  }))
}

// a rejection here ends the process with a non-zero exit
await main()
