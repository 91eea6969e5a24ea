/**
 * @title Migrating from p-queue: the "after" program of packages/core/docs/migrating-from-p-queue.md
 *
 * The same crawl as the guide's p-queue "before": 6 pages, 2 at a time, a per-page timeout, one page
 * cancelled by the caller, then a close that waits for the rest. Plain async functions, no `effect` import.
 *
 * Run: `node examples/migrating/from-p-queue.ts`
 */
import { createPool, JobError } from "@fiberpool/core/promise"

const fetchPage = async (url: string, signal: AbortSignal): Promise<number> => {
  // stands in for `fetch(url, { signal })`: 20 ms per page, 500 ms for the slow one, stops on abort
  const ms = url.endsWith("/slow") ? 500 : 20
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener("abort", () => {
      clearTimeout(timer)
      reject(signal.reason)
    }, { once: true })
  })
  return url.length
}

const pool = createPool({ name: "crawler", concurrency: 2, capacity: 100, timeout: "5 seconds" })
const urls = ["/a", "/b", "/c", "/slow", "/d", "/e"].map((path) => `https://example.com${path}`)
const userCancel = new AbortController()

const jobs = urls.map((url) =>
  pool.add((signal) => fetchPage(url, signal), {
    id: url,
    timeout: 200,
    // the caller gives up on /e while it is still queued
    ...(url.endsWith("/e") ? { signal: userCancel.signal } : {})
  })
)
userCancel.abort()
const results = await Promise.allSettled(jobs)
for (const [i, result] of results.entries()) {
  const outcome = result.status === "fulfilled"
    ? `${result.value} bytes`
    : result.reason instanceof JobError
    ? result.reason.reason._tag
    : String(result.reason)
  console.log(`${urls[i]}: ${outcome}`)
}
const report = await pool.close({ gracePeriod: "1 second" })
console.log(
  `closed: ${report.totals.succeeded} succeeded, ${report.totals.timedOut} timed out, ${report.totals.cancelled} cancelled`
)
