/**
 * The dashboard's routes, relative to where it is mounted (the root of its own port, or a router prefix):
 *
 * - `GET /`: the page; `GET /api/snapshot`: one snapshot as JSON; `GET /api/events`: snapshots as Server-Sent
 *   Events (`event: snapshot`), one per refresh interval, the first at once.
 * - `POST /api/queues/:name/requeue` and `/cancel`, `POST /api/pools/:name/cancel`, with `{"id": "..."}`: guarded
 *   write actions.
 *
 * Every error answer is JSON `{ "error": { "reason", "message" } }`. Order of the checks on an action: route,
 * method, guard (before the body is read, so that an unauthenticated caller learns nothing about the queues),
 * body, queue or pool, action support, result.
 */
import type { Shutdown } from "@fiberpool/core"
import * as Clock from "effect/Clock"
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Fiber from "effect/Fiber"
import type { HttpServerRequest } from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Redacted from "effect/Redacted"
import * as Schema from "effect/Schema"
import * as Stream from "effect/Stream"
import { timingSafeEqual } from "node:crypto"
import type { CancelOutcome, ErrorReason, Guard, QueueSource, QueueView, Snapshot } from "../NodeDashboard.ts"
import { page } from "./dashboardPage.ts"
import type { Tracker } from "./dashboardState.ts"

/** @internal */
export interface TrackedPool {
  readonly tracker: Tracker
  cancel: ((jobId: string) => Effect.Effect<CancelOutcome, unknown>) | undefined
}

/** @internal */
export interface Context {
  readonly title: string
  readonly trackers: () => ReadonlyArray<TrackedPool>
  readonly queues: () => ReadonlyArray<QueueSource>
  readonly guard: Guard | undefined
  readonly controller: Shutdown.Controller | undefined
  readonly refreshMillis: number
  readonly windowSeconds: number
  readonly closed: Deferred.Deferred<void>
  readonly cache: { current: Snapshot | undefined }
}

/** @internal */
const maxBodyBytes = 16 * 1024

/** How long an action may take before the answer is 202 (still in progress) instead of its result. */
const actionWaitMillis = 3000

/**
 * The snapshot, shared by every client within half a refresh interval, so that the queue sources are read once
 * per interval however many pages are open.
 *
 * @internal
 */
export const snapshot = (ctx: Context): Effect.Effect<Snapshot> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => {
    const cached = ctx.cache.current
    if (cached !== undefined && now - cached.now >= 0 && now - cached.now < ctx.refreshMillis / 2) {
      return Effect.succeed(cached)
    }
    return Effect.tap(build(ctx, now), (fresh) => Effect.sync(() => (ctx.cache.current = fresh)))
  })

/**
 * A fresh snapshot, for `Dashboard.snapshot`.
 *
 * @internal
 */
export const freshSnapshot = (ctx: Context): Effect.Effect<Snapshot> =>
  Effect.flatMap(Clock.currentTimeMillis, (now) => build(ctx, now))

const build = (ctx: Context, now: number): Effect.Effect<Snapshot> =>
  Effect.gen(function*() {
    const pools = yield* Effect.forEach(
      ctx.trackers(),
      ({ cancel, tracker }) =>
        Effect.map(
          tracker.snapshot(now),
          (p) => ({ name: p.stats.name, ...p, actions: { cancel: cancel !== undefined } })
        )
    )
    const queues = yield* Effect.forEach(ctx.queues(), queueView, { concurrency: "unbounded" })
    return {
      title: ctx.title,
      now,
      windowSeconds: ctx.windowSeconds,
      phase: ctx.controller?.phase ?? null,
      actions: ctx.guard !== undefined,
      pools,
      queues
    }
  })

/** @internal */
export const handle = (ctx: Context, path: string, request: HttpServerRequest): Effect.Effect<
  HttpServerResponse.HttpServerResponse
> => {
  const method = request.method
  if (path === "/" || path === "" || path === "/api/snapshot" || path === "/api/events") {
    if (method !== "GET" && method !== "HEAD") return Effect.succeed(methodNotAllowed("GET, HEAD"))
    if (path === "/api/snapshot") {
      return Effect.map(snapshot(ctx), (body) => HttpServerResponse.jsonUnsafe(body, { headers: noStore }))
    }
    if (path === "/api/events") return Effect.succeed(events(ctx))
    return Effect.succeed(HttpServerResponse.html(page(ctx.title)).pipe(HttpServerResponse.setHeaders(pageHeaders)))
  }
  const action = /^\/api\/(queues|pools)\/([^/]+)\/(requeue|cancel)$/.exec(path)
  if (action === null || (action[1] === "pools" && action[3] !== "cancel")) {
    return Effect.succeed(error(404, "NotFound", `No dashboard route ${path}`))
  }
  if (method !== "POST") return Effect.succeed(methodNotAllowed("POST"))
  const target = action[1] as "queues" | "pools"
  const kind = action[3] as "requeue" | "cancel"
  const unknown = (name: string) =>
    target === "queues"
      ? error(404, "UnknownQueue", `No queue named ${name}`)
      : error(404, "UnknownPool", `No pool named ${name}`)
  return Effect.gen(function*() {
    const denied = yield* authorize(ctx.guard, request)
    if (denied !== undefined) return denied
    // A malformed escape (`%E0%A4%A`) makes decodeURIComponent throw: no queue or pool has such a name.
    const decodedName = yield* Effect.option(Effect.try(() => decodeURIComponent(action[2])))
    if (decodedName._tag === "None") return unknown(action[2])
    const name = decodedName.value
    const body = yield* request.text.pipe(Effect.option)
    if (body._tag === "None" || Buffer.byteLength(body.value) > maxBodyBytes) {
      return error(400, "MalformedBody", `The body must be JSON {"id": string} of at most ${maxBodyBytes} bytes`)
    }
    const decoded = yield* Effect.result(decodeActionBody(body.value))
    if (decoded._tag === "Failure") {
      return error(400, "MalformedBody", `The body must be JSON {"id": string}: ${decoded.failure.message}`)
    }
    const id = decoded.success.id
    const where = target === "queues" ? `queue ${name}` : `pool ${name}`
    let run: ((id: string) => Effect.Effect<boolean | CancelOutcome, unknown>) | undefined
    if (target === "queues") {
      const source = ctx.queues().find((queue) => queue.name === name)
      if (source === undefined) return unknown(JSON.stringify(name))
      run = kind === "requeue" ? source.requeue : source.cancel
    } else {
      const pool = ctx.trackers().find(({ tracker }) => tracker.pool.name === name)
      if (pool === undefined) return unknown(JSON.stringify(name))
      run = pool.cancel
    }
    if (run === undefined) {
      return error(404, "ActionNotSupported", `The ${where} does not support ${kind}`)
    }
    // A running pool job that ignores interruption stops when it likes: answer 202 after a bounded wait, while
    // the cancel goes on in the background.
    const running = yield* Effect.forkDetach(Effect.result(run(id)))
    const settled = yield* Effect.timeoutOption(Fiber.join(running), actionWaitMillis)
    if (settled._tag === "None") {
      yield* Effect.logInfo(`dashboard: ${kind} ${id} on ${where} requested, still in progress`)
      return HttpServerResponse.jsonUnsafe(
        { ok: true, [target === "queues" ? "queue" : "pool"]: name, action: kind, id, done: false },
        { status: 202, headers: noStore }
      )
    }
    const outcome = settled.value
    if (outcome._tag === "Failure") {
      return error(502, "SourceFailed", `${kind} of ${JSON.stringify(id)} failed: ${describe(outcome.failure)}`)
    }
    const result = outcome.success
    if (result === false) return error(404, "DeadLetterNotFound", `No dead letter ${JSON.stringify(id)} in ${name}`)
    if (result === "not-found") return error(404, "JobNotFound", `No job ${JSON.stringify(id)} in the ${where}`)
    if (result !== true && result !== "cancelled") {
      return error(409, "NotCancellable", `Job ${JSON.stringify(id)} cannot be cancelled: ${notCancellable[result]}`)
    }
    ctx.cache.current = undefined
    yield* Effect.logInfo(`dashboard: ${kind} ${id} on ${where}`)
    return HttpServerResponse.jsonUnsafe(
      { ok: true, [target === "queues" ? "queue" : "pool"]: name, action: kind, id },
      { headers: noStore }
    )
  })
}

// ---- Internal ----

const notCancellable = {
  running: "a worker has claimed it, it runs to its end",
  completed: "it has completed",
  failed: "it has already ended (failed or cancelled)"
} as const

const noStore = { "cache-control": "no-store" }
const pageHeaders = {
  "cache-control": "no-store",
  "x-content-type-options": "nosniff",
  "content-security-policy":
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self'"
}

const error = (status: number, reason: ErrorReason, message: string, headers?: Record<string, string>) =>
  HttpServerResponse.jsonUnsafe({ error: { reason, message } }, { status, headers: { ...noStore, ...headers } })

const methodNotAllowed = (allow: string) => error(405, "MethodNotAllowed", `Use ${allow} on this route`, { allow })

const ActionBody = Schema.fromJsonString(Schema.Struct({ id: Schema.NonEmptyString }))
const decodeActionBody = Schema.decodeUnknownEffect(ActionBody)

const authorize = (
  guard: Guard | undefined,
  request: HttpServerRequest
): Effect.Effect<HttpServerResponse.HttpServerResponse | undefined> => {
  if (guard === undefined) {
    return Effect.succeed(error(403, "ActionsDisabled", "Write actions are disabled: configure the `guard` option"))
  }
  if ("authorize" in guard) {
    return Effect.map(
      Effect.orElseSucceed(guard.authorize(request), () => false),
      (allowed) => allowed ? undefined : error(403, "Forbidden", "The guard refused this request")
    )
  }
  const header = request.headers["authorization"]
  const match = typeof header === "string" ? /^Bearer (.+)$/i.exec(header.trim()) : null
  if (match === null) {
    return Effect.succeed(
      error(401, "Unauthorized", "Send `Authorization: Bearer <token>`", { "www-authenticate": "Bearer" })
    )
  }
  const expected = Buffer.from(typeof guard.token === "string" ? guard.token : Redacted.value(guard.token))
  const given = Buffer.from(match[1])
  // Constant-time comparison, so the token cannot be guessed from response times.
  const ok = given.length === expected.length && timingSafeEqual(given, expected)
  return Effect.succeed(ok ? undefined : error(403, "Forbidden", "Wrong token"))
}

const encoder = new TextEncoder()

const events = (ctx: Context): HttpServerResponse.HttpServerResponse => {
  const ticks = Stream.tick(ctx.refreshMillis).pipe(
    Stream.mapEffect(() => snapshot(ctx)),
    Stream.map((snap) => encoder.encode(`event: snapshot\ndata: ${JSON.stringify(snap)}\n\n`))
  )
  const body = Stream.concat(Stream.succeed(encoder.encode("retry: 2000\n\n")), ticks).pipe(
    // An open stream must not hold the server's shutdown up: it ends when the dashboard closes.
    Stream.interruptWhen(Deferred.await(ctx.closed))
  )
  return HttpServerResponse.stream(body, {
    contentType: "text/event-stream",
    headers: { "cache-control": "no-store", "x-accel-buffering": "no" }
  })
}

const queueView = (source: QueueSource): Effect.Effect<QueueView> =>
  Effect.gen(function*() {
    const letters = yield* Effect.result(source.deadLetters)
    const counts = source.counts === undefined ? undefined : yield* Effect.result(source.counts)
    const jobs = source.jobs === undefined ? undefined : yield* Effect.result(source.jobs)
    const failure = letters._tag === "Failure"
      ? describe(letters.failure)
      : counts?._tag === "Failure"
      ? describe(counts.failure)
      : jobs?._tag === "Failure"
      ? describe(jobs.failure)
      : null
    return {
      name: source.name,
      deadLetters: letters._tag === "Success" ? letters.success.slice(0, 200) : [],
      jobs: jobs?._tag === "Success" ? jobs.success.slice(0, 200) : [],
      counts: counts?._tag === "Success" ? counts.success : null,
      actions: { requeue: true, cancel: source.cancel !== undefined },
      error: failure
    }
  })

const describe = (failure: unknown): string =>
  failure instanceof Error ? `${failure.name}: ${failure.message}` : String(failure)
