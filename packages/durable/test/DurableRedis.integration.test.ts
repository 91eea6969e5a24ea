/**
 * What is particular to the Redis store; the behaviour it shares with the others runs in the suites over
 * `stores` (see utils/stores.ts). Needs FIBERPOOL_TEST_REDIS_URL (`eval "$(.ci/redis.sh start)"`), and the outage
 * test `redis-server` on the PATH (it starts a server of its own; `.ci/redis.sh` installs the package).
 */
import { NodeRedis } from "@effect/platform-node"
import { assert, describe, it } from "@effect/vitest"
import { DurableQueue, DurableSchedule, DurableWorker, JobType } from "@fiberpool/durable"
import * as DurableRedis from "@fiberpool/durable/DurableRedis"
import { Context, Effect, Exit, Layer, Schema } from "effect"
import { Redis } from "effect/persistence"
import * as ChildProcess from "node:child_process"
import * as Fs from "node:fs"
import * as Net from "node:net"
import * as Os from "node:os"
import * as Path from "node:path"
import * as OutcomesRedis from "../src/internal/outcomesRedis.ts"
import { redisUrl, startConsumer, waitUntil } from "./utils/stores.ts"

const test = redisUrl === undefined || redisUrl === "" ? it.live.skip : it.live
const url = redisUrl ?? ""

let counter = 0
const unique = () => `r${process.pid}-${Date.now().toString(36)}-${counter++}`

const client = Effect.map(Layer.build(NodeRedis.layer({ url })), (context) => Context.get(context, Redis.Redis))

const keysUnder = (redis: Redis.Redis["Service"], pattern: string) =>
  Effect.gen(function*() {
    const keys: Array<string> = []
    let cursor = "0"
    do {
      const [next, batch] = yield* redis.send<[string, Array<string>]>(
        "SCAN",
        cursor,
        "MATCH",
        pattern,
        "COUNT",
        "1000"
      )
      cursor = next
      keys.push(...batch)
    } while (cursor !== "0")
    return keys.sort()
  })

describe("DurableRedis", () => {
  test("every key is under the prefix, and two prefixes are two separate queues", () =>
    Effect.gen(function*() {
      const name = unique()
      const [a, b] = [`fptest:${name}:a:`, `fptest:${name}:b:`]
      const runs: Array<string> = []
      const Echo = JobType.make({
        name: "echo",
        payload: Schema.String,
        result: Schema.String,
        maxAttempts: 1,
        handler: (text) => text === "fail" ? Effect.fail("no") : Effect.sync(() => (runs.push(text), text))
      })
      const queueA = DurableRedis.layer({ url, name, prefix: a, pollInterval: "50 millis" })
      const queueB = yield* Layer.build(DurableRedis.layer({ url, name, prefix: b, pollInterval: "50 millis" }))
      yield* startConsumer(queueA, { types: [Echo], concurrency: 2 })
      const producerA = yield* Layer.build(queueA)
      yield* DurableQueue.enqueue(Echo, "from a", { id: "same-id" }).pipe(Effect.provideContext(producerA))
      yield* DurableQueue.enqueue(Echo, "fail", { id: "dead" }).pipe(Effect.provideContext(producerA))
      // the same id under the other prefix is another job: not de-duplicated, and not run by a's worker
      yield* DurableQueue.enqueue(Echo, "from b", { id: "same-id" }).pipe(Effect.provideContext(queueB))
      assert.strictEqual(yield* DurableQueue.result(Echo, "same-id").pipe(Effect.provideContext(producerA)), "from a")
      yield* waitUntil(
        "the dead letter",
        Effect.map(DurableQueue.deadLetters().pipe(Effect.provideContext(producerA)), (l) => l.length === 1)
      )
      yield* Effect.sleep("300 millis")
      assert.deepStrictEqual(runs, ["from a"])
      assert.deepStrictEqual(yield* DurableQueue.deadLetters().pipe(Effect.provideContext(queueB)), [])

      const redis = yield* client
      const all = yield* keysUnder(redis, `fptest:${name}:*`)
      assert.isTrue(all.every((key) => key.startsWith(a) || key.startsWith(b)), all.join(", "))
      // effect's store keys, and the package's own beside them
      assert.includeMembers(all, [
        `${a}${name}:ids`,
        `${a}${name}:fp:outcomes`,
        `${a}${name}:fp:by:dead`,
        `${b}${name}`
      ])
      // b's job is still waiting in b's list
      assert.strictEqual(yield* redis.send<number>("LLEN", `${b}${name}`), 1)
    }), 30_000)

  test("the layer gives handlers its Redis client", () =>
    Effect.gen(function*() {
      const name = unique()
      const prefix = `fptest:${name}:`
      const Touch = JobType.make({
        name: "touch",
        payload: Schema.String,
        handler: (key) =>
          Effect.gen(function*() {
            const redis = yield* Redis.Redis
            yield* redis.send("SET", key, "touched")
          }).pipe(Effect.orDie)
      })
      const queue = yield* Layer.build(DurableRedis.layer({ url, name, prefix, pollInterval: "50 millis" }))
      yield* startConsumer(Layer.succeedContext(queue), { types: [Touch], concurrency: 1 }).pipe(
        Effect.provideContext(queue)
      )
      yield* DurableQueue.enqueue(Touch, `${prefix}touched`).pipe(Effect.provideContext(queue))
      const redis = Context.get(queue, Redis.Redis)
      yield* waitUntil(
        "the handler wrote its key",
        Effect.map(redis.send<string | null>("GET", `${prefix}touched`), (value) => value === "touched")
      )
    }), 30_000)

  test(
    "bad options are typed errors naming the option; an unreachable server is a RedisError",
    () =>
      Effect.gen(function*() {
        const open = (options: DurableRedis.Options) => Effect.flip(Layer.build(DurableRedis.layer(options)))
        const http = yield* open({ url: "http://user:secret@127.0.0.1:6379" })
        assert(http._tag === "InvalidOptions" && http.option === "url", http.message)
        assert.notInclude(http.message, "secret")
        const notUrl = yield* open({ url: "not a url" })
        assert(notUrl._tag === "InvalidOptions" && notUrl.option === "url", notUrl.message)
        const lease = yield* open({ url, lockExpiration: "0 seconds" })
        assert(lease._tag === "InvalidOptions" && lease.option === "lockExpiration", lease.message)
        const refresh = yield* open({ url, lockRefreshInterval: "soon" as any })
        assert(refresh._tag === "InvalidOptions" && refresh.option === "lockRefreshInterval", refresh.message)
        const prefix = yield* open({ url, prefix: 42 as any })
        assert(prefix._tag === "InvalidOptions" && prefix.option === "prefix", prefix.message)
        const empty = yield* open({ url, prefix: "" })
        assert(empty._tag === "InvalidOptions" && empty.option === "prefix", empty.message)
        const name = yield* open({ url, name: "" })
        assert(name._tag === "InvalidOptions" && name.option === "name", name.message)
        // a port nobody listens on (the server's own, plus one, is very likely free; any refused port will do)
        const port = Number(new URL(url).port) + 1
        const down = yield* open({ url: `redis://127.0.0.1:${port}` })
        assert.strictEqual(down._tag, "RedisError")
      }),
    30_000
  )

  test("a job enqueued by another process starts at once, not at the worker's next poll", () =>
    Effect.gen(function*() {
      const starts = new Map<string, number>()
      const Ping = JobType.make({
        name: "ping",
        payload: Schema.Null,
        handler: (_, { id }) => Effect.sync(() => void starts.set(id, Date.now()))
      })
      const run = (notify: boolean) =>
        Effect.gen(function*() {
          const name = unique()
          // separate layers: separate clients and stores, as two processes have; polls 10 s apart
          const open = () =>
            DurableRedis.layer({ url, name, prefix: `fptest:${name}:`, pollInterval: "10 seconds", notify })
          yield* startConsumer(open(), { types: [Ping], concurrency: 2 })
          const producer = yield* Layer.build(open())
          yield* Effect.sleep("300 millis") // the worker has polled, found nothing, and sleeps
          const latencies: Array<number> = []
          for (let i = 0; i < 5; i++) {
            const id = `${name}-${i}`
            const enqueuedAt = Date.now()
            yield* DurableQueue.enqueue(Ping, null, { id }).pipe(Effect.provideContext(producer))
            const started = yield* Effect.exit(waitUntil("the job starts", Effect.sync(() => starts.has(id)), 1_000))
            if (started._tag === "Failure") return undefined
            latencies.push(starts.get(id)! - enqueuedAt)
            yield* Effect.sleep(`${20 + 30 * i} millis`)
          }
          return latencies
        })
      const notified = yield* run(true)
      assert.isDefined(notified, "every job started within a second")
      assert.isBelow(Math.max(...notified!), 500, `start latencies ${notified!.join(", ")} ms`)
      console.log(`redis: start latencies across connections with notifications: ${notified!.join(", ")} ms`)
      // without notifications the job waits for the next poll
      assert.isUndefined(yield* run(false))
    }), 30_000)

  test("stats and cancel fail with a StoreError that says only SQL stores have them", () =>
    Effect.gen(function*() {
      const name = unique()
      const queue = yield* Layer.build(DurableRedis.layer({ url, name, prefix: `fptest:${name}:` }))
      const stats = yield* Effect.flip(DurableQueue.stats.pipe(Effect.provideContext(queue)))
      assert(stats._tag === "StoreError" && stats.operation === "stats", stats.message)
      assert.match(stats.message, /only the SQL stores keep counts/)
      const cancel = yield* Effect.flip(DurableQueue.cancel("j1").pipe(Effect.provideContext(queue)))
      assert(cancel._tag === "StoreError" && cancel.operation === "cancel", cancel.message)
      assert.match(cancel.message, /only the SQL stores can cancel/)
    }), 30_000)

  test(
    "priorities (of jobs and of schedules), dedupe keys and shared limits are refused with InvalidOptions naming the option, storing nothing",
    () =>
      Effect.gen(function*() {
        const name = unique()
        const queue = yield* Layer.build(DurableRedis.layer({ url, name, prefix: `fptest:${name}:` }))
        const Note = JobType.make({
          name: "note",
          payload: Schema.String,
          result: Schema.String,
          handler: Effect.succeed
        })
        const option = (error: unknown) => (error as { readonly option?: string }).option
        const priority = yield* Effect.flip(
          DurableQueue.enqueue(Note, "refused", { id: "a", priority: 5 }).pipe(Effect.provideContext(queue))
        )
        assert.strictEqual(priority._tag, "InvalidOptions")
        assert.strictEqual(option(priority), "priority")
        const dedupe = yield* Effect.flip(
          DurableQueue.enqueue(Note, "refused", { id: "b", dedupe: { key: "k", mode: "active" } }).pipe(
            Effect.provideContext(queue)
          )
        )
        assert.strictEqual(dedupe._tag, "InvalidOptions")
        assert.strictEqual(option(dedupe), "dedupe")
        const Capped = JobType.make({
          name: "capped",
          payload: Schema.String,
          concurrency: { global: 2 },
          handler: () => Effect.void
        })
        const limits = yield* Effect.flip(
          Effect.scoped(DurableWorker.make({ types: [Capped], concurrency: 2 })).pipe(Effect.provideContext(queue))
        )
        assert.strictEqual(limits._tag, "InvalidOptions")
        assert.strictEqual(option(limits), "JobType(capped).concurrency")
        const tick = yield* Effect.flip(
          DurableSchedule.set(Note, { name: "urgent", every: "1 minute", payload: "x", priority: 5 }).pipe(
            Effect.provideContext(queue)
          )
        )
        assert.strictEqual(tick._tag, "InvalidOptions")
        assert.strictEqual(option(tick), "priority")
        assert.deepStrictEqual(yield* DurableSchedule.list.pipe(Effect.provideContext(queue)), [])
        // nothing was stored: the ids are free, and the jobs that run under them are the later ones
        const results = yield* Effect.scoped(Effect.gen(function*() {
          yield* DurableQueue.enqueue(Note, "fresh a", { id: "a" })
          yield* DurableQueue.enqueue(Note, "fresh b", { id: "b" })
          yield* DurableWorker.make({ types: [Note], concurrency: 2 })
          return [yield* DurableQueue.result(Note, "a"), yield* DurableQueue.result(Note, "b")]
        })).pipe(Effect.provideContext(queue))
        assert.deepStrictEqual(results, ["fresh a", "fresh b"])
      }),
    30_000
  )
})

/** A Redis server of the test's own (it is stopped and started again), persisted to an append-only file. */
const ownServer = Effect.gen(function*() {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "fiberpool-redis-outage-"))
  const port = yield* Effect.promise(() =>
    new Promise<number>((resolve) => {
      const probe = Net.createServer().listen(0, "127.0.0.1", () => {
        const { port } = probe.address() as Net.AddressInfo
        probe.close(() => resolve(port))
      })
    })
  )
  let server: ChildProcess.ChildProcess | undefined
  const stop = Effect.promise(() =>
    new Promise<void>((resolve) => {
      if (server === undefined || server.exitCode !== null) return resolve()
      server.once("exit", () => resolve())
      server.kill("SIGKILL")
    })
  )
  const start = Effect.gen(function*() {
    server = ChildProcess.spawn("redis-server", [
      "--bind",
      "127.0.0.1",
      "--port",
      String(port),
      "--dir",
      dir,
      "--save",
      "",
      "--appendonly",
      "yes",
      "--appendfsync",
      "always"
    ], { stdio: "ignore" })
    yield* waitUntil(
      "the server answers",
      Effect.promise(() =>
        new Promise<boolean>((resolve) => {
          const socket = Net.connect(port, "127.0.0.1", () => (socket.end(), resolve(true)))
          socket.on("error", () => resolve(false))
        })
      )
    )
  })
  yield* Effect.addFinalizer(() => Effect.andThen(stop, Effect.sync(() => Fs.rmSync(dir, { recursive: true }))))
  yield* start
  return { url: `redis://127.0.0.1:${port}`, stop, start }
})

describe("DurableRedis when the server goes away", () => {
  test(
    "enqueue fails with a typed StoreError, and the queue goes on once the server is back",
    () =>
      Effect.gen(function*() {
        const server = yield* ownServer
        const name = unique()
        const runs: Array<string> = []
        const Note = JobType.make({
          name: "note",
          payload: Schema.String,
          result: Schema.String,
          handler: (text) => Effect.sync(() => (runs.push(text), text))
        })
        const open = () => DurableRedis.layer({ url: server.url, name, pollInterval: "100 millis" })
        yield* startConsumer(open(), { types: [Note], concurrency: 2 })
        const producer = yield* Layer.build(open())
        const run = <A, E>(effect: Effect.Effect<A, E, DurableQueue.Service>) =>
          effect.pipe(Effect.provideContext(producer))
        yield* run(DurableQueue.enqueue(Note, "before", { id: "before" }))
        assert.strictEqual(yield* run(DurableQueue.result(Note, "before")), "before")
        // enqueued, not yet run: a delay keeps it waiting through the outage
        yield* run(DurableQueue.enqueue(Note, "delayed", { id: "delayed", delay: "1500 millis" }))

        yield* server.stop
        const down = yield* Effect.exit(
          run(DurableQueue.enqueue(Note, "during", { id: "during" })).pipe(
            Effect.timeout("5 seconds")
          )
        )
        assert(Exit.isFailure(down), "enqueue failed")
        const error = down.cause.reasons.find((reason) => reason._tag === "Fail")
        assert(error?._tag === "Fail" && (error.error as { _tag: string })._tag === "StoreError", String(down.cause))
        yield* Effect.sleep("1 second")

        yield* server.start
        // the clients reconnect by themselves; what was stored before the outage is still there (append-only file)
        yield* waitUntil(
          "the producer's client is back",
          Effect.map(Effect.exit(run(DurableQueue.enqueue(Note, "after", { id: "after" }))), Exit.isSuccess),
          10_000
        )
        assert.strictEqual(yield* run(DurableQueue.result(Note, "after")), "after")
        assert.strictEqual(yield* run(DurableQueue.result(Note, "delayed")), "delayed")
        assert.deepStrictEqual([...runs].sort(), ["after", "before", "delayed"])
      }),
    30_000
  )
})

describe("the Redis outcome store", () => {
  const row = (jobId: string, status: "succeeded" | "dead" | "cancelled", jobType: string, finishedAt: number) => ({
    jobId,
    jobType,
    status,
    payload: status === "dead" ? JSON.stringify({ jobId }) : null,
    result: status === "succeeded" ? "1" : null,
    error: status === "dead" ? "boom" : null,
    attempts: 1,
    finishedAt
  })
  const open = Effect.map(client, (redis) => ({ store: OutcomesRedis.make(redis, `fptest:${unique()}:`), q: "q" }))
  const sortCounts = (
    counts: ReadonlyArray<{ readonly jobType: string; readonly status: string; readonly count: number }>
  ) => counts.map((c) => `${c.status}|${c.jobType}=${c.count}`).sort()

  test("counts follow every put, overwrite and removal", () =>
    Effect.gen(function*() {
      const { q, store } = yield* open
      yield* store.put(q, row("a", "dead", "mail", 1))
      yield* store.put(q, row("b", "dead", "mail", 2))
      yield* store.put(q, row("c", "succeeded", "sms", 3))
      assert.deepStrictEqual(sortCounts(yield* store.counts(q)), ["dead|mail=2", "succeeded|sms=1"])
      // a requeued dead letter that later succeeds: the same id, another status and type
      yield* store.put(q, row("a", "succeeded", "sms", 4))
      assert.deepStrictEqual(sortCounts(yield* store.counts(q)), ["dead|mail=1", "succeeded|sms=2"])
      assert.deepStrictEqual(
        (yield* store.listDead(q, { limit: 10, jobType: "mail" })).map((r) => r.jobId),
        ["b"],
        "a left the type's dead letters"
      )
      yield* store.remove(q, "b")
      yield* store.remove(q, "no-such-job")
      assert.deepStrictEqual(sortCounts(yield* store.counts(q)), ["succeeded|sms=2"])
      assert.deepStrictEqual(yield* store.get(q, "a"), row("a", "succeeded", "sms", 4))
      assert.isUndefined(yield* store.get(q, "b"))
    }), 30_000)

  test("dead letters page in (finishedAt, id) order, by type, across equal timestamps", () =>
    Effect.gen(function*() {
      const { q, store } = yield* open
      const letters = [
        row("m3", "dead", "mail", 10),
        row("m1", "dead", "mail", 10),
        row("s1", "dead", "sms", 10),
        row("m2", "dead", "mail", 10),
        row("m0", "dead", "mail", 20),
        row("ok", "succeeded", "mail", 5)
      ]
      yield* Effect.forEach(letters, (r) => store.put(q, r), { discard: true })
      const pages: Array<Array<string>> = []
      let after: { finishedAt: number; jobId: string } | undefined
      while (true) {
        const page = yield* store.listDead(q, { jobType: "mail", limit: 2, after })
        if (page.length === 0) break
        pages.push(page.map((r) => r.jobId))
        after = { finishedAt: page[page.length - 1].finishedAt, jobId: page[page.length - 1].jobId }
      }
      assert.deepStrictEqual(pages, [["m1", "m2"], ["m3", "m0"]])
      assert.deepStrictEqual((yield* store.listDead(q, { limit: 10 })).map((r) => r.jobId), [
        "m1",
        "m2",
        "m3",
        "s1",
        "m0"
      ])
    }), 30_000)

  test(
    "retention deletes the oldest beyond a count, rows older than a time, and old progress",
    () =>
      Effect.gen(function*() {
        const { q, store } = yield* open
        yield* Effect.forEach([1, 2, 3, 4, 5], (n) => store.put(q, row(`d${n}`, "dead", "mail", n * 100)), {
          discard: true
        })
        yield* store.put(q, row("s1", "succeeded", "mail", 50))
        assert.deepStrictEqual(yield* store.deleteBeyond(q, "dead", 2, 2), ["d3", "d2"])
        assert.deepStrictEqual(yield* store.deleteBeyond(q, "dead", 2, 2), ["d1"])
        assert.deepStrictEqual(yield* store.deleteOlder(q, "dead", 500, 10), ["d4"])
        assert.deepStrictEqual(yield* store.deleteOlder(q, "succeeded", 51, 10), ["s1"])
        assert.deepStrictEqual(sortCounts(yield* store.counts(q)), ["dead|mail=1"])

        yield* store.putProgress(q, "p1", "{\"done\":1}", 1, 100)
        yield* store.putProgress(q, "p2", "{\"done\":2}", 2, 300)
        yield* store.putProgress(q, "p1", "{\"done\":3}", 1, 200)
        assert.deepStrictEqual(yield* store.getProgress(q, "p1"), {
          progress: "{\"done\":3}",
          attempt: 1,
          updatedAt: 200
        })
        yield* store.deleteProgressOlder(q, 250)
        assert.isUndefined(yield* store.getProgress(q, "p1"))
        assert.deepStrictEqual(yield* store.getProgress(q, "p2"), {
          progress: "{\"done\":2}",
          attempt: 2,
          updatedAt: 300
        })
      }),
    30_000
  )
})
