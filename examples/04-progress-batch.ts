/**
 * @title A batch with a progress bar and a shutdown report
 *
 * Runs a batch of 300 jobs on 8 workers with a live progress bar in a terminal (one line per second when the
 * output is not a terminal), then prints the shutdown report as a table.
 *
 * Run: npm run example:04
 */
import { type Shutdown, WorkerPool } from "@fiberpool/core"
import { NodeShutdown } from "@fiberpool/node"
import { Data, Effect, Fiber, Schedule } from "effect"

class InvalidRecord extends Data.TaggedError("InvalidRecord")<{ readonly record: number }> {}

const total = 300
const tty = process.stdout.isTTY === true

// Deterministic "random" durations, so that every run does the same work.
const durationOf = (n: number) => 20 + ((n * 7919) % 81) // 20–100 ms
const isInvalid = (n: number) => n % 47 === 0 // 6 records fail
const isStuck = (n: number) => n % 97 === 0 // 3 records hang past the 300 ms timeout

const importRecord = (n: number) =>
  Effect.gen(function*() {
    yield* Effect.sleep(isStuck(n) ? "10 seconds" : `${durationOf(n)} millis`)
    if (isInvalid(n)) return yield* new InvalidRecord({ record: n })
    return n
  })

const bar = (stats: WorkerPool.Stats, elapsedMs: number) => {
  const done = stats.succeeded + stats.failed + stats.timedOut + stats.cancelled + stats.interrupted
  const width = 30
  const filled = Math.round((done / total) * width)
  const percent = String(Math.round((done / total) * 100)).padStart(3)
  return `[${"#".repeat(filled)}${"-".repeat(width - filled)}] ${percent}% ${done}/${total} ` +
    `running ${stats.running} queued ${stats.queued} failed ${stats.failed + stats.timedOut} ` +
    `(${(elapsedMs / 1000).toFixed(1)} s)`
}

const table = (report: Shutdown.Report) => {
  const t = report.totals
  const rows: ReadonlyArray<readonly [string, number]> = [
    ["submitted", t.submitted],
    ["succeeded", t.succeeded],
    ["failed", t.failed],
    ["timed out", t.timedOut],
    ["cancelled", t.cancelled],
    ["interrupted", t.interrupted],
    ["abandoned", t.abandoned],
    ["rejected", t.rejected]
  ]
  const line = `+${"-".repeat(13)}+${"-".repeat(8)}+${"-".repeat(8)}+`
  const out = [line, `| ${"outcome".padEnd(11)} | ${"jobs".padStart(6)} | ${"share".padStart(6)} |`, line]
  for (const [outcome, count] of rows) {
    const share = `${((count / t.submitted) * 100).toFixed(1)}%`
    out.push(`| ${outcome.padEnd(11)} | ${String(count).padStart(6)} | ${share.padStart(6)} |`)
  }
  out.push(line)
  return out.join("\n")
}

const program = Effect.gen(function*() {
  console.log(`04-progress-batch: ${total} jobs on 8 workers (${tty ? "live bar" : "one line per second"})`)
  const pool = yield* WorkerPool.make({ name: "import", concurrency: 8, timeout: "300 millis" })
  const started = performance.now()
  const draw = Effect.flatMap(WorkerPool.stats(pool), (stats) =>
    Effect.sync(() => {
      const text = bar(stats, performance.now() - started)
      if (tty) process.stdout.write(`\r${text}\x1b[K`)
      else console.log(text)
    }))
  const progress = yield* draw.pipe(
    Effect.repeat(Schedule.spaced(tty ? "100 millis" : "1 second")),
    Effect.forkChild({ startImmediately: true })
  )

  for (let n = 1; n <= total; n++) yield* WorkerPool.submit(pool, importRecord(n), { id: `record-${n}` })
  yield* WorkerPool.awaitIdle(pool)
  yield* Fiber.interrupt(progress)
  yield* draw
  if (tty) process.stdout.write("\n")

  const report = yield* WorkerPool.shutdown(pool)
  console.log(`batch finished in ${((performance.now() - started) / 1000).toFixed(1)} s; shutdown report:`)
  console.log(table(report))
}).pipe(Effect.scoped)

NodeShutdown.runMain(program)
