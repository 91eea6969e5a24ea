/**
 * @title OpenTelemetry: a pool's traces and metrics through Effect's built-in OTLP exporter
 *
 * Runs 6 jobs (one fails, one retries) with a span per job attempt, under a parent span, and exports traces,
 * metrics and logs as OTLP/HTTP JSON with `effect/observability`'s `Otlp.layerJson`. It sends them to
 * `OTEL_EXPORTER_OTLP_ENDPOINT` (a real collector: `http://127.0.0.1:4318`); without it, to a stand-in
 * collector it starts on 127.0.0.1, and prints what arrived. Exits 0 by itself.
 *
 * Run: npm run example:09
 */
import { WorkerPool } from "@fiberpool/core"
import { NodeShutdown } from "@fiberpool/node"
import { Data, Effect, Layer } from "effect"
import { FetchHttpClient } from "effect/http"
import { Otlp } from "effect/observability"
import { startStandIn } from "./shared/otlp-stand-in.ts"

class Declined extends Data.TaggedError("Declined")<{ readonly job: number }> {}
class Flaky extends Data.TaggedError("Flaky")<{ readonly job: number }> {}

const log = (line: string) => Effect.sync(() => console.log(line))

/** A stand-in collector (see shared/otlp-stand-in.ts), closed with the program's scope. */
const standIn = Effect.acquireRelease(Effect.promise(startStandIn), (collector) => Effect.promise(collector.close))

const jobs = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ name: "billing", concurrency: 2, spans: "always" })
  yield* Effect.forEach([1, 2, 3, 4, 5, 6], (n) => {
    let tries = 0
    const job = Effect.sleep(`${20 * n} millis`).pipe(
      Effect.andThen(
        Effect.suspend((): Effect.Effect<number, Declined | Flaky> =>
          n === 4
            ? Effect.fail(new Declined({ job: n }))
            : n === 5 && ++tries === 1
            ? Effect.fail(new Flaky({ job: n }))
            : Effect.succeed(n)
        )
      )
    )
    return WorkerPool.run(pool, job, { id: `charge-${n}`, retry: { times: 1, while: (e) => e._tag === "Flaky" } }).pipe(
      Effect.exit
    )
  }, { concurrency: "unbounded" })
  const stats = yield* WorkerPool.stats(pool)
  yield* log(`ran 6 jobs: ${stats.succeeded} succeeded, ${stats.failed} failed, ${stats.retries} retried`)
}).pipe(Effect.scoped, Effect.withSpan("billing run"))

const exporting = (baseUrl: string) =>
  jobs.pipe(
    Effect.provide(
      Otlp.layerJson({
        baseUrl,
        resource: { serviceName: "fiberpool-example-09" },
        loggerMergeWithExisting: true,
        tracerExportInterval: "200 millis",
        metricsExportInterval: "200 millis",
        shutdownTimeout: "3 seconds"
      }).pipe(Layer.provide(FetchHttpClient.layer))
    )
  )

const program = Effect.gen(function*() {
  const endpoint = process.env.OTEL_EXPORTER_OTLP_ENDPOINT
  if (endpoint !== undefined && endpoint !== "") {
    yield* log(`exporting to ${endpoint}`)
    yield* exporting(endpoint)
    yield* log("flushed, exiting 0")
    return
  }
  const collector = yield* standIn
  yield* log(`exporting to a stand-in collector on ${collector.url}`)
  // Closing the exporter's layer flushes what is buffered.
  yield* exporting(collector.url)
  const spans = (collector.received.get("/v1/traces") ?? []).flatMap((body) =>
    body.resourceSpans.flatMap((r: any) => r.scopeSpans.flatMap((s: any) => s.spans))
  )
  const names = new Map<string, number>()
  for (const span of spans) names.set(span.name, (names.get(span.name) ?? 0) + 1)
  yield* log(`received ${spans.length} spans: ${[...names].map(([name, count]) => `${name} ×${count}`).join(", ")}`)
  const metricNames = new Set(
    (collector.received.get("/v1/metrics") ?? []).flatMap((body) =>
      body.resourceMetrics.flatMap((r: any) => r.scopeMetrics.flatMap((s: any) => s.metrics.map((m: any) => m.name)))
    )
  )
  const ours = [...metricNames].filter((name) => name.startsWith("fiberpool_")).sort()
  yield* log(`received ${metricNames.size} metrics, ${ours.length} fiberpool_*: ${ours.join(", ")}`)
  yield* log("done, exiting 0")
}).pipe(Effect.scoped)

NodeShutdown.runMain(
  log("09-opentelemetry: a pool's spans and metrics through Effect's OTLP exporter").pipe(Effect.andThen(program))
)
