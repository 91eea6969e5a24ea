/**
 * @title An HTTP job service with graceful shutdown
 *
 * `POST /jobs` enqueues a job (202, or 429 when the queue is full, 503 while shutting down) and
 * `GET /jobs/:id` shows its status and result; on SIGTERM the service stops accepting jobs, drains the queue
 * while still answering status requests, and exits 0.
 *
 * Run: node examples/02-http-job-service.ts
 *
 * Run by hand, it drives itself: it sends a few requests, then SIGTERM to its own process, and exits 0 once
 * drained. With `--serve` (or `JOB_SERVICE_SERVE=1`) it only serves on 127.0.0.1 (`--port N`, default a free
 * port) until it gets SIGTERM/SIGINT; a second signal forces the exit (code 3).
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Job, WorkerPool } from "@fiberpool/core"
import { NodeShutdown } from "@fiberpool/node"
import { Data, Deferred, Effect, Exit } from "effect"
import { HttpServer, HttpServerRequest, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"

class TaskFailed extends Data.TaggedError("TaskFailed")<{ readonly task: string }> {}

const serveOnly = process.argv.includes("--serve") || process.env.JOB_SERVICE_SERVE === "1"
const portArg = process.argv.indexOf("--port")
const port = portArg > 0 ? Number(process.argv[portArg + 1]) : 0

const log = (line: string) => Effect.sync(() => console.log(line))

// A job is `{ "task": string, "ms": number }`: it works for `ms` milliseconds; the task "fail" fails.
const work = (task: string, ms: number) =>
  Effect.sleep(`${ms} millis`).pipe(
    Effect.andThen(task === "fail" ? Effect.fail(new TaskFailed({ task })) : Effect.succeed({ task, tookMs: ms }))
  )

const json = (body: unknown, status: number) => HttpServerResponse.jsonUnsafe(body, { status })

const describeJob = (handle: Job.JobHandle<unknown, TaskFailed>) =>
  Effect.gen(function*() {
    const status = yield* handle.status
    if (!Job.isTerminal(status)) return { id: handle.id, status }
    const exit = yield* handle.exit
    if (Exit.isSuccess(exit)) return { id: handle.id, status, result: exit.value }
    const error = exit.cause.reasons.find((reason) => reason._tag === "Fail")?.error
    return { id: handle.id, status, error: error?._tag === "JobError" ? error.reason._tag : error?._tag ?? "defect" }
  })

const app = (poolReady: Effect.Effect<WorkerPool.WorkerPool>) => {
  const jobs = new Map<string, Job.JobHandle<unknown, TaskFailed>>()
  let next = 0
  return Effect.gen(function*() {
    const request = yield* HttpServerRequest.HttpServerRequest
    const path = request.url.split("?", 1)[0]
    const pool = yield* poolReady
    if (request.method === "POST" && path === "/jobs") {
      const body = (yield* Effect.orElseSucceed(request.json, () => null)) as { task?: unknown; ms?: unknown } | null
      const task = typeof body?.task === "string" ? body.task : "work"
      const ms = typeof body?.ms === "number" && body.ms >= 0 && body.ms <= 10_000 ? body.ms : 100
      const id = `job-${++next}`
      return yield* WorkerPool.submit(pool, work(task, ms), { id, metadata: { task } }).pipe(
        Effect.map((handle) => {
          jobs.set(id, handle)
          return json({ id, status: "queued" }, 202)
        }),
        Effect.catchReason(
          "PoolError",
          "QueueFull",
          (reason) => Effect.succeed(json({ error: "queue full", capacity: reason.capacity }, 429))
        ),
        Effect.catchReason("PoolError", "PoolClosed", () => Effect.succeed(json({ error: "shutting down" }, 503))),
        Effect.catch((error) => Effect.succeed(json({ error: error.message }, 400)))
      )
    }
    const match = /^\/jobs\/([\w-]+)$/.exec(path ?? "")
    if (request.method === "GET" && match !== null) {
      const handle = jobs.get(match[1]!)
      return handle === undefined ? json({ error: "no such job" }, 404) : json(yield* describeJob(handle), 200)
    }
    return json({ error: "not found" }, 404)
  })
}

const program = Effect.gen(function*() {
  const server = yield* HttpServer.HttpServer
  // Serve first and make the pool second: scopes close in reverse order, so on shutdown the pool drains
  // while the server still answers (503 for new jobs, status for old ones), and only then does it close.
  const poolReady = yield* Deferred.make<WorkerPool.WorkerPool>()
  yield* server.serve(app(Deferred.await(poolReady)))
  const pool = yield* WorkerPool.make({
    name: "jobs",
    concurrency: 2,
    capacity: 2,
    backpressure: "fail",
    shutdown: { mode: "drain", gracePeriod: "10 seconds" }
  })
  yield* Deferred.succeed(poolReady, pool)
  yield* Effect.addFinalizer(() =>
    Effect.gen(function*() {
      yield* log("shutdown: intake closed, draining queued and running jobs")
      const { totals } = yield* Effect.orDie(WorkerPool.shutdown(pool))
      yield* log(`drained: ${totals.succeeded} succeeded, ${totals.failed} failed, ${totals.cancelled} cancelled`)
    })
  )
  const url = `http://127.0.0.1:${server.address._tag === "UnixPathAddress" ? port : server.address.port}`
  yield* log(`listening on ${url}`)
  if (!serveOnly) {
    yield* Effect.sync(() =>
      void drive(url).catch((error: unknown) => console.log(`client: request failed: ${String(error)}`))
    )
  }
  return yield* Effect.never
}).pipe(Effect.scoped, Effect.provide(NodeHttpServer.layer(() => createServer(), { port, host: "127.0.0.1" })))

// The self-driving demo: plain fetch calls, outside the Effect program so that they outlive its interruption.
const drive = async (url: string) => {
  const post = async (task: string, ms: number) => {
    const response = await fetch(`${url}/jobs`, { method: "POST", body: JSON.stringify({ task, ms }) })
    console.log(`client: POST /jobs ${task} ${ms} ms -> ${response.status} ${await response.text()}`)
  }
  const get = async (id: string) => {
    const response = await fetch(`${url}/jobs/${id}`)
    console.log(`client: GET /jobs/${id} -> ${response.status} ${await response.text()}`)
  }
  for (
    const [task, ms] of [["resize", 800], ["fail", 100], ["encode", 300], ["resize", 200], ["extra", 100]] as const
  ) {
    await post(task, ms)
  }
  await get("job-1")
  console.log("client: sending SIGTERM to the service")
  process.kill(process.pid, "SIGTERM")
  await new Promise((resolve) => setTimeout(resolve, 50))
  await post("late", 100)
  await get("job-4")
  await new Promise((resolve) => setTimeout(resolve, 200))
  await get("job-2")
}

Effect.runSync(log("02-http-job-service: POST /jobs, GET /jobs/:id on 127.0.0.1, graceful on SIGTERM"))
NodeShutdown.runMain(program)
