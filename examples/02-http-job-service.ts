/**
 * @title An HTTP job service with graceful shutdown
 *
 * A template for a job service: `POST /jobs` validates its JSON body with `Schema` and enqueues a job (202;
 * 400 with a typed reason for a malformed, empty or invalid body; 413 over 64 KiB; 429 when the queue is full;
 * 503 while shutting down), `GET /jobs/:id` shows its status and result, `GET /ready` and `GET /health` serve
 * the probes; a wrong method on a known path gets 405, any other path 404. On SIGTERM the service turns
 * `/ready` to 503, stops accepting jobs, drains the queue while still answering status requests, and exits 0.
 * Finished jobs are kept for 10 minutes, and at most the last 1,000 of them, whichever ends first.
 *
 * Run: npm run example:02
 *
 * Run by hand, it drives itself: it sends a few requests (good and bad), then SIGTERM to its own process, and
 * exits 0 once drained. With `--serve` (or `JOB_SERVICE_SERVE=1`) it only serves on 127.0.0.1 (`--port N`,
 * default a free port; `--keep-finished N` and `--keep-finished-ms N` change the retention) until it gets
 * SIGTERM/SIGINT; a second signal forces the exit (code 3).
 */
import { NodeHttpServer } from "@effect/platform-node"
import { Job, Shutdown, WorkerPool } from "@fiberpool/core"
import { NodeShutdown } from "@fiberpool/node"
import { ByteSize, Clock, Context, Effect, Exit, FiberSet, Schema, SchemaIssue } from "effect"
import { HttpRouter, HttpServer, HttpServerError, HttpServerRequest, HttpServerResponse } from "effect/http"
import { createServer } from "node:http"

// ---- The API contract: the request body and every way a request is refused ----

/** The body of `POST /jobs`: a task name and how long it works. The task "fail" fails. */
const JobRequest = Schema.Struct({
  task: Schema.String.check(Schema.isNonEmpty(), Schema.isMaxLength(64)),
  ms: Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: 10_000 }))
})
type JobRequest = typeof JobRequest.Type

const maxBodyBytes = 64 * 1024

class MalformedJson extends Schema.TaggedError<MalformedJson>()("MalformedJson", { detail: Schema.String }) {
  override get message() {
    return `the body is not valid JSON: ${this.detail}`
  }
}
class EmptyBody extends Schema.TaggedError<EmptyBody>()("EmptyBody", {}) {
  override get message() {
    return "the body is empty: send a JSON object like {\"task\":\"resize\",\"ms\":200}"
  }
}
const Issue = Schema.Struct({ path: Schema.Array(Schema.String), message: Schema.String })
class InvalidJob extends Schema.TaggedError<InvalidJob>()("InvalidJob", { issues: Schema.Array(Issue) }) {
  override get message() {
    const where = (path: ReadonlyArray<string>) => (path.length === 0 ? "body" : path.join("."))
    return this.issues.map((issue) => `${where(issue.path)}: ${issue.message}`).join("; ")
  }
}
class BodyTooLarge extends Schema.TaggedError<BodyTooLarge>()("BodyTooLarge", { limitBytes: Schema.Int }) {
  override get message() {
    return `the body is larger than ${this.limitBytes} bytes`
  }
}
class QueueFull extends Schema.TaggedError<QueueFull>()("QueueFull", { capacity: Schema.Int }) {
  override get message() {
    return `the queue is full (${this.capacity} waiting): retry later`
  }
}
class ShuttingDown extends Schema.TaggedError<ShuttingDown>()("ShuttingDown", {}) {
  override get message() {
    return "the service is shutting down and accepts no new jobs"
  }
}
class JobNotFound extends Schema.TaggedError<JobNotFound>()("JobNotFound", { id: Schema.String }) {
  override get message() {
    return `no job ${this.id} (never submitted, or finished and no longer kept)`
  }
}
class RouteNotFound extends Schema.TaggedError<RouteNotFound>()("RouteNotFound", {
  method: Schema.String,
  path: Schema.String
}) {
  override get message() {
    return `no route for ${this.method} ${this.path}`
  }
}
class MethodNotAllowed extends Schema.TaggedError<MethodNotAllowed>()("MethodNotAllowed", {
  method: Schema.String,
  path: Schema.String,
  allowed: Schema.Array(Schema.String)
}) {
  override get message() {
    return `${this.path} does not accept ${this.method}; use ${this.allowed.join(", ")}`
  }
}

const Reason = Schema.Union([
  MalformedJson,
  EmptyBody,
  InvalidJob,
  BodyTooLarge,
  QueueFull,
  ShuttingDown,
  JobNotFound,
  RouteNotFound,
  MethodNotAllowed
])
type Reason = typeof Reason.Type

/** Why the API refused a request. The response body is the encoded reason plus its message. */
class ApiError extends Schema.TaggedError<ApiError>()("ApiError", { reason: Reason }) {
  override get message() {
    return this.reason.message
  }
}

/** The one table that says what each refusal means on the wire. */
const statusOf: { readonly [Tag in Reason["_tag"]]: number } = {
  MalformedJson: 400,
  EmptyBody: 400,
  InvalidJob: 400,
  BodyTooLarge: 413,
  QueueFull: 429,
  ShuttingDown: 503,
  JobNotFound: 404,
  RouteNotFound: 404,
  MethodNotAllowed: 405
}

const encodeReason = Schema.encodeSync(Reason)

const refuse = (reason: Reason) => Effect.fail(new ApiError({ reason }))

const respondWithError = (error: ApiError) =>
  HttpServerResponse.jsonUnsafe(
    { ...encodeReason(error.reason), message: error.message },
    {
      status: statusOf[error.reason._tag],
      headers: error.reason._tag === "MethodNotAllowed" ? { allow: error.reason.allowed.join(", ") } : {}
    }
  )

// ---- The jobs: a pool, plus a bounded record of the finished ones ----

class TaskFailed extends Schema.TaggedError<TaskFailed>()("TaskFailed", { task: Schema.String }) {}

const work = ({ ms, task }: JobRequest) =>
  Effect.sleep(`${ms} millis`).pipe(
    Effect.andThen(task === "fail" ? Effect.fail(new TaskFailed({ task })) : Effect.succeed({ task, tookMs: ms }))
  )

interface JobView {
  readonly id: string
  readonly status: Job.Status
  readonly task: string
  readonly result?: unknown
  readonly error?: string
}

/** How long finished jobs stay answerable: whichever bound is reached first evicts the oldest. */
interface Retention {
  readonly maxFinished: number
  readonly maxAgeMillis: number
}

/** The service the routes use: submit a job, look one up, and whether new jobs are accepted. */
class Jobs extends Context.Service<Jobs, {
  readonly submit: (request: JobRequest) => Effect.Effect<JobView, ApiError>
  readonly get: (id: string) => Effect.Effect<JobView, ApiError>
  readonly isReady: Effect.Effect<boolean>
}>()("examples/02-http-job-service/Jobs") {}

const makeJobs = (pool: WorkerPool.WorkerPool, retention: Retention) =>
  Effect.gen(function*() {
    // `NodeShutdown.runMain` provides the controller; its phase leaves "running" on the first signal.
    const controller = yield* Shutdown.CurrentController
    // Live jobs are bounded by the pool (concurrency + capacity); finished ones by `retention`. A Map iterates
    // in insertion order, so the first entry of `finished` is always the oldest.
    const live = new Map<string, { readonly handle: Job.JobHandle<unknown, TaskFailed>; readonly task: string }>()
    const finished = new Map<string, { readonly view: JobView; readonly at: number }>()
    const watchers = yield* FiberSet.make()
    let next = 0

    const evict = Effect.fnUntraced(function*() {
      const now = yield* Clock.currentTimeMillis
      for (const [id, { at }] of finished) {
        if (finished.size <= retention.maxFinished && now - at <= retention.maxAgeMillis) break
        finished.delete(id)
      }
    })

    const viewOf = Effect.fnUntraced(function*(handle: Job.JobHandle<unknown, TaskFailed>, task: string) {
      const status = yield* handle.status
      if (!Job.isTerminal(status)) return { id: handle.id, status, task } satisfies JobView
      const exit = yield* handle.exit
      if (Exit.isSuccess(exit)) return { id: handle.id, status, task, result: exit.value } satisfies JobView
      const error = exit.cause.reasons.find((reason) => reason._tag === "Fail")?.error
      const tag = error?._tag === "JobError" ? error.reason._tag : error?._tag ?? "defect"
      return { id: handle.id, status, task, error: tag } satisfies JobView
    })

    // Moves a job from `live` to `finished` once it has ended, keeping only its view (not its handle).
    const watch = Effect.fnUntraced(function*(handle: Job.JobHandle<unknown, TaskFailed>, task: string) {
      yield* handle.exit
      const view = yield* viewOf(handle, task)
      live.delete(handle.id)
      finished.set(handle.id, { view, at: yield* Clock.currentTimeMillis })
      yield* evict()
    })

    const submit = Effect.fn("Jobs.submit")(function*(request: JobRequest) {
      yield* evict()
      const id = `job-${++next}`
      const handle = yield* WorkerPool.submit(pool, work(request), { id, metadata: { task: request.task } }).pipe(
        Effect.catchReason("PoolError", "QueueFull", ({ capacity }) => refuse(new QueueFull({ capacity }))),
        Effect.catchReason("PoolError", "PoolClosed", () => refuse(new ShuttingDown())),
        // The other reasons (a duplicate id, invalid job options) cannot happen with the ids and options above.
        Effect.catchTag("PoolError", Effect.die)
      )
      live.set(id, { handle, task: request.task })
      yield* FiberSet.run(watchers, watch(handle, request.task))
      return yield* viewOf(handle, request.task)
    })

    const get = Effect.fn("Jobs.get")(function*(id: string) {
      yield* evict()
      const entry = live.get(id)
      if (entry !== undefined) return yield* viewOf(entry.handle, entry.task)
      const done = finished.get(id)
      if (done !== undefined) return done.view
      return yield* refuse(new JobNotFound({ id }))
    })

    // Ready while no shutdown has begun and the pool takes jobs (its intake also closes when the scope does).
    const isReady = Effect.map(
      WorkerPool.stats(pool),
      (stats) => !stats.closed && (controller === undefined || controller.phase === "running")
    )

    return Jobs.of({ submit, get, isReady })
  })

// ---- The routes ----

const decodeJobRequest = Schema.decodeUnknownEffect(JobRequest)
const toIssues = SchemaIssue.makeFormatterStandardSchemaV1()

/** Reads `POST /jobs`'s body: at most `maxBodyBytes`, valid JSON, a valid {@link JobRequest}. */
const readJobRequest = Effect.gen(function*() {
  const request = yield* HttpServerRequest.HttpServerRequest
  // The server reads at most `maxBodyBytes` (`HttpServerRequest.MaxBodySize`, set where it serves the app).
  const text = yield* request.text.pipe(
    Effect.catchTag(
      "HttpServerError",
      ({ reason }) =>
        reason._tag === "RequestParseError" && reason.reason === "BodyTooLarge"
          ? refuse(new BodyTooLarge({ limitBytes: maxBodyBytes }))
          : refuse(new MalformedJson({ detail: "the body could not be read" }))
    )
  )
  if (text.trim() === "") return yield* refuse(new EmptyBody())
  const json = yield* Effect.try({
    try: (): unknown => JSON.parse(text),
    catch: (error) => new ApiError({ reason: new MalformedJson({ detail: (error as SyntaxError).message }) })
  })
  return yield* decodeJobRequest(json, { errors: "all" }).pipe(
    Effect.catchTag("SchemaError", (error) =>
      refuse(
        new InvalidJob({
          issues: toIssues(error.issue).issues.map((issue) => ({
            path: (issue.path ?? []).map((segment) =>
              String(typeof segment === "object" && segment !== null ? segment.key : segment)
            ),
            message: issue.message
          }))
        })
      ))
  )
})

const pathOf = (request: HttpServerRequest.HttpServerRequest) => request.url.split("?", 1)[0]!

const jobIdParam = HttpRouter.schemaPathParams(Schema.Struct({ id: Schema.String }))

// The methods `HttpRouter` can route; a known path answers the ones it does not serve with 405.
const routerMethods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const

type Handler = Effect.Effect<
  HttpServerResponse.HttpServerResponse,
  ApiError,
  HttpServerRequest.HttpServerRequest | HttpRouter.RouteContext
>

/** Every path the service serves, with a handler per method. */
const routeTable = (jobs: Jobs["Service"]): {
  readonly [Path in HttpRouter.PathInput]?: Partial<Record<typeof routerMethods[number], Handler>>
} => ({
  "/jobs": {
    POST: Effect.gen(function*() {
      const view = yield* jobs.submit(yield* readJobRequest)
      return HttpServerResponse.jsonUnsafe(view, { status: 202, headers: { location: `/jobs/${view.id}` } })
    })
  },
  "/jobs/:id": {
    GET: Effect.gen(function*() {
      const { id } = yield* Effect.orDie(jobIdParam)
      return HttpServerResponse.jsonUnsafe(yield* jobs.get(id))
    })
  },
  "/ready": {
    GET: Effect.map(jobs.isReady, (ready) =>
      ready
        ? HttpServerResponse.jsonUnsafe({ status: "ready" })
        : HttpServerResponse.jsonUnsafe({ status: "shutting down" }, { status: 503 }))
  },
  "/health": { GET: Effect.succeed(HttpServerResponse.jsonUnsafe({ status: "ok" })) }
})

/** The routes as a layer: each path gets its handlers, a typed 405 for the other methods, errors as JSON. */
const Routes = HttpRouter.addAll(Effect.gen(function*() {
  const table = routeTable(yield* Jobs)
  return Object.entries(table).flatMap(([path, served = {}]) => {
    const allowed = routerMethods.filter((method) => served[method] !== undefined)
    const notAllowed = Effect.flatMap(
      HttpServerRequest.HttpServerRequest,
      (request) => refuse(new MethodNotAllowed({ method: request.method, path: pathOf(request), allowed }))
    )
    return routerMethods.map((method) =>
      HttpRouter.route(
        method,
        path as HttpRouter.PathInput,
        Effect.catchTag(served[method] ?? notAllowed, "ApiError", (error) => Effect.succeed(respondWithError(error)))
      )
    )
  })
}))

/** What the router cannot route at all (an unknown path, or a method it has no table for) gets a typed 404. */
const withNotFound = <R>(
  app: Effect.Effect<HttpServerResponse.HttpServerResponse, HttpServerError.HttpServerError, R>
) =>
  Effect.catchReason(app, "HttpServerError", "RouteNotFound", ({ request }) =>
    Effect.succeed(
      respondWithError(
        new ApiError({ reason: new RouteNotFound({ method: request.method, path: pathOf(request) }) })
      )
    ))

// ---- The service ----

class InvalidFlag extends Schema.TaggedError<InvalidFlag>()("InvalidFlag", {
  flag: Schema.String,
  value: Schema.String
}) {
  override get message() {
    return `${this.flag} expects a non-negative integer, got ${JSON.stringify(this.value)}`
  }
}

const flag = (name: string, fallback: number) => {
  const index = process.argv.indexOf(name)
  if (index < 0) return Effect.succeed(fallback)
  const raw = process.argv[index + 1] ?? ""
  const value = Number(raw)
  return raw !== "" && Number.isSafeInteger(value) && value >= 0
    ? Effect.succeed(value)
    : Effect.fail(new InvalidFlag({ flag: name, value: raw }))
}

const serveOnly = process.argv.includes("--serve") || process.env.JOB_SERVICE_SERVE === "1"

const log = (line: string) => Effect.sync(() => console.log(line))

const program = (port: number) =>
  Effect.gen(function*() {
    const retention: Retention = {
      maxFinished: yield* flag("--keep-finished", 1_000),
      maxAgeMillis: yield* flag("--keep-finished-ms", 10 * 60_000)
    }
    const pool = yield* WorkerPool.make({
      name: "jobs",
      concurrency: 2,
      capacity: 2,
      backpressure: "fail",
      shutdown: { mode: "drain", gracePeriod: "10 seconds" }
    })
    const jobs = yield* makeJobs(pool, retention)
    const server = yield* HttpServer.HttpServer
    const app = yield* HttpRouter.toHttpEffect(Routes).pipe(Effect.provideService(Jobs, jobs))
    yield* server.serve(
      withNotFound(app).pipe(Effect.provideService(HttpServerRequest.MaxBodySize, ByteSize.bytes(maxBodyBytes)))
    )
    // Finalizers run in reverse order: this one runs before the server stops serving, so the pool drains while
    // the server still answers (503 for new jobs and /ready, status for the others).
    yield* Effect.addFinalizer(() =>
      Effect.gen(function*() {
        yield* log("shutdown: /ready is 503, intake closed, draining queued and running jobs")
        const { totals } = yield* Effect.orDie(WorkerPool.shutdown(pool))
        yield* log(`drained: ${totals.succeeded} succeeded, ${totals.failed} failed, ${totals.cancelled} cancelled`)
      })
    )
    const url = `http://127.0.0.1:${server.address._tag === "UnixPathAddress" ? port : server.address.port}`
    yield* log(`listening on ${url}`)
    yield* log(
      `bodies up to ${maxBodyBytes / 1024} KiB; finished jobs kept ${retention.maxAgeMillis / 1000} s, ` +
        `at most the last ${retention.maxFinished}`
    )
    if (!serveOnly) {
      yield* Effect.sync(() =>
        void drive(url).catch((error: unknown) => console.log(`client: request failed: ${String(error)}`))
      )
    }
    return yield* Effect.never
  }).pipe(Effect.scoped, Effect.provide(NodeHttpServer.layer(() => createServer(), { port, host: "127.0.0.1" })))

// The self-driving demo: plain fetch calls, outside the Effect program so that they outlive its interruption.
const drive = async (url: string) => {
  const send = async (label: string, path: string, init?: RequestInit) => {
    const response = await fetch(`${url}${path}`, init)
    console.log(`client: ${label} -> ${response.status} ${await response.text()}`)
  }
  const post = (task: string, ms: number) =>
    send(`POST /jobs ${task} ${ms} ms`, "/jobs", { method: "POST", body: JSON.stringify({ task, ms }) })
  const get = (path: string) => send(`GET ${path}`, path)

  await get("/ready")
  await send("POST /jobs {bad json", "/jobs", { method: "POST", body: "{bad json" })
  await send(`POST /jobs {"ms":"abc"}`, "/jobs", { method: "POST", body: `{"ms":"abc"}` })
  await send("POST /jobs (empty body)", "/jobs", { method: "POST" })
  await send("POST /jobs (100 KiB body)", "/jobs", {
    method: "POST",
    body: JSON.stringify({ task: "x".repeat(100 * 1024), ms: 1 })
  })
  await send("DELETE /jobs", "/jobs", { method: "DELETE" })
  await get("/nope")
  for (
    // The first two run for a while, so the next two wait and the fifth finds the queue full.
    const [task, ms] of [["resize", 1500], ["fail", 1000], ["encode", 300], ["resize", 200], ["extra", 100]] as const
  ) {
    await post(task, ms)
  }
  await get("/jobs/job-1")
  console.log("client: sending SIGTERM to the service")
  process.kill(process.pid, "SIGTERM")
  await new Promise((resolve) => setTimeout(resolve, 50))
  await get("/ready")
  await post("late", 100)
  await get("/jobs/job-4")
  // Status requests are still answered while the pool drains: wait for the failing job's outcome.
  for (let tries = 0; tries < 100; tries++) {
    const { status } = await (await fetch(`${url}/jobs/job-2`)).json() as { status: string }
    if (status !== "running" && status !== "queued") break
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  await get("/jobs/job-2")
}

Effect.runSync(log("02-http-job-service: POST /jobs, GET /jobs/:id, /ready on 127.0.0.1, graceful on SIGTERM"))
NodeShutdown.runMain(Effect.flatMap(flag("--port", 0), program))
