/**
 * @title The classic worker pool, done right
 *
 * Three workers take jobs (an id and a payload) from a bounded queue, each job has a deadline, one job fails
 * and is tracked, and the pool shuts down gracefully with a report of what happened to every job.
 *
 * Run: npm start (or npm run example:01)
 *
 * Ctrl-C (or SIGTERM) during the run stops the intake and drains what was accepted; the results and the report
 * are printed either way.
 */
import { type Job, WorkerPool } from "@fiberpool/core"
import { NodeShutdown } from "@fiberpool/node"
import { Data, Effect, Exit } from "effect"

// A job's payload, as in the Go pattern: `type Job struct { ID int; Payload string }`.
interface Thumbnail {
  readonly file: string
  readonly sizeKb: number
}

// A typed failure: it flows through the pool unchanged, so callers can match on it.
class CorruptImage extends Data.TaggedError("CorruptImage")<{ readonly file: string }> {}

const jobs: ReadonlyArray<Thumbnail> = [
  { file: "cat.png", sizeKb: 120 },
  { file: "dog.jpg", sizeKb: 200 },
  { file: "bird.gif", sizeKb: 80 },
  { file: "broken.png", sizeKb: 0 },
  { file: "fox.jpg", sizeKb: 160 },
  { file: "panorama.tiff", sizeKb: 2400 },
  { file: "owl.png", sizeKb: 90 },
  { file: "bee.webp", sizeKb: 60 }
]

const log = (line: string) => Effect.sync(() => console.log(line))

// The work: about 1 ms per KB. A zero-byte file is corrupt; the panorama is too slow for its deadline.
const makeThumbnail = (id: string, { file, sizeKb }: Thumbnail) =>
  Effect.gen(function*() {
    yield* log(`  ${id} started   ${file}`)
    if (sizeKb === 0) return yield* new CorruptImage({ file })
    yield* Effect.sleep(`${Math.min(sizeKb, 1000)} millis`)
    return `${file.replace(/\.\w+$/, "")}-thumb.png`
  }).pipe(Effect.onInterrupt(() => log(`  ${id} stopped   ${file} (deadline passed, cleaned up)`)))

// What happened to every job, and the pool's report: printed at the end of the run, and also when a signal
// (Ctrl-C, SIGTERM) cuts the run short, because it runs as a finalizer of the program's scope.
const printResults = (pool: WorkerPool.WorkerPool, handles: ReadonlyArray<Job.JobHandle<string, CorruptImage>>) =>
  Effect.gen(function*() {
    // Idempotent: after a signal the pool is already shutting down, and this waits for the same report.
    const report = yield* WorkerPool.shutdown(pool)
    yield* log("results:")
    for (const handle of handles) {
      const exit = yield* handle.exit
      if (Exit.isSuccess(exit)) {
        yield* log(`  ${handle.id} succeeded -> ${exit.value}`)
      } else {
        const error = exit.cause.reasons.find((reason) => reason._tag === "Fail")?.error
        const why = error === undefined
          ? "defect"
          : error._tag === "CorruptImage"
          ? `CorruptImage (${error.file})`
          : `${error.reason._tag}: ${error.reason.message}`
        yield* log(`  ${handle.id} failed    -> ${why}`)
      }
    }
    const t = report.totals
    yield* log(
      `shutdown report (${report.durationMillis} ms, grace expired: ${report.graceExpired}): ` +
        `${t.submitted} submitted, ${t.succeeded} succeeded, ${t.failed} failed, ${t.timedOut} timed out, ` +
        `${t.cancelled} cancelled, ${t.interrupted} interrupted, ${t.abandoned} abandoned`
    )
  })

const program = Effect.gen(function*() {
  // 3 workers, at most 2 jobs waiting: a producer that runs ahead waits for room (backpressure).
  const pool = yield* WorkerPool.make({
    name: "thumbnails",
    concurrency: 3,
    capacity: 2,
    shutdown: { mode: "drain", gracePeriod: "5 seconds" }
  })
  yield* log(`01-basic-pool: ${pool.concurrency} workers, queue of ${pool.capacity}, ${jobs.length} jobs`)

  const handles: Array<Job.JobHandle<string, CorruptImage>> = []
  yield* Effect.addFinalizer(() => Effect.orDie(printResults(pool, handles)))

  for (const [index, payload] of jobs.entries()) {
    const id = `job-${index + 1}`
    // Each job gets 500 ms from the moment it starts.
    const handle = yield* WorkerPool.submit(pool, makeThumbnail(id, payload), { id, timeout: "500 millis" })
    const { queued, running } = yield* WorkerPool.stats(pool)
    yield* log(`submitted ${id} (${payload.file}, ${payload.sizeKb} KB): ${running} running, ${queued} queued`)
    handles.push(handle)
  }

  // close(jobs) + wg.Wait() with a timeout: no new jobs, the queued ones still run, bounded by the grace period.
  yield* log("all jobs submitted: shutting down, draining the queue")
}).pipe(Effect.scoped)

NodeShutdown.runMain(program)
