import { assert, describe, it } from "@effect/vitest"
import { Effect, Logger } from "effect"
import { TestClock } from "effect/testing"
import * as Shutdown from "../src/Shutdown.ts"
import * as WorkerPool from "../src/WorkerPool.ts"

// A pool that follows an application-wide controller logs its report when that controller (a signal, under
// NodeShutdown.runMain) started its shutdown: the program that would have printed results was interrupted.
const capturing = () => {
  const messages: Array<string> = []
  const logger = Logger.make((options) => {
    messages.push(String(Array.isArray(options.message) ? options.message[0] : options.message))
  })
  return { messages, layer: Logger.layer([logger]) }
}

const workload = Effect.gen(function*() {
  const pool = yield* WorkerPool.make({ name: "mail", concurrency: 1, shutdown: { gracePeriod: "1 second" } })
  yield* WorkerPool.submit(pool, Effect.sleep("100 millis"), { id: "a" })
  yield* WorkerPool.submit(pool, Effect.never, { id: "b" })
  yield* WorkerPool.submit(pool, Effect.void, { id: "c" })
  return pool
})

describe("the shutdown report in the application's log", () => {
  it.effect("a controller-driven shutdown logs every live job's fate once, through the app's logger", () =>
    Effect.gen(function*() {
      const { layer, messages } = capturing()
      const controller = Shutdown.makeController()
      yield* Effect.scoped(Effect.gen(function*() {
        yield* workload
        yield* Shutdown.requestGraceful(controller)
        yield* TestClock.adjust("2 seconds")
      })).pipe(Effect.provideService(Shutdown.CurrentController, controller), Effect.provide(layer))
      const reports = messages.filter((message) => message.startsWith("pool mail shut down"))
      assert.deepStrictEqual(reports, [
        "pool mail shut down (drain, 1000 ms, grace period expired): succeeded a; interrupted b; cancelled c"
      ])
    }))

  it.effect("a pool closed by its own scope, with no signal, logs nothing", () =>
    Effect.gen(function*() {
      const { layer, messages } = capturing()
      const controller = Shutdown.makeController()
      yield* Effect.scoped(Effect.gen(function*() {
        const pool = yield* workload
        yield* Effect.forkChild(WorkerPool.shutdown(pool, { mode: "cancel", gracePeriod: 0 }))
        yield* TestClock.adjust("10 seconds")
      })).pipe(Effect.provideService(Shutdown.CurrentController, controller), Effect.provide(layer))
      assert.deepStrictEqual(messages.filter((message) => message.includes("shut down")), [])
    }))

  it("describeReport shortens long lists of ids", () => {
    const ids = Array.from({ length: 25 }, (_, i) => `j${i}`)
    const line = Shutdown.describeReport({
      pool: "p",
      mode: "cancel",
      startedAt: 0,
      finishedAt: 5,
      durationMillis: 5,
      graceExpired: false,
      jobs: { succeeded: [], failed: [], timedOut: [], interrupted: [], cancelled: ids, abandoned: [] },
      totals: {
        submitted: 25,
        rejected: 0,
        succeeded: 0,
        failed: 0,
        timedOut: 0,
        interrupted: 0,
        cancelled: 25,
        abandoned: 0,
        retries: 0
      }
    })
    assert.strictEqual(line, `pool p shut down (cancel, 5 ms): cancelled ${ids.slice(0, 20).join(", ")} and 5 more`)
  })
})
