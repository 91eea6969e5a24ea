/**
 * A per-second cron shared by 4 processes on one Redis server (fixtures/redisScheduler.ts): every tick runs once,
 * and each tick fired by hand is won by one process. Needs FIBERPOOL_TEST_REDIS_URL.
 */
import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { DurableSchedule } from "@fiberpool/durable"
import * as DurableRedis from "@fiberpool/durable/DurableRedis"
import { Context, Effect, Layer } from "effect"
import { Redis } from "effect/persistence"
import * as ChildProcess from "node:child_process"
import * as Path from "node:path"
import { wakeId } from "../src/internal/wakeups.ts"
import { redisUrl, waitUntil } from "./utils/stores.ts"

const PROCESSES = 4
const fixture = Path.join(import.meta.dirname, "fixtures", "redisScheduler.ts")
const test = redisUrl === undefined || redisUrl === "" ? it.live.skip : it.live

describe("a schedule shared by 4 processes on redis", () => {
  test("a per-second cron runs every tick exactly once: no duplicates, no gaps", () =>
    Effect.gen(function*() {
      const suffix = `${process.pid}_${Date.now().toString(36)}`
      const queueName = `cron-${suffix}`
      const schedule = `every-second-${suffix}`
      const prefix = `fptest:${suffix}:`
      const url = redisUrl ?? ""
      const redis = Context.get(yield* Layer.build(NodeRedis.layer({ url })), Redis.Redis)
      const queue = yield* Layer.build(DurableRedis.layer({ url, prefix, name: queueName }))

      const children = Array.from({ length: PROCESSES }, () =>
        ChildProcess.spawn(process.execPath, [fixture], {
          env: { ...process.env, URL: url, PREFIX: prefix, QUEUE: queueName, SCHEDULE: schedule },
          stdio: ["ignore", "pipe", "inherit"]
        }))
      yield* Effect.addFinalizer(() => Effect.sync(() => children.forEach((child) => child.kill("SIGKILL"))))
      const exits = children.map((child) =>
        new Promise<number | string>((resolve) => child.once("exit", (code, signal) => resolve(code ?? signal ?? "?")))
      )
      let ready = 0
      for (const child of children) {
        child.stdout.on("data", (chunk: Buffer) => {
          if (chunk.toString().includes("ready")) ready++
        })
      }
      yield* waitUntil("every process runs", Effect.sync(() => ready === PROCESSES), 20_000)
      const allReady = Date.now()

      const recorded = Effect.map(
        redis.send<Array<string>>("LRANGE", `${prefix}test:runs`, "0", "-1"),
        (lines) =>
          lines.map((line) => {
            const [id, by, ranAt] = line.split("|")
            return { id, tick: DurableSchedule.tickOf(id), by, ranAt: Number(ranAt) }
          })
      )
      yield* waitUntil(
        "ticks for 5 seconds after every process runs",
        Effect.map(recorded, (rows) => rows.some((row) => (row.tick ?? 0) >= allReady + 5000)),
        15_000
      )
      // stop the schedule, let the last enqueued ticks run, then stop the processes
      assert.isTrue(yield* DurableSchedule.remove(schedule).pipe(Effect.provideContext(queue)))
      const open = Effect.map(
        Effect.all([
          redis.send<number>("LLEN", `${prefix}${queueName}`),
          redis.send<number>("HLEN", `${prefix}${queueName}:pending`),
          redis.send<number>("ZCARD", `${prefix}${queueName}:delayed`)
        ]),
        (counts) => counts.reduce((a, b) => a + Number(b), 0)
      )
      yield* waitUntil("every enqueued tick ran", Effect.map(open, (n) => n === 0), 10_000)
      for (const child of children) child.kill("SIGTERM")
      assert.deepStrictEqual(yield* Effect.promise(() => Promise.all(exits)), [0, 0, 0, 0])

      const rows = yield* recorded
      const counts = new Map<string, number>()
      for (const row of rows) counts.set(row.id, (counts.get(row.id) ?? 0) + 1)
      assert.deepStrictEqual([...counts].filter(([, n]) => n > 1), [], "no tick ran twice")
      const ticks = rows.map((row) => row.tick!).sort((a, b) => a - b)
      assert.isAtLeast(ticks.length, 5, "a first tick within 1 s of ready, a last 5 s after, 1 s apart")
      assert.deepStrictEqual(ticks.slice(1).filter((tick, i) => tick - ticks[i] !== 1000), [], "no gaps")
      assert.isAtMost(ticks[0], allReady + 1000, "the first tick fired")
      // every job the store de-duplicates is one of these runs: no tick enqueued twice under another id
      const ids = (yield* redis.send<Array<string>>("ZRANGE", `${prefix}${queueName}:ids`, "0", "-1"))
        .filter((id) => id !== wakeId)
      assert.strictEqual(ids.length, ticks.length)
      // no claim left unsettled
      assert.strictEqual(Number(yield* redis.send("ZCARD", `${prefix}${queueName}:fp:sched:claims`)), 0)
      const won = (yield* redis.send<Array<string>>("LRANGE", `${prefix}test:claims`, "0", "-1"))
        .map((line) => line.split("|"))
      assert.isAtLeast(won.length, 1)
      assert.strictEqual(new Set(won.map(([id]) => id)).size, won.length, "no tick claimed by two processes")
      for (const [id] of won) assert.isTrue(counts.has(id))
      const by = new Map<string, number>()
      for (const row of rows) by.set(row.by, (by.get(row.by) ?? 0) + 1)
      const lateness = rows.map((row) => row.ranAt - row.tick!).sort((a, b) => a - b)
      console.log(
        `redis: ${ticks.length} ticks, each run once; ${won.length} won by hand by ${
          new Set(won.map(([, c]) => c)).size
        } processes; runs per process: ${[...by.values()].sort((a, b) => b - a).join(", ")}; jobs started after ` +
          `their tick: median ${lateness[Math.floor(lateness.length / 2)]} ms, max ${lateness[lateness.length - 1]} ms`
      )
    }).pipe(Effect.scoped), 40_000)
})
