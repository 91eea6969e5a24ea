import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import { assert, describe, it } from "@effect/vitest"
import { WorkerPool } from "@fiberpool/core"
import { NodeDashboard } from "@fiberpool/node"
import { Deferred, Effect, Layer } from "effect"
import { HttpRouter, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"

interface Answer {
  readonly status: number
  readonly type: string | null
  readonly body: string
  readonly json: any
}

const request = (url: string, init?: RequestInit) =>
  Effect.promise(async (): Promise<Answer> => {
    const response = await fetch(url, { redirect: "manual", ...init })
    const body = await response.text()
    let json: unknown = undefined
    if ((response.headers.get("content-type") ?? "").includes("json")) json = JSON.parse(body)
    return { status: response.status, type: response.headers.get("content-type"), body, json }
  })

const post = (url: string, body: string, headers: Record<string, string> = {}) =>
  request(url, { method: "POST", body, headers: { "content-type": "application/json", ...headers } })

/** A queue source over an in-memory set of dead letters; `requeued` records what the dashboard requeued. */
const memorySource = (name: string, ids: ReadonlyArray<string>) => {
  const letters = new Map(ids.map((id) => [id, { id, type: "email", error: `boom ${id}`, attempts: 3, failedAt: 0 }]))
  const requeued: Array<string> = []
  const source: NodeDashboard.QueueSource = {
    name,
    deadLetters: Effect.sync(() => [...letters.values()]),
    requeue: (id) =>
      Effect.sync(() => {
        if (!letters.delete(id)) return false
        requeued.push(id)
        return true
      }),
    counts: Effect.sync(() => ({ dead: letters.size }))
  }
  return { source, requeued }
}

/** Reads Server-Sent Events from `url` until `count` `snapshot` events have arrived. */
const readSnapshots = (url: string, count: number, onEach: (index: number) => Promise<void> = async () => {}) =>
  Effect.promise(async () => {
    const controller = new AbortController()
    const response = await fetch(url, { signal: controller.signal })
    const decoder = new TextDecoder()
    const reader = response.body!.getReader()
    const snapshots: Array<NodeDashboard.Snapshot> = []
    let buffer = ""
    while (snapshots.length < count) {
      const { done, value } = await reader.read()
      if (done) break
      buffer += decoder.decode(value, { stream: true })
      let end: number
      while ((end = buffer.indexOf("\n\n")) >= 0 && snapshots.length < count) {
        const frame = buffer.slice(0, end)
        buffer = buffer.slice(end + 2)
        if (!frame.startsWith("event: snapshot\n")) continue
        snapshots.push(JSON.parse(frame.slice(frame.indexOf("data: ") + 6)))
        await onEach(snapshots.length)
      }
    }
    controller.abort()
    return { snapshots, type: response.headers.get("content-type") }
  })

describe("NodeDashboard on 127.0.0.1", () => {
  it.live("serves the page at /, 404 JSON for unknown routes, 405 for wrong methods", () =>
    Effect.gen(function*() {
      const dashboard = yield* NodeDashboard.make({ port: 0, title: "ops <test>" })
      assert.match(dashboard.url!, /^http:\/\/127\.0\.0\.1:\d+$/)
      const home = yield* request(`${dashboard.url}/`)
      assert.strictEqual(home.status, 200)
      assert.match(home.type ?? "", /^text\/html/)
      assert.include(home.body, "<title>ops &#60;test&#62;</title>")
      assert.include(home.body, "new EventSource(\"api/events\")")

      const missing = yield* request(`${dashboard.url}/nope`)
      assert.strictEqual(missing.status, 404)
      assert.strictEqual(missing.json.error.reason, "NotFound")
      assert.strictEqual((yield* request(`${dashboard.url}/api/queues/q/purge`, { method: "POST" })).status, 404)

      const wrongMethod = yield* request(`${dashboard.url}/api/snapshot`, { method: "DELETE" })
      assert.strictEqual(wrongMethod.status, 405)
      assert.strictEqual(wrongMethod.json.error.reason, "MethodNotAllowed")
      const getAction = yield* request(`${dashboard.url}/api/queues/q/requeue`)
      assert.strictEqual(getAction.status, 405)
    }).pipe(Effect.scoped))

  it.live("the snapshot shows stats, running jobs with attempt and age, failures with causes, series", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ name: "mailer", concurrency: 2, capacity: 5 })
      const dashboard = yield* NodeDashboard.make({ port: 0, pools: [pool] })
      const release = yield* Deferred.make<void>()
      yield* WorkerPool.submit(pool, Deferred.await(release), { id: "slow" })
      yield* Effect.exit(WorkerPool.run(pool, Effect.fail("smtp down"), { id: "bad" }))
      yield* WorkerPool.run(pool, Effect.void, { id: "ok" })

      const { json } = yield* request(`${dashboard.url}/api/snapshot`)
      const view = json.pools[0]
      assert.strictEqual(view.name, "mailer")
      assert.deepInclude(view.stats, { concurrency: 2, capacity: 5, running: 1, queued: 0, waiting: 0 })
      assert.deepInclude(view.stats, { succeeded: 1, failed: 1, submitted: 3 })
      assert.deepStrictEqual(view.runningJobs.map((j: any) => [j.id, j.attempt]), [["slow", 1]])
      assert.isAtLeast(view.runningJobs[0].ageMillis, 0)
      const failed = view.failures.find((f: any) => f.kind === "Failed")
      assert.strictEqual(failed.id, "bad")
      assert.include(failed.cause, "smtp down")
      assert.strictEqual(view.series.succeeded.length, 300)
      assert.strictEqual(view.series.succeeded.reduce((a: number, b: number) => a + b, 0), 1)
      assert.strictEqual(view.series.failed.reduce((a: number, b: number) => a + b, 0), 1)
      assert.isNull(view.report)
      yield* Deferred.succeed(release, undefined)
    }).pipe(Effect.scoped))

  it.live("api/events streams snapshots that follow the pool; the report appears after shutdown", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ name: "live", concurrency: 1 })
      const dashboard = yield* NodeDashboard.make({ port: 0, pools: [pool], refreshInterval: "100 millis" })
      const runJob = (id: string) => Effect.runPromise(WorkerPool.run(pool, Effect.void, { id }))
      const { snapshots, type } = yield* readSnapshots(`${dashboard.url}/api/events`, 3, async (index) => {
        if (index === 1) await runJob("a")
        if (index === 2) await Effect.runPromise(WorkerPool.shutdown(pool))
      })
      assert.strictEqual(type, "text/event-stream")
      assert.strictEqual(snapshots[0].pools[0].stats.succeeded, 0)
      assert.strictEqual(snapshots[1].pools[0].stats.succeeded, 1)
      // The report is read once the pool's event stream has ended: poll the snapshot until it is there.
      let report = snapshots[2].pools[0].report
      for (let i = 0; i < 50 && report === null; i++) {
        yield* Effect.sleep("20 millis")
        report = (yield* dashboard.snapshot).pools[0].report
      }
      assert.strictEqual(report?.pool, "live")
      assert.strictEqual(report?.totals.succeeded, 1)
      assert.isTrue((yield* dashboard.snapshot).pools[0].stats.closed)
    }).pipe(Effect.scoped))

  it.live("without a guard every action answers 403 ActionsDisabled, and nothing is requeued", () =>
    Effect.gen(function*() {
      const { requeued, source } = memorySource("mail", ["j1"])
      const dashboard = yield* NodeDashboard.make({ port: 0, queues: [source] })
      const answer = yield* post(`${dashboard.url}/api/queues/mail/requeue`, `{"id":"j1"}`, {
        authorization: "Bearer anything"
      })
      assert.strictEqual(answer.status, 403)
      assert.strictEqual(answer.json.error.reason, "ActionsDisabled")
      assert.deepStrictEqual(requeued, [])
      const snap = yield* request(`${dashboard.url}/api/snapshot`)
      assert.strictEqual(snap.json.actions, false)
      assert.deepStrictEqual(snap.json.queues[0].deadLetters.map((d: any) => d.id), ["j1"])
      assert.deepStrictEqual(snap.json.queues[0].counts, { dead: 1 })
    }).pipe(Effect.scoped))

  it.live("a token guard: 401 without a token, 403 with a wrong one, 400 on malformed bodies, then requeues", () =>
    Effect.gen(function*() {
      const { requeued, source } = memorySource("mail", ["j1", "j2"])
      const dashboard = yield* NodeDashboard.make({ port: 0, queues: [source], guard: { token: "s3cret" } })
      const action = `${dashboard.url}/api/queues/mail/requeue`
      const good = { authorization: "Bearer s3cret" }

      const none = yield* post(action, `{"id":"j1"}`)
      assert.strictEqual(none.status, 401)
      assert.strictEqual(none.json.error.reason, "Unauthorized")
      const wrong = yield* post(action, `{"id":"j1"}`, { authorization: "Bearer s3cre" })
      assert.strictEqual(wrong.status, 403)
      assert.strictEqual(wrong.json.error.reason, "Forbidden")
      assert.strictEqual((yield* post(action, `{"id":"j1"}`, { authorization: "Basic s3cret" })).status, 401)

      for (const body of ["{bad json", "", `{"id":42}`, `{"id":""}`, `["j1"]`, `{"id":"${"x".repeat(20_000)}"}`]) {
        const malformed = yield* post(action, body, good)
        assert.strictEqual(malformed.status, 400, body.slice(0, 20))
        assert.strictEqual(malformed.json.error.reason, "MalformedBody")
      }
      const unknownQueue = yield* post(`${dashboard.url}/api/queues/other/requeue`, `{"id":"j1"}`, good)
      assert.strictEqual(unknownQueue.json.error.reason, "UnknownQueue")
      const badEscape = yield* post(`${dashboard.url}/api/queues/%E0%A4%A/requeue`, `{"id":"j1"}`, good)
      assert.strictEqual(badEscape.status, 404)
      assert.strictEqual(badEscape.json.error.reason, "UnknownQueue")
      const unsupported = yield* post(`${dashboard.url}/api/queues/mail/cancel`, `{"id":"j1"}`, good)
      assert.strictEqual(unsupported.json.error.reason, "ActionNotSupported")
      const notDead = yield* post(action, `{"id":"j9"}`, good)
      assert.strictEqual(notDead.status, 404)
      assert.strictEqual(notDead.json.error.reason, "DeadLetterNotFound")
      assert.deepStrictEqual(requeued, [])

      const ok = yield* post(action, `{"id":"j2"}`, good)
      assert.strictEqual(ok.status, 200)
      assert.deepStrictEqual(ok.json, { ok: true, queue: "mail", action: "requeue", id: "j2" })
      assert.deepStrictEqual(requeued, ["j2"])
      const snap = yield* request(`${dashboard.url}/api/snapshot`)
      assert.deepStrictEqual(snap.json.queues[0].deadLetters.map((d: any) => d.id), ["j1"])
    }).pipe(Effect.scoped))

  it.live("cancel on a pool: guarded, 400 on malformed bodies, 404 for unknown pools and ids, then cancels", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ name: "mailer", concurrency: 1, capacity: 5 })
      const plain = yield* WorkerPool.make({ name: "plain", concurrency: 1 })
      const jobs = NodeDashboard.makeJobRegistry()
      const dashboard = yield* NodeDashboard.make({
        port: 0,
        pools: [{ pool, cancel: jobs.cancel }, plain],
        guard: { token: "s3cret" }
      })
      const submit = (id: string) => WorkerPool.submit(pool, Effect.never, { id }).pipe(Effect.tap(jobs.add))
      const running = yield* submit("running")
      const q1 = yield* submit("q1")
      yield* submit("q2")
      const action = `${dashboard.url}/api/pools/mailer/cancel`
      const good = { authorization: "Bearer s3cret" }

      const before = (yield* request(`${dashboard.url}/api/snapshot`)).json
      assert.deepStrictEqual(before.pools.map((p: any) => [p.name, p.actions.cancel]), [["mailer", true], [
        "plain",
        false
      ]])
      assert.deepStrictEqual(before.pools[0].queuedJobs.map((j: any) => j.id), ["q1", "q2"])
      assert.deepStrictEqual(before.pools[0].runningJobs.map((j: any) => j.id), ["running"])

      assert.strictEqual((yield* post(action, `{"id":"q1"}`)).json.error.reason, "Unauthorized")
      const wrong = yield* post(action, `{"id":"q1"}`, { authorization: "Bearer nope" })
      assert.strictEqual(wrong.status, 403)
      assert.strictEqual(wrong.json.error.reason, "Forbidden")
      for (const body of ["{bad json", "", `{"id":42}`, `{"job":"q1"}`]) {
        const malformed = yield* post(action, body, good)
        assert.strictEqual(malformed.status, 400, body)
        assert.strictEqual(malformed.json.error.reason, "MalformedBody")
      }
      const unknownPool = yield* post(`${dashboard.url}/api/pools/other/cancel`, `{"id":"q1"}`, good)
      assert.strictEqual(unknownPool.status, 404)
      assert.strictEqual(unknownPool.json.error.reason, "UnknownPool")
      const unknownJob = yield* post(action, `{"id":"q9"}`, good)
      assert.strictEqual(unknownJob.status, 404)
      assert.strictEqual(unknownJob.json.error.reason, "JobNotFound")
      const noHook = yield* post(`${dashboard.url}/api/pools/plain/cancel`, `{"id":"q1"}`, good)
      assert.strictEqual(noHook.json.error.reason, "ActionNotSupported")
      assert.strictEqual((yield* post(`${dashboard.url}/api/pools/mailer/requeue`, `{"id":"q1"}`, good)).status, 404)
      assert.strictEqual((yield* request(action)).status, 405)
      assert.strictEqual(yield* q1.status, "queued", "nothing was cancelled by the refused requests")

      const ok = yield* post(action, `{"id":"q1"}`, good)
      assert.strictEqual(ok.status, 200)
      assert.deepStrictEqual(ok.json, { ok: true, pool: "mailer", action: "cancel", id: "q1" })
      assert.strictEqual(yield* q1.status, "cancelled")
      assert.strictEqual((yield* post(action, `{"id":"running"}`, good)).status, 200)
      assert.strictEqual(yield* running.status, "interrupted")
      const again = yield* post(action, `{"id":"q1"}`, good)
      assert.strictEqual(again.status, 409)
      assert.strictEqual(again.json.error.reason, "NotCancellable")

      const after = (yield* request(`${dashboard.url}/api/snapshot`)).json.pools[0]
      assert.deepInclude(after.stats, { cancelled: 1, interrupted: 1 })
      // q2 started once the running job was interrupted.
      assert.deepStrictEqual(after.queuedJobs, [])
      assert.deepStrictEqual(after.runningJobs.map((j: any) => j.id), ["q2"])
      assert.strictEqual(yield* jobs.cancel("q2"), "cancelled")
    }).pipe(Effect.scoped))

  it.live("cancel of a running job that ignores interruption answers 202 and goes on in the background", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ name: "mailer", concurrency: 1 })
      const jobs = NodeDashboard.makeJobRegistry()
      const dashboard = yield* NodeDashboard.make({
        port: 0,
        pools: [{ pool, cancel: jobs.cancel }],
        guard: { token: "t" }
      })
      const release = yield* Deferred.make<void>()
      const started = yield* Deferred.make<void>()
      const stubborn = yield* WorkerPool.submit(
        pool,
        Effect.uninterruptible(Deferred.succeed(started, undefined).pipe(Effect.andThen(Deferred.await(release)))),
        { id: "stubborn" }
      ).pipe(Effect.tap(jobs.add))
      yield* Deferred.await(started)
      const answer = yield* post(`${dashboard.url}/api/pools/mailer/cancel`, `{"id":"stubborn"}`, {
        authorization: "Bearer t"
      })
      assert.strictEqual(answer.status, 202)
      assert.deepStrictEqual(answer.json, { ok: true, pool: "mailer", action: "cancel", id: "stubborn", done: false })
      yield* Deferred.succeed(release, undefined)
      assert.strictEqual(yield* Effect.map(stubborn.exit, (exit) => exit._tag), "Failure")
      assert.strictEqual(yield* stubborn.status, "interrupted")
    }).pipe(Effect.scoped))

  it.live("cancel on a queue: lists its waiting jobs; 200, 404 JobNotFound, 409 NotCancellable, 502; 403 unguarded", () =>
    Effect.gen(function*() {
      const waiting = new Map([["r1", "delayed" as const], ["r2", "pending" as const]])
      const source: NodeDashboard.QueueSource = {
        ...memorySource("mail", []).source,
        jobs: Effect.sync(() => [...waiting].map(([id, state]) => ({ id, type: "remind", state }))),
        cancel: (id) =>
          id === "boom"
            ? Effect.fail(new Error("database down"))
            : Effect.sync(() => id === "claimed" ? "running" : waiting.delete(id) ? "cancelled" : "not-found")
      }
      const closed = yield* NodeDashboard.make({ port: 0, queues: [source] })
      const refused = yield* post(`${closed.url}/api/queues/mail/cancel`, `{"id":"r1"}`, { authorization: "Bearer x" })
      assert.strictEqual(refused.json.error.reason, "ActionsDisabled")
      assert.strictEqual(waiting.size, 2)

      const dashboard = yield* NodeDashboard.make({ port: 0, queues: [source], guard: { token: "s3cret" } })
      const action = `${dashboard.url}/api/queues/mail/cancel`
      const good = { authorization: "Bearer s3cret" }
      const view = (yield* request(`${dashboard.url}/api/snapshot`)).json.queues[0]
      assert.deepStrictEqual(view.actions, { requeue: true, cancel: true })
      assert.deepStrictEqual(view.jobs.map((j: any) => [j.id, j.state]), [["r1", "delayed"], ["r2", "pending"]])

      assert.strictEqual((yield* post(action, `{"id":"r1"}`)).status, 401)
      assert.strictEqual((yield* post(action, `{"id":"r1"}`, { authorization: "Bearer s3cre" })).status, 403)
      assert.strictEqual((yield* post(action, `{"id":""}`, good)).json.error.reason, "MalformedBody")
      assert.strictEqual((yield* post(`${dashboard.url}/api/queues/nope/cancel`, `{"id":"r1"}`, good)).status, 404)
      const missing = yield* post(action, `{"id":"r9"}`, good)
      assert.strictEqual(missing.status, 404)
      assert.strictEqual(missing.json.error.reason, "JobNotFound")
      const claimed = yield* post(action, `{"id":"claimed"}`, good)
      assert.strictEqual(claimed.status, 409)
      assert.strictEqual(claimed.json.error.reason, "NotCancellable")
      assert.include(claimed.json.error.message, "a worker has claimed it")
      const failing = yield* post(action, `{"id":"boom"}`, good)
      assert.strictEqual(failing.status, 502)
      assert.include(failing.json.error.message, "database down")
      assert.strictEqual(waiting.size, 2)

      const ok = yield* post(action, `{"id":"r1"}`, good)
      assert.deepStrictEqual(ok.json, { ok: true, queue: "mail", action: "cancel", id: "r1" })
      const jobsAfter = (yield* request(`${dashboard.url}/api/snapshot`)).json.queues[0].jobs
      assert.deepStrictEqual(jobsAfter.map((j: any) => j.id), ["r2"])
    }).pipe(Effect.scoped))

  it.live("an auth hook guard decides per request; a failing hook refuses", () =>
    Effect.gen(function*() {
      const { requeued, source } = memorySource("mail", ["j1"])
      const dashboard = yield* NodeDashboard.make({
        port: 0,
        queues: [source],
        guard: {
          authorize: (req) =>
            req.headers["x-operator"] === "boom"
              ? Effect.fail("hook down")
              : Effect.succeed(req.headers["x-operator"] === "alice")
        }
      })
      const action = `${dashboard.url}/api/queues/mail/requeue`
      assert.strictEqual((yield* post(action, `{"id":"j1"}`, { "x-operator": "mallory" })).status, 403)
      assert.strictEqual((yield* post(action, `{"id":"j1"}`, { "x-operator": "boom" })).status, 403)
      assert.strictEqual((yield* post(action, `{"id":"j1"}`, { "x-operator": "alice" })).status, 200)
      assert.deepStrictEqual(requeued, ["j1"])
    }).pipe(Effect.scoped))

  it.live("rejects bad options with InvalidOptions naming the option", () =>
    Effect.gen(function*() {
      const port = yield* Effect.flip(NodeDashboard.make({ port: 70000 }))
      assert.strictEqual((port as { option?: string }).option, "port")
      const window = yield* Effect.flip(NodeDashboard.make({ port: 0, window: "2 seconds" }))
      assert.strictEqual(window._tag, "InvalidOptions")
      assert.strictEqual((window as { option?: string }).option, "window")
      const refresh = yield* Effect.flip(NodeDashboard.make({ port: 0, refreshInterval: "1 milli" }))
      assert.strictEqual((refresh as { option?: string }).option, "refreshInterval")
    }).pipe(Effect.scoped))

  it.live("mounts on an application's HttpRouter under a prefix", () =>
    Effect.gen(function*() {
      const pool = yield* WorkerPool.make({ name: "app-pool", concurrency: 1 })
      const App = Layer.mergeAll(
        NodeDashboard.layerRouter({ prefix: "/ops", pools: [pool] }),
        HttpRouter.add("GET", "/hello", HttpServerResponse.text("hi"))
      )
      const server = yield* NodeHttpServer.make(() => createServer(), { port: 0, host: "127.0.0.1" })
      const address = server.address
      const base = `http://127.0.0.1:${address._tag === "UnixPathAddress" ? 0 : address.port}`
      const handler = yield* HttpRouter.toHttpEffect(App)
      yield* server.serve(handler)
      assert.strictEqual((yield* request(`${base}/hello`)).body, "hi")
      const redirect = yield* request(`${base}/ops`)
      assert.strictEqual(redirect.status, 302)
      const snap = yield* request(`${base}/ops/api/snapshot`)
      assert.strictEqual(snap.json.pools[0].name, "app-pool")
      assert.match((yield* request(`${base}/ops/`)).type ?? "", /^text\/html/)
      assert.strictEqual((yield* request(`${base}/ops/nope`)).json.error.reason, "NotFound")
    }).pipe(Effect.scoped))
})
