// 09-opentelemetry exports to a stand-in OTLP/HTTP collector that this test starts on 127.0.0.1.
import { assert, describe, it } from "@effect/vitest"
import { fileURLToPath } from "node:url"
import { exitWithin, run } from "../../packages/node/test/utils/spawn.ts"
import { startStandIn as startCollector } from "../shared/otlp-stand-in.ts"
import { runExample } from "./npmScript.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))
const example = fileURLToPath(new URL("../09-opentelemetry.ts", import.meta.url))

describe("examples", () => {
  it("npm run example:09 (09-opentelemetry.ts) exits 0 by itself with its own stand-in collector, prints what arrived", async () => {
    const program = runExample("09-opentelemetry.ts", [], { OTEL_EXPORTER_OTLP_ENDPOINT: "" })
    const { code } = await exitWithin(program, 30_000)
    const output = program.lines.join("\n")
    assert.strictEqual(code, 0, output)
    assert.match(program.lines[0] ?? "", /^09-opentelemetry: /, output)
    assert.include(program.lines, "received 8 spans: process billing ×7, billing run ×1", output)
    assert.ok(
      program.lines.some((line) =>
        /^received \d+ metrics, \d+ fiberpool_\*: .*fiberpool_jobs_succeeded_total/.test(line)
      ),
      output
    )
    assert.include(program.lines, "done, exiting 0", output)
  })

  it("09-opentelemetry.ts sends a span per job attempt and the pool's metrics to an OTLP collector", async () => {
    const collector = await startCollector()
    try {
      const program = run(example, [], root, { OTEL_EXPORTER_OTLP_ENDPOINT: collector.url })
      const { code } = await exitWithin(program, 30_000)
      const output = program.lines.join("\n")
      assert.strictEqual(code, 0, output)
      assert.include(program.lines, "ran 6 jobs: 5 succeeded, 1 failed, 1 retried", output)

      const resources = (collector.received.get("/v1/traces") ?? []).flatMap((body) => body.resourceSpans)
      const service = resources[0]?.resource.attributes.find((a: any) => a.key === "service.name")
      assert.strictEqual(service?.value.stringValue, "fiberpool-example-09")
      const spans = resources.flatMap((r: any) => r.scopeSpans.flatMap((s: any) => s.spans))
      const parent = spans.find((span: any) => span.name === "billing run")
      assert.ok(parent, JSON.stringify(spans.map((s: any) => s.name)))
      // 6 jobs, one of them retried once: 7 attempts, each a span under the submitter's span.
      const attempts = spans.filter((span: any) => span.parentSpanId === parent.spanId)
      assert.strictEqual(attempts.length, 7, JSON.stringify(spans.map((s: any) => [s.name, s.parentSpanId])))
      for (const span of attempts) assert.strictEqual(span.traceId, parent.traceId)
      const text = JSON.stringify(attempts)
      for (let n = 1; n <= 6; n++) assert.include(text, `charge-${n}`)
      // OpenTelemetry's messaging conventions: consumer spans (OTLP kind 5) with messaging.* attributes, and
      // `error.type` on the attempt that failed
      const attribute = (span: any, key: string) => span.attributes.find((a: any) => a.key === key)?.value
      for (const span of attempts) {
        assert.strictEqual(span.name, "process billing")
        assert.strictEqual(span.kind, 5)
        assert.strictEqual(attribute(span, "messaging.destination.name")?.stringValue, "billing")
        assert.match(attribute(span, "messaging.message.id")?.stringValue ?? "", /^charge-\d$/)
      }
      assert.ok(attempts.some((span: any) => attribute(span, "error.type") !== undefined), text)

      const metrics = (collector.received.get("/v1/metrics") ?? []).flatMap((body) =>
        body.resourceMetrics.flatMap((r: any) => r.scopeMetrics.flatMap((s: any) => s.metrics))
      )
      const names = new Set(metrics.map((m: any) => m.name))
      for (
        const name of ["fiberpool_jobs_succeeded_total", "fiberpool_jobs_failed_total", "fiberpool_job_run_seconds"]
      ) {
        assert.ok(names.has(name), `${name} not in ${[...names].join(", ")}`)
      }
      // OTLP units: the duration histograms are in seconds
      assert.strictEqual(metrics.find((m: any) => m.name === "fiberpool_job_run_seconds")?.unit, "s")
    } finally {
      await collector.close()
    }
  })
})
