import { assert, describe, it } from "@effect/vitest"
import { Shutdown, WorkerPool } from "@fiberpool/core"
import { NodeMetrics } from "@fiberpool/node"
import { Effect, Metric } from "effect"

const get = (url: string) =>
  Effect.promise(async () => {
    const response = await fetch(url)
    return { status: response.status, body: await response.text(), type: response.headers.get("content-type") }
  })

describe("NodeMetrics endpoint on 127.0.0.1", () => {
  it.live("port 0 binds a free port on loopback and reports it", () =>
    Effect.gen(function*() {
      const endpoint = yield* NodeMetrics.make({ port: 0 })
      assert.strictEqual(endpoint.host, "127.0.0.1")
      assert.isAbove(endpoint.port, 0)
      assert.strictEqual(endpoint.url, `http://127.0.0.1:${endpoint.port}`)
      assert.strictEqual((yield* get(`${endpoint.url}/health`)).status, 200)
    }).pipe(Effect.scoped))

  it.live("/metrics serves Prometheus text with the process's metrics", () =>
    Effect.gen(function*() {
      yield* Metric.update(Metric.counter("fiberpool_test_scrapes_total"), 2)
      const pool = yield* WorkerPool.make({ name: "scraped", concurrency: 1 })
      yield* WorkerPool.run(pool, Effect.void)
      const endpoint = yield* NodeMetrics.make({ port: 0 })
      const scrape = yield* get(`${endpoint.url}/metrics`)
      assert.strictEqual(scrape.status, 200)
      assert.match(scrape.type ?? "", /^text\/plain; version=0\.0\.4/)
      assert.include(scrape.body, "# TYPE fiberpool_test_scrapes_total counter")
      assert.include(scrape.body, "fiberpool_test_scrapes_total 2")
    }).pipe(Effect.scoped))

  it.live("/ready follows the controller: 200 while running, 503 once shutdown begins", () =>
    Effect.gen(function*() {
      const controller = Shutdown.makeController()
      const endpoint = yield* NodeMetrics.make({ port: 0, controller })
      assert.strictEqual((yield* get(`${endpoint.url}/ready`)).status, 200)
      controller.requestUnsafe("graceful")
      const ready = yield* get(`${endpoint.url}/ready`)
      assert.strictEqual(ready.status, 503)
      assert.strictEqual((yield* get(`${endpoint.url}/health`)).status, 200)
    }).pipe(Effect.scoped))

  it.live("/ready reads Shutdown.CurrentController by default", () =>
    Effect.gen(function*() {
      const controller = Shutdown.makeController()
      const endpoint = yield* NodeMetrics.make({ port: 0 }).pipe(
        Effect.provideService(Shutdown.CurrentController, controller)
      )
      controller.requestUnsafe("forced")
      assert.strictEqual((yield* get(`${endpoint.url}/ready`)).status, 503)
    }).pipe(Effect.scoped))

  it.live("unknown routes get 404, other methods 405", () =>
    Effect.gen(function*() {
      const endpoint = yield* NodeMetrics.make({ port: 0 })
      assert.strictEqual((yield* get(`${endpoint.url}/nope`)).status, 404)
      assert.strictEqual((yield* get(`${endpoint.url}/metrics/extra`)).status, 404)
      const post = yield* Effect.promise(() => fetch(`${endpoint.url}/metrics`, { method: "POST" }))
      assert.strictEqual(post.status, 405)
    }).pipe(Effect.scoped))

  it.live("a busy port fails with ListenError EADDRINUSE", () =>
    Effect.gen(function*() {
      const first = yield* NodeMetrics.make({ port: 0 })
      const error = yield* Effect.flip(Effect.scoped(NodeMetrics.make({ port: first.port })))
      assert.instanceOf(error, NodeMetrics.ListenError)
      assert.strictEqual(error._tag, "ListenError")
      if (error._tag === "ListenError") {
        assert.strictEqual(error.code, "EADDRINUSE")
        assert.strictEqual(error.port, first.port)
      }
      // the first endpoint is unaffected
      assert.strictEqual((yield* get(`${first.url}/health`)).status, 200)
    }).pipe(Effect.scoped))

  it.live("invalid port and host fail with InvalidOptions naming the option", () =>
    Effect.gen(function*() {
      for (const port of [-1, 65536, 1.5, Number.NaN]) {
        const error = yield* Effect.flip(Effect.scoped(NodeMetrics.make({ port })))
        assert.strictEqual(error._tag, "InvalidOptions")
        if (error._tag === "InvalidOptions") assert.strictEqual(error.option, "port")
      }
      const error = yield* Effect.flip(Effect.scoped(NodeMetrics.make({ host: "" })))
      assert.ok(error._tag === "InvalidOptions" && error.option === "host")
    }))

  it.live("the port is released when the scope closes", () =>
    Effect.gen(function*() {
      const first = yield* Effect.scoped(NodeMetrics.make({ port: 0 }))
      const again = yield* Effect.scoped(
        Effect.flatMap(NodeMetrics.make({ port: first.port }), (endpoint) => get(`${endpoint.url}/health`))
      )
      assert.strictEqual(again.status, 200)
    }))
})
