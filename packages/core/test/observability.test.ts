import { assert, describe, it } from "@effect/vitest"
import { JobEvent, PoolMetrics, WorkerPool } from "@fiberpool/core"
import { Effect, Fiber, Layer, Logger, Metric, References, Schedule, Stream, Tracer } from "effect"
import { PrometheusMetrics } from "effect/observability"
import { TestClock } from "effect/testing"

const isolatedMetrics = Effect.provideService(Metric.MetricRegistry, new Map())

const collect = (events: Stream.Stream<JobEvent.JobEvent>) =>
  Stream.runCollect(Stream.map(events, (e) => `${e._tag} ${e.jobId}#${e.attempt}`))

describe("observability", () => {
  describe("events", () => {
    it.effect("each job's events, in order, ending with exactly one terminal event", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ name: "ev", concurrency: 1, capacity: 1, backpressure: "dropping" })
        const events = yield* WorkerPool.subscribe(pool)
        let calls = 0
        yield* WorkerPool.submit(pool, Effect.suspend(() => ++calls < 2 ? Effect.fail("once") : Effect.succeed("ok")), {
          id: "flaky",
          retry: Schedule.spaced("10 millis")
        })
        yield* WorkerPool.submit(pool, Effect.never, { id: "slow", timeout: "1 second" })
        yield* WorkerPool.submit(pool, Effect.void, { id: "dropped" })
        yield* TestClock.adjust("10 millis")
        const queued = yield* WorkerPool.submit(pool, Effect.void, { id: "cancelled" })
        yield* queued.cancel
        yield* TestClock.adjust("1 second")
        yield* WorkerPool.shutdown(pool)
        assert.deepStrictEqual(yield* collect(events), [
          "Submitted flaky#0",
          "Started flaky#1",
          "AttemptFailed flaky#1",
          "Submitted slow#0",
          "Dropped dropped#0",
          "Started flaky#2",
          "Succeeded flaky#2",
          "Started slow#1",
          "Submitted cancelled#0",
          "Cancelled cancelled#0",
          "TimedOut slow#1"
        ])
      }))

    it.effect("events carry the pool, timings, metadata and the failure's cause", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ name: "timed", concurrency: 1 })
        const events = yield* WorkerPool.subscribe(pool)
        yield* TestClock.adjust("1 second")
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"), { id: "a" })
        const b = yield* WorkerPool.submit(pool, Effect.andThen(Effect.sleep("2 seconds"), Effect.fail("boom")), {
          id: "b",
          metadata: { payload: "invoice 7" }
        })
        yield* TestClock.adjust("3 seconds")
        yield* Effect.exit(b.await)
        yield* WorkerPool.shutdown(pool)
        const all = yield* Stream.runCollect(events)
        const failed = all.find((e) => e._tag === "Failed")!
        assert.strictEqual(failed.pool, "timed")
        assert.strictEqual(failed.jobId, "b")
        assert.strictEqual(failed.submittedAt, 1000)
        assert.strictEqual(failed.startedAt, 2000)
        assert.strictEqual(failed.at, 4000)
        assert.deepStrictEqual(failed.metadata, { payload: "invoice 7" })
        assert.isTrue(failed.cause !== undefined && JobEvent.isTerminal(failed))
        assert.isFalse(JobEvent.isTerminal(all[0]))
      }))

    it.effect("a subscriber that never reads does not block the pool, and loses nothing", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 4 })
        const events = yield* WorkerPool.subscribe(pool)
        yield* Effect.forEach(
          Array.from({ length: 1000 }, (_, i) => i),
          (i) => WorkerPool.run(pool, Effect.succeed(i)),
          {
            concurrency: 8
          }
        )
        assert.strictEqual((yield* WorkerPool.stats(pool)).succeeded, 1000)
        yield* WorkerPool.shutdown(pool)
        const all = yield* Stream.runCollect(events)
        assert.strictEqual(all.length, 3000)
        assert.strictEqual(all.filter((e) => e._tag === "Succeeded").length, 1000)
      }))

    it.effect("a late subscriber sees the terminal events of jobs that end after it subscribed", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 2 })
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"), { id: "early" })
        yield* WorkerPool.run(pool, Effect.void, { id: "done-before" })
        const events = yield* WorkerPool.subscribe(pool)
        yield* TestClock.adjust("1 second")
        yield* WorkerPool.shutdown(pool)
        assert.deepStrictEqual(yield* collect(events), ["Succeeded early#1"])
      }))

    it.effect("a subscription made after shutdown finished ends at once", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1 })
        yield* WorkerPool.shutdown(pool)
        assert.deepStrictEqual(yield* Stream.runCollect(WorkerPool.events(pool)), [])
      }))
  })

  describe("metrics", () => {
    it.effect("counters and gauges agree with stats, labelled by pool", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ name: "m", concurrency: 1, capacity: 1, backpressure: "fail" })
        const value = <S>(metric: Metric.Metric<any, S>, extra: Record<string, string> = {}) =>
          Metric.value(Metric.withAttributes(metric, { pool: "m", ...extra }))
        yield* WorkerPool.run(pool, Effect.void)
        yield* Effect.exit(WorkerPool.run(pool, Effect.fail("x")))
        yield* Effect.exit(WorkerPool.run(pool, Effect.die("y")))
        yield* WorkerPool.submit(pool, Effect.sleep("1 second"))
        yield* WorkerPool.submit(pool, Effect.void)
        yield* Effect.exit(WorkerPool.submit(pool, Effect.void))
        assert.strictEqual((yield* value(PoolMetrics.running)).value, 1)
        assert.strictEqual((yield* value(PoolMetrics.queued)).value, 1)
        yield* TestClock.adjust("1 second")
        const stats = yield* WorkerPool.stats(pool)
        assert.strictEqual((yield* value(PoolMetrics.submitted)).count, stats.submitted)
        assert.strictEqual(stats.submitted, 5)
        assert.strictEqual((yield* value(PoolMetrics.succeeded)).count, 3)
        assert.strictEqual((yield* value(PoolMetrics.failed)).count, 2)
        assert.strictEqual((yield* value(PoolMetrics.rejected, { reason: "queue_full" })).count, 1)
        assert.strictEqual((yield* value(PoolMetrics.rejected, { reason: "closed" })).count, 0)
        assert.strictEqual((yield* value(PoolMetrics.running)).value, 0)
        const wait = yield* value(PoolMetrics.waitSeconds)
        const run = yield* value(PoolMetrics.runSeconds)
        assert.strictEqual(wait.count, 5)
        assert.strictEqual(run.count, 5)
        assert.strictEqual(run.max, 1)
        assert.strictEqual(wait.max, 1)
      }).pipe(isolatedMetrics))

    it.effect("the Prometheus text names every fiberpool metric with its pool label", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ name: "prom", concurrency: 2 })
        yield* WorkerPool.run(pool, Effect.void)
        const text = yield* PrometheusMetrics.format()
        for (
          const line of [
            "fiberpool_jobs_submitted_total{pool=\"prom\"} 1",
            "fiberpool_jobs_succeeded_total{pool=\"prom\"} 1",
            "fiberpool_jobs_running{pool=\"prom\"} 0",
            "# TYPE fiberpool_job_run_seconds histogram"
          ]
        ) assert.include(text, line)
        assert.match(text, /fiberpool_jobs_rejected_total\{[^}]*reason="dropped"[^}]*\} 0/)
      }).pipe(isolatedMetrics))
  })

  describe("tracing and logs", () => {
    const recordingTracer = () => {
      const spans: Array<Tracer.Span> = []
      const tracer = Tracer.make({
        span: (options) => {
          const span = Tracer.nativeTracer.span(options)
          spans.push(span)
          return span
        }
      })
      return { spans, tracer }
    }

    it.effect("each attempt is a span, a child of the submitter's span, with the job id and attempt", () =>
      Effect.gen(function*() {
        const { spans, tracer } = recordingTracer()
        const pool = yield* WorkerPool.make({ concurrency: 1 })
        let calls = 0
        yield* WorkerPool.run(
          pool,
          Effect.suspend(() => ++calls < 2 ? Effect.fail({ _tag: "Declined" as const }) : Effect.void),
          { id: "traced", retry: Schedule.recurs(1) }
        ).pipe(Effect.withSpan("handler"), Effect.provideService(Tracer.Tracer, tracer))
        const handler = spans.find((s) => s.name === "handler")!
        // OpenTelemetry's messaging conventions: `process <destination>`, a consumer span
        const attempts = spans.filter((s) => s.name === "process fiberpool")
        assert.strictEqual(attempts.length, 2, spans.map((s) => s.name).join(", "))
        for (const [i, span] of attempts.entries()) {
          assert.strictEqual(span.parent._tag === "Some" && span.parent.value.spanId, handler.spanId)
          assert.strictEqual(span.kind, "consumer")
          assert.strictEqual(span.attributes.get("messaging.system"), "fiberpool")
          assert.strictEqual(span.attributes.get("messaging.operation.type"), "process")
          assert.strictEqual(span.attributes.get("messaging.destination.name"), "fiberpool")
          assert.strictEqual(span.attributes.get("messaging.message.id"), "traced")
          assert.strictEqual(span.attributes.get("fiberpool.job"), "traced")
          assert.strictEqual(span.attributes.get("fiberpool.attempt"), i + 1)
          assert.strictEqual(span.attributes.get("fiberpool.wait_ms"), 0)
        }
        assert.strictEqual(attempts[0].attributes.get("error.type"), "Declined")
        assert.isFalse(attempts[1].attributes.has("error.type"))
      }))

    it.effect("no spans with the built-in tracer unless asked for", () =>
      Effect.gen(function*() {
        const pool = yield* WorkerPool.make({ concurrency: 1 })
        const always = yield* WorkerPool.make({ concurrency: 1, spans: "always" })
        const current = Effect.map(Effect.option(Effect.currentSpan), (span) =>
          span._tag === "Some" ? span.value.name : "none")
        assert.strictEqual(yield* WorkerPool.run(pool, current), "none")
        assert.strictEqual(yield* WorkerPool.run(always, current), "process fiberpool")
      }))

    it.effect("everything a job logs is annotated with the pool, the job id and (on retries) the attempt", () =>
      Effect.gen(function*() {
        const lines: Array<Record<string, unknown>> = []
        const capture = Logger.make((options) => {
          lines.push({ ...options.fiber.getRef(References.CurrentLogAnnotations) })
        })
        const pool = yield* WorkerPool.make({ name: "logs", concurrency: 1 })
        let calls = 0
        yield* WorkerPool.run(
          pool,
          Effect.andThen(
            Effect.logInfo("working"),
            Effect.suspend(() => ++calls < 2 ? Effect.fail("again") : Effect.void)
          ),
          { id: "j1", retry: Schedule.recurs(1) }
        ).pipe(Effect.annotateLogs("request", "r-9"), Effect.provide(Logger.layer([capture])))
        assert.deepStrictEqual(lines, [
          { request: "r-9", "fiberpool.pool": "logs", "fiberpool.job": "j1" },
          { request: "r-9", "fiberpool.pool": "logs", "fiberpool.job": "j1", "fiberpool.attempt": 2 }
        ])
      }))
  })

  it.effect("a layer provides the pool and its events to an app", () =>
    Effect.gen(function*() {
      const program = Effect.gen(function*() {
        const pool = yield* WorkerPool.Service
        const events = yield* WorkerPool.subscribe(pool)
        const reader = yield* Effect.forkChild(Stream.runCollect(Stream.take(events, 3)), { startImmediately: true })
        yield* WorkerPool.run(pool, Effect.void)
        return (yield* Fiber.join(reader)).map((e) => e._tag)
      })
      const tags = yield* Effect.scoped(program).pipe(Effect.provide(Layer.fresh(WorkerPool.layer({ concurrency: 1 }))))
      assert.deepStrictEqual(tags, ["Submitted", "Started", "Succeeded"])
    }))
})
