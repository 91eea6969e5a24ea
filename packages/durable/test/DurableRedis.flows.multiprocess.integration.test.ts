/**
 * A flow of 300 children on 3 consumer processes sharing one Redis server, one of them SIGKILLed mid-run
 * (fixtures/redisFlowConsumer.ts): the parent runs once, after every child, with every result. Needs
 * FIBERPOOL_TEST_REDIS_URL.
 */
import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { DurableFlow } from "@fiberpool/durable"
import * as DurableRedis from "@fiberpool/durable/DurableRedis"
import { Context, Effect, Layer } from "effect"
import { Redis } from "effect/persistence"
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import { wakeId } from "../src/internal/wakeups.ts"
import { makeRedisFlowTypes } from "./fixtures/redisFlowTypes.ts"
import { redisUrl, waitUntil } from "./utils/stores.ts"

const CHILDREN = 300
const CONSUMERS = 3
const fixture = Path.join(import.meta.dirname, "fixtures", "redisFlowConsumer.ts")
const test = redisUrl === undefined || redisUrl === "" ? it.live.skip : it.live

describe(`a flow of ${CHILDREN} children on ${CONSUMERS} consumer processes (redis), one SIGKILLed`, () => {
  test("the parent runs once, after every child, with every result", () =>
    Effect.gen(function*() {
      const suffix = `${process.pid}_${Date.now().toString(36)}`
      const queueName = `flow-mp-${suffix}`
      const prefix = `fptest:${suffix}:`
      const url = redisUrl ?? ""
      const redis = Context.get(yield* Layer.build(NodeRedis.layer({ url })), Redis.Redis)

      const { Square, Total } = makeRedisFlowTypes(prefix, "producer")
      yield* Effect.scoped(Effect.gen(function*() {
        const queue = yield* Layer.build(DurableRedis.layer({ url, prefix, name: queueName }))
        yield* DurableFlow.enqueue(Total, null, {
          id: "total",
          children: Array.from({ length: CHILDREN }, (_, n) => DurableFlow.child(Square, n, { id: `sq-${n}` }))
        }).pipe(Effect.provideContext(queue))
      }))

      const children = Array.from({ length: CONSUMERS }, () =>
        ChildProcess.spawn(process.execPath, [fixture], {
          env: { ...process.env, URL: url, PREFIX: prefix, QUEUE: queueName, CONCURRENCY: "4", LEASE: "3 seconds" },
          stdio: ["ignore", "pipe", "inherit"]
        }))
      const exits = children.map((child) =>
        new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? "?")))
      )
      yield* Effect.addFinalizer(() => Effect.sync(() => children.forEach((child) => child.kill("SIGKILL"))))

      const runs = Effect.map(
        redis.send<Array<string>>("LRANGE", `${prefix}test:runs`, "0", "-1"),
        (lines) =>
          lines.map((line) => {
            const [id, consumer, attempt, total] = line.split("|")
            return { id, consumer, attempt: Number(attempt), total: Number(total) }
          })
      )
      const victim = children[0]
      yield* waitUntil(
        "the victim is mid-run",
        Effect.map(runs, (rows) => rows.filter((row) => row.consumer === `pid-${victim.pid}`).length >= 20),
        40_000
      )
      victim.kill("SIGKILL")
      yield* waitUntil("the parent ran", Effect.map(runs, (rows) => rows.some((row) => row.id === "total")), 45_000)
      // a second run of the parent, if any, would follow within the poll interval
      yield* Effect.sleep("1 second")
      for (const child of children.slice(1)) child.kill("SIGTERM")
      assert.deepStrictEqual(yield* Effect.promise(() => Promise.all(exits)), ["SIGKILL", 0, 0])

      const rows = yield* runs
      const parentRuns = rows.filter((row) => row.id === "total")
      assert.strictEqual(parentRuns.length, 1, "the parent ran once")
      const expected = Array.from({ length: CHILDREN }, (_, n) => n * n).reduce((a, b) => a + b)
      assert.strictEqual(parentRuns[0].total, expected, "the parent saw every child's result")
      const childRuns = new Map<string, number>()
      for (const row of rows) if (row.id.startsWith("sq-")) childRuns.set(row.id, (childRuns.get(row.id) ?? 0) + 1)
      assert.strictEqual(childRuns.size, CHILDREN, "every child ran")
      // the de-duplication entries: one per job, the parent's among them (enqueued once, under its id)
      const ids = (yield* redis.send<Array<string>>("ZRANGE", `${prefix}${queueName}:ids`, "0", "-1"))
        .filter((id) => id !== wakeId)
      assert.strictEqual(ids.length, CHILDREN + 1)
      assert.isTrue(ids.includes("total"))
      const redelivered = rows.filter((row) => row.id.startsWith("sq-") && row.attempt > 1).length
      assert.isAtLeast(redelivered, 1, "the killed consumer's children were delivered again")
      assert.strictEqual(Number(yield* redis.send("ZCARD", `${prefix}${queueName}:fp:flow:marks`)), 0)
      const consumers = new Set(rows.map((row) => row.consumer))
      assert.isAtLeast(consumers.size, 2)
      console.log(
        `redis: ${CHILDREN} children on ${consumers.size} consumers, ${redelivered} redelivered after the SIGKILL (${
          [...childRuns.values()].filter((n) => n > 1).length
        } of them ran twice), the parent ran once on ${parentRuns[0].consumer}`
      )
    }).pipe(Effect.scoped), 60_000)
})
