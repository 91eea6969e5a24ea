/**
 * @title Metrics endpoint
 *
 * Serves the pool's metrics on 127.0.0.1 (a free port), runs a few jobs, then scrapes its own `/metrics`,
 * `/health` and `/ready` and prints the `fiberpool_*` lines, the way Prometheus would see them.
 *
 * Run: npm run example:05
 */
import { WorkerPool } from "@fiberpool/core"
import { NodeMetrics, NodeShutdown } from "@fiberpool/node"
import { Data, Effect } from "effect"

class Flaky extends Data.TaggedError("Flaky")<{ readonly n: number }> {}

const log = (line: string) => Effect.sync(() => console.log(line))

const get = (url: string) =>
  Effect.promise(async () => {
    const response = await fetch(url)
    return { status: response.status, body: await response.text() }
  })

const program = Effect.gen(function*() {
  const { url } = yield* NodeMetrics.Endpoint

  const pool = yield* WorkerPool.make({ name: "reports", concurrency: 4, timeout: "200 millis" })
  const jobs = Array.from({ length: 20 }, (_, i) => i + 1)
  yield* log(`running ${jobs.length} jobs: every 7th fails, the 10th is too slow for its 200 ms timeout`)
  yield* Effect.forEach(
    jobs,
    (n) =>
      WorkerPool.run(
        pool,
        Effect.sleep(n === 10 ? "1 second" : `${10 + (n % 5) * 10} millis`).pipe(
          Effect.andThen(n % 7 === 0 ? Effect.fail(new Flaky({ n })) : Effect.succeed(n))
        ),
        { id: `report-${n}` }
      ).pipe(Effect.exit),
    { concurrency: "unbounded" }
  )
  const stats = yield* WorkerPool.stats(pool)
  yield* log(`pool stats: ${stats.succeeded} succeeded, ${stats.failed} failed, ${stats.timedOut} timed out`)

  yield* log(`GET /health -> ${(yield* get(`${url}/health`)).status}`)
  yield* log(`GET /ready  -> ${(yield* get(`${url}/ready`)).status}`)
  const scrape = yield* get(`${url}/metrics`)
  const lines = scrape.body.split("\n").filter((line) => line.length > 0)
  const ours = lines.filter((line) => /^(# (HELP|TYPE) )?fiberpool_/.test(line))
  yield* log(`GET /metrics -> ${scrape.status}, ${lines.length} lines, ${ours.length} about fiberpool_*:`)
  for (const line of ours.length > 0 ? ours : lines) yield* log(`  ${line}`)
  if (ours.length === 0) yield* log("  (no fiberpool_* metrics in this build: the lines above are all there was)")
  yield* log("done, exiting 0")
}).pipe(Effect.scoped, Effect.provide(NodeMetrics.layer({ port: 0 })))

NodeShutdown.runMain(
  Effect.andThen(log("05-metrics-endpoint: a pool, its /metrics on 127.0.0.1, one scrape"), program)
)
