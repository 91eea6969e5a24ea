import { assert, describe, it } from "@effect/vitest"
import { DurableQueue, JobType } from "@fiberpool/durable"
import { Deferred, Effect, Schema } from "effect"
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import { makeRecordingTracer, type RecordedSpan } from "./utils/spans.ts"
import { pgUrl, redisUrl, startConsumer, stores } from "./utils/stores.ts"

const fixture = Path.join(import.meta.dirname, "fixtures", "traced-producer.ts")

describe.each(stores.filter((store) => store.shared))("traces across processes on $name", (store) => {
  const test = store.skip ? it.live.skip : it.live

  test(
    "the worker's job span is the child of the producer's span, the handler's spans children of the job span",
    () =>
      Effect.gen(function*() {
        const connect = yield* store.open
        const { recorded, tracer } = makeRecordingTracer()
        const done = yield* Deferred.make<void>()
        const Email = JobType.make({
          name: "email",
          payload: Schema.Struct({ to: Schema.String }),
          handler: () => Effect.withSpan(Deferred.succeed(done, undefined), "smtp.send")
        })
        // the worker starts under a span of its own: job spans must not land in it
        yield* startConsumer(connect(), { types: [Email], concurrency: 2 }).pipe(
          Effect.withSpan("worker.startup"),
          Effect.withTracer(tracer)
        )

        const db = store.name === "sqlite" ? connect.filename! : store.name === "redis" ? redisUrl! : pgUrl!
        const output = yield* Effect.promise(() =>
          new Promise<string>((resolve, reject) =>
            ChildProcess.execFile(
              process.execPath,
              [fixture],
              {
                env: {
                  ...process.env,
                  STORE: store.name,
                  DB: db,
                  QUEUE: connect.queueName,
                  PREFIX: connect.prefix ?? ""
                },
                timeout: 20_000
              },
              (error, stdout) => error ? reject(error) : resolve(stdout)
            )
          )
        )
        const producerSpans = JSON.parse(output.trim().split("\n").at(-1)!) as Array<RecordedSpan>
        yield* Deferred.await(done).pipe(Effect.timeout("10 seconds"))

        const checkout = producerSpans.find((span) => span.name === "checkout")!
        const send = producerSpans.find((span) => span.name === `send ${connect.queueName}`)
        assert.isDefined(send, "the producer's enqueue span")
        assert.strictEqual(send!.parentSpanId, checkout.spanId)
        assert.strictEqual(send!.kind, "producer")
        assert.deepInclude(send!.attributes, {
          "messaging.system": "fiberpool",
          "messaging.destination.name": connect.queueName,
          "messaging.operation.type": "send",
          "messaging.message.id": "traced-1"
        })

        const spans = recorded()
        const job = spans.find((span) => span.name === `process ${connect.queueName}`)
        assert.isDefined(job, "the worker's job span")
        assert.strictEqual(job!.traceId, checkout.traceId, "in the producer's trace")
        assert.strictEqual(job!.parentSpanId, send!.spanId, "a child of the producer's span")
        assert.strictEqual(job!.kind, "consumer")
        assert.deepInclude(job!.attributes, {
          "messaging.system": "fiberpool",
          "messaging.destination.name": connect.queueName,
          "messaging.operation.type": "process",
          "messaging.message.id": "traced-1",
          "fiberpool.job.type": "email",
          "fiberpool.attempt": 1
        })
        const smtp = spans.find((span) => span.name === "smtp.send")
        assert.strictEqual(smtp?.parentSpanId, job!.spanId, "the handler's span is a child of the job span")
        assert.strictEqual(smtp?.traceId, checkout.traceId)
        const startup = spans.find((span) => span.name === "worker.startup")!
        assert.notStrictEqual(job!.traceId, startup.traceId, "the job is not in the worker's startup trace")
      }),
    30_000
  )

  test("a job enqueued without tracing starts its own trace", () =>
    Effect.gen(function*() {
      const connect = yield* store.open
      const { recorded, tracer } = makeRecordingTracer()
      const done = yield* Deferred.make<void>()
      const Ping = JobType.make({
        name: "ping",
        payload: Schema.String,
        handler: () => Deferred.succeed(done, undefined)
      })
      yield* startConsumer(connect(), { types: [Ping], concurrency: 1 }).pipe(
        Effect.withSpan("worker.startup"),
        Effect.withTracer(tracer)
      )
      yield* DurableQueue.enqueue(Ping, "hi").pipe(Effect.provide(connect()))
      yield* Deferred.await(done).pipe(Effect.timeout("10 seconds"))
      const job = recorded().find((span) => span.name === `process ${connect.queueName}`)
      assert.isDefined(job)
      assert.isUndefined(job!.parentSpanId, "a root span")
    }), 30_000)
})
