/**
 * piscina, for the shutdown scenario only: 2 threads (this machine's cores) running 50 tasks each at once.
 * Graceful waits for the tasks' promises, then `close()`; forced is `destroy()`, which terminates the threads, so
 * the tasks' own cleanup never runs (reported as "n/a", not as a failure).
 */
import { Piscina } from "piscina"
import type { Peer } from "../lib.ts"
import { now, sleep } from "../lib.ts"

export const peer: Peer = {
  shutdown: async ({ jobMs, jobs, mode }, tracker) => {
    const threads = 2
    const pool = new Piscina({
      filename: new URL("./piscina-worker.ts", import.meta.url).href,
      minThreads: threads,
      maxThreads: threads,
      concurrentTasksPerWorker: Math.ceil(jobs / threads)
    })
    // boot the threads outside the measured time
    await Promise.all(Array.from({ length: threads * 4 }, () => pool.run({ ms: 1 })))
    const startedAt = now()
    const results: Array<Promise<number>> = []
    for (let i = 0; i < jobs; i++) results.push(pool.run({ ms: jobMs }))
    const settling = Promise.allSettled(results)
    if (mode === "forced") await sleep(20)
    const shutdownAt = now()
    if (mode === "graceful") {
      // close() alone is not a drain here: with several tasks per thread it returned while tasks still ran
      // and rejected them (2 to 49 of the 100 lost, observed on piscina 5.3.2), so wait for the tasks first
      await settling
      await pool.close()
    } else {
      await pool.destroy()
    }
    const settled = await settling
    const doneAt = now()
    let completed = 0
    for (let i = 0; i < jobs; i++) {
      const s = settled[i]
      if (s.status === "fulfilled" && s.value === 1) {
        completed++
        tracker.hit(i)
      }
    }
    return { shutdownMs: doneAt - shutdownAt, totalMs: doneAt - startedAt, completed, finalized: undefined }
  }
}
