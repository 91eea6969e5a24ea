/**
 * A live operations dashboard for pools and durable queues: a page served over HTTP, updated every second over
 * Server-Sent Events.
 *
 * For every registered pool it shows concurrency, capacity, queued and running jobs, waiting submitters, the
 * lifetime counters, throughput and latency over the last minutes, the running jobs with their age and
 * attempt, recent failures with their causes, the shutdown state and the last shutdown report. For every
 * registered {@link QueueSource}: its counts, its dead letters with their reasons, and requeue buttons, and its
 * pending and delayed jobs with cancel buttons if the source supports cancel. A pool registered with a cancel
 * hook ({@link PoolSource}, for example from a {@link JobRegistry}) gets cancel buttons on its queued and running
 * jobs.
 *
 * Pools and queues are registered explicitly (the `pools` and `queues` options, or {@link register} later):
 * the dashboard shows what the application hands it, and nothing else of the process. Make the dashboard before
 * the pools (and register them) so that it closes after them and shows their shutdown while they drain. Write
 * actions are closed unless a {@link Guard} is configured: without one they answer 403.
 *
 * Serve it on its own port ({@link make}, {@link layer}: 127.0.0.1 by default, port 0 picks a free port) or
 * mount it on an application's `HttpRouter` ({@link layerRouter}, under `/dashboard` by default).
 *
 * @since 0.1.0
 */
import { Job, PoolError, Shutdown, WorkerPool } from "@fiberpool/core"
import * as Context from "effect/Context"
import * as Deferred from "effect/Deferred"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as HttpRouter from "effect/http/HttpRouter"
import { HttpServerRequest } from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import type * as Redacted from "effect/Redacted"
import * as Scope from "effect/Scope"
import * as Http from "./internal/dashboardHttp.ts"
import type * as State from "./internal/dashboardState.ts"
import { track } from "./internal/dashboardState.ts"
import { listen } from "./internal/listen.ts"
import { ListenError } from "./NodeMetrics.ts"

/**
 * A dead letter as the dashboard shows it: `error` is the reason it was given up.
 *
 * @example
 * ```ts
 * import type { NodeDashboard } from "@fiberpool/node"
 *
 * const letter: NodeDashboard.DeadLetter = {
 *   id: "invoice-7", type: "send-invoice", error: "SmtpDown", attempts: 3, failedAt: 0, payload: { cents: 1200 }
 * }
 * console.log(letter.attempts) // => 3
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface DeadLetter {
  readonly id: string
  readonly type: string
  readonly error: string
  readonly attempts: number
  readonly failedAt: number
  readonly payload?: unknown
}

/**
 * What a cancel action did, as {@link QueueSource}`.cancel` and {@link PoolSource}`.cancel` report it (the same
 * values as `DurableQueue.cancel`'s result): `"cancelled"`, or why not: `"running"` (a durable job a worker has
 * claimed), `"completed"`, `"failed"` (already ended otherwise), `"not-found"`. The page answers 200 for
 * `"cancelled"`, 404 `JobNotFound` for `"not-found"`, and 409 `NotCancellable` otherwise.
 *
 * @example
 * ```ts
 * import type { NodeDashboard } from "@fiberpool/node"
 *
 * const outcome: NodeDashboard.CancelOutcome = "not-found"
 * console.log(outcome) // => not-found
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type CancelOutcome = "cancelled" | "running" | "completed" | "failed" | "not-found"

/**
 * A job of a queue that has not run yet, listed with a cancel button: `state` is `"pending"` (claimable now) or
 * `"delayed"` (`runAt`, if known, is when it becomes claimable, epoch milliseconds).
 *
 * @example
 * ```ts
 * import type { NodeDashboard } from "@fiberpool/node"
 *
 * const job: NodeDashboard.QueueJob = { id: "reminder-1", type: "remind", state: "delayed", runAt: 0 }
 * console.log(job.state) // => delayed
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface QueueJob {
  readonly id: string
  readonly type: string
  readonly state: "pending" | "delayed"
  readonly runAt?: number | undefined
}

/**
 * A queue the dashboard can show and act on. `@fiberpool/node` does not depend on `@fiberpool/durable`, so the
 * application adapts its queue: `deadLetters` lists them, `requeue` puts one back (`false`: no such dead
 * letter), `counts` (optional) gives counts by state (`DurableQueue.stats`), `cancel` (optional) cancels a
 * pending or delayed job (`DurableQueue.cancel`), `jobs` (optional) lists pending and delayed jobs to show with
 * a cancel button (the page also has a field to cancel any job by id).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import type { NodeDashboard } from "@fiberpool/node"
 *
 * const letters = new Map([["j1", { id: "j1", type: "email", error: "boom", attempts: 3, failedAt: 0 }]])
 * const waiting = new Set(["j2"])
 * const source: NodeDashboard.QueueSource = {
 *   name: "mail",
 *   deadLetters: Effect.sync(() => [...letters.values()]),
 *   requeue: (id) => Effect.sync(() => letters.delete(id)),
 *   counts: Effect.sync(() => ({ dead: letters.size, delayed: waiting.size })),
 *   jobs: Effect.sync(() => [...waiting].map((id) => ({ id, type: "email", state: "delayed" as const }))),
 *   cancel: (id) => Effect.sync(() => waiting.delete(id) ? "cancelled" : "not-found")
 * }
 * console.log(await Effect.runPromise(source.requeue("j1"))) // => true
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface QueueSource {
  readonly name: string
  readonly deadLetters: Effect.Effect<ReadonlyArray<DeadLetter>, unknown>
  readonly requeue: (id: string) => Effect.Effect<boolean, unknown>
  readonly counts?: Effect.Effect<Readonly<Record<string, number>>, unknown> | undefined
  readonly cancel?: ((id: string) => Effect.Effect<CancelOutcome, unknown>) | undefined
  readonly jobs?: Effect.Effect<ReadonlyArray<QueueJob>, unknown> | undefined
}

/**
 * A pool with a cancel hook: the page shows cancel buttons on its queued and running jobs, and
 * `POST api/pools/:name/cancel` calls `cancel` with the job's id. A {@link JobRegistry} gives one from the
 * handles the application submits; a pool registered without a hook has no cancel action.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 * import { NodeDashboard } from "@fiberpool/node"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ name: "mailer", concurrency: 2 })
 *   const jobs = NodeDashboard.makeJobRegistry()
 *   const source: NodeDashboard.PoolSource = { pool, cancel: jobs.cancel }
 *   const dashboard = yield* NodeDashboard.make({ pools: [source], port: 0 })
 *   console.log((yield* dashboard.snapshot).pools[0].actions.cancel) // => true
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface PoolSource {
  readonly pool: WorkerPool.WorkerPool
  readonly cancel: (jobId: string) => Effect.Effect<CancelOutcome, unknown>
}

/**
 * The handles of the jobs an application submitted, by id, so that the dashboard can cancel them: `add` records
 * a handle (pipe `WorkerPool.submit` into `Effect.tap(jobs.add)`), `cancel` cancels the job with this id (a
 * queued one ends `cancelled`, a running one is interrupted, and `cancel` returns once it has stopped).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 * import { NodeDashboard } from "@fiberpool/node"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ name: "mailer", concurrency: 1 })
 *   const jobs = NodeDashboard.makeJobRegistry()
 *   const handle = yield* WorkerPool.submit(pool, Effect.never, { id: "stuck" }).pipe(Effect.tap(jobs.add))
 *   console.log(yield* jobs.cancel("stuck"), yield* jobs.cancel("nope")) // => cancelled not-found
 *   console.log(yield* jobs.cancel("stuck")) // => failed
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface JobRegistry {
  readonly add: (handle: Job.JobHandle<unknown, unknown>) => Effect.Effect<void>
  readonly cancel: (jobId: string) => Effect.Effect<CancelOutcome>
}

/**
 * Makes a {@link JobRegistry}. It keeps the handles of unfinished jobs only: finished ones are dropped as new
 * ones are added, so its memory follows the pool's live jobs. `cancel` answers `"completed"` for a job that
 * succeeded, `"failed"` for one that ended otherwise, `"not-found"` for an id it never saw (or forgot).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 * import { NodeDashboard } from "@fiberpool/node"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ name: "mailer", concurrency: 1 })
 *   const jobs = NodeDashboard.makeJobRegistry()
 *   const done = yield* WorkerPool.submit(pool, Effect.succeed(1), { id: "done" }).pipe(Effect.tap(jobs.add))
 *   yield* done.await
 *   console.log(yield* jobs.cancel("done")) // => completed
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const makeJobRegistry = (): JobRegistry => {
  const handles = new Map<string, Job.JobHandle<unknown, unknown>>()
  let pruneAt = 64
  const prune = Effect.gen(function*() {
    for (const [id, handle] of handles) {
      if (Job.isTerminal(yield* handle.status)) handles.delete(id)
    }
    pruneAt = Math.max(64, handles.size * 2)
  })
  return {
    add: (handle) =>
      Effect.suspend(() => {
        handles.set(handle.id, handle)
        return handles.size >= pruneAt ? prune : Effect.void
      }),
    cancel: (jobId) =>
      Effect.suspend(() => {
        const handle = handles.get(jobId)
        if (handle === undefined) return Effect.succeed("not-found" as const)
        return Effect.flatMap(handle.status, (status): Effect.Effect<CancelOutcome> => {
          if (status === "succeeded") return Effect.succeed("completed")
          if (Job.isTerminal(status)) return Effect.succeed("failed")
          return Effect.as(handle.cancel, "cancelled")
        })
      })
  }
}

/**
 * What opens the write actions: a bearer token (`Authorization: Bearer <token>`, compared in constant time), or
 * a hook that decides for each request (a failing hook refuses).
 *
 * @example
 * ```ts
 * import { Effect, Redacted } from "effect"
 * import type { NodeDashboard } from "@fiberpool/node"
 *
 * const byToken: NodeDashboard.Guard = { token: Redacted.make("s3cret") }
 * const byHook: NodeDashboard.Guard = {
 *   authorize: (request) => Effect.succeed(request.headers["x-operator"] === "alice")
 * }
 * console.log("token" in byToken, "authorize" in byHook) // => true true
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type Guard =
  | { readonly token: string | Redacted.Redacted<string> }
  | { readonly authorize: (request: HttpServerRequest) => Effect.Effect<boolean, unknown> }

/**
 * Why the dashboard refused a request; the body of every error answer is
 * `{ "error": { "reason": ErrorReason, "message": string } }`.
 *
 * - `NotFound` (404): no such route; `MethodNotAllowed` (405).
 * - `ActionsDisabled` (403): no guard is configured; `Unauthorized` (401): no bearer token sent; `Forbidden`
 *   (403): wrong token, or the hook refused.
 * - `MalformedBody` (400): the body is not JSON `{"id": string}` (at most 16 KiB).
 * - `UnknownQueue`, `UnknownPool`, `ActionNotSupported`, `DeadLetterNotFound`, `JobNotFound` (404);
 *   `NotCancellable` (409): the job is running (durable), or has already ended; `SourceFailed` (502): the source
 *   or the cancel hook failed.
 *
 * @example
 * ```ts
 * import type { NodeDashboard } from "@fiberpool/node"
 *
 * const reason: NodeDashboard.ErrorReason = "Unauthorized"
 * console.log(reason) // => Unauthorized
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type ErrorReason =
  | "NotFound"
  | "MethodNotAllowed"
  | "ActionsDisabled"
  | "Unauthorized"
  | "Forbidden"
  | "MalformedBody"
  | "UnknownQueue"
  | "UnknownPool"
  | "ActionNotSupported"
  | "DeadLetterNotFound"
  | "JobNotFound"
  | "NotCancellable"
  | "SourceFailed"

/**
 * One pool in a {@link Snapshot}: its stats, running jobs (`ageMillis` since the first attempt started), the
 * oldest 100 queued jobs (`ageMillis` since submission), whether it can cancel jobs ({@link PoolSource}), recent
 * failures (newest first, cause rendered), per-second series over the window (`end` is the end of the
 * last second; latency is from submission to the terminal event) and its shutdown report once it has one.
 *
 * @example
 * ```ts
 * import type { NodeDashboard } from "@fiberpool/node"
 *
 * const running = (pool: NodeDashboard.PoolView) => pool.runningJobs.map((job) => `${job.id}#${job.attempt}`)
 * console.log(typeof running) // => function
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface PoolView extends State.PoolSnapshot {
  readonly name: string
  readonly actions: { readonly cancel: boolean }
}

/**
 * One queue in a {@link Snapshot}: `jobs` are its pending and delayed jobs (at most 200, from
 * {@link QueueSource}`.jobs`); `error` says why the source could not be read, if it could not.
 *
 * @example
 * ```ts
 * import type { NodeDashboard } from "@fiberpool/node"
 *
 * const view: NodeDashboard.QueueView = {
 *   name: "mail", deadLetters: [], jobs: [], counts: { dead: 0 }, actions: { requeue: true, cancel: false }, error: null
 * }
 * console.log(view.actions.requeue) // => true
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface QueueView {
  readonly name: string
  readonly deadLetters: ReadonlyArray<DeadLetter>
  readonly jobs: ReadonlyArray<QueueJob>
  readonly counts: Readonly<Record<string, number>> | null
  readonly actions: { readonly requeue: boolean; readonly cancel: boolean }
  readonly error: string | null
}

/**
 * What the page shows, as served by `GET api/snapshot` and each `snapshot` event of `GET api/events`.
 * `phase` is the application's shutdown phase (`null` without a controller); `actions` tells whether a guard
 * is configured.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 * import { NodeDashboard } from "@fiberpool/node"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ name: "mailer", concurrency: 2 })
 *   const dashboard = yield* NodeDashboard.make({ pools: [pool], port: 0 })
 *   const snapshot: NodeDashboard.Snapshot = yield* dashboard.snapshot
 *   console.log(snapshot.pools[0].stats.concurrency) // => 2
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Snapshot {
  readonly title: string
  readonly now: number
  readonly windowSeconds: number
  readonly phase: Shutdown.Phase | null
  readonly actions: boolean
  readonly pools: ReadonlyArray<PoolView>
  readonly queues: ReadonlyArray<QueueView>
}

/**
 * Options of the dashboard.
 *
 * - `pools`, `queues`: what it shows (more can be added with {@link register} / {@link registerQueue}); a pool
 *   given as a {@link PoolSource} can cancel its jobs from the page.
 * - `guard`: opens the write actions (see {@link Guard}). Default: none, every action answers 403.
 * - `controller`: whose shutdown phase it shows. Default `Shutdown.CurrentController` (set by
 *   `NodeShutdown.runMain`).
 * - `refreshInterval`: how often the page is updated. Default 1 second.
 * - `window`: how far back the charts go, in whole seconds from 10 s to 1 hour. Default 5 minutes.
 * - `title`: the page's title. Default `"fiberpool"`.
 * - `port` (default 9465; 0 picks a free port) and `host` (default `"127.0.0.1"`): where {@link make} listens.
 *
 * @example
 * ```ts
 * import type { NodeDashboard } from "@fiberpool/node"
 *
 * const options: NodeDashboard.Options = { port: 0, guard: { token: "s3cret" }, window: "2 minutes" }
 * console.log(options.port) // => 0
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly pools?: ReadonlyArray<WorkerPool.WorkerPool | PoolSource> | undefined
  readonly queues?: ReadonlyArray<QueueSource> | undefined
  readonly guard?: Guard | undefined
  readonly controller?: Shutdown.Controller | undefined
  readonly refreshInterval?: Duration.Input | undefined
  readonly window?: Duration.Input | undefined
  readonly title?: string | undefined
  readonly port?: number | undefined
  readonly host?: string | undefined
}

/**
 * A running dashboard: `register` / `registerQueue` add a pool (or a {@link PoolSource}) or a queue (a pool
 * registered twice is shown once, with the last cancel hook given), `snapshot` reads what the page shows. `url` is where it listens (`undefined` when mounted on a
 * router).
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 * import { NodeDashboard } from "@fiberpool/node"
 *
 * const program = Effect.gen(function*() {
 *   const dashboard = yield* NodeDashboard.make({ port: 0 })
 *   yield* dashboard.register(yield* WorkerPool.make({ name: "late", concurrency: 1 }))
 *   console.log((yield* dashboard.snapshot).pools.map((p) => p.name)) // => [ 'late' ]
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Dashboard {
  readonly url: string | undefined
  readonly register: (pool: WorkerPool.WorkerPool | PoolSource) => Effect.Effect<void>
  readonly registerQueue: (source: QueueSource) => Effect.Effect<void>
  readonly snapshot: Effect.Effect<Snapshot>
}

/**
 * The service key of the dashboard provided by {@link layer} and {@link layerRouter}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { NodeDashboard } from "@fiberpool/node"
 *
 * const program = Effect.gen(function*() {
 *   const dashboard = yield* NodeDashboard.Service
 *   const response = yield* Effect.promise(() => fetch(`${dashboard.url}/api/snapshot`))
 *   console.log(response.status) // => 200
 * })
 * await Effect.runPromise(program.pipe(Effect.provide(NodeDashboard.layer({ port: 0 }))))
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export class Service extends Context.Service<Service, Dashboard>()("@fiberpool/node/NodeDashboard") {}

/**
 * Starts the dashboard on its own port for the lifetime of the current scope.
 *
 * **Details**
 *
 * Fails with `InvalidOptions` (naming `port`, `host`, `refreshInterval` or `window`) or
 * `NodeMetrics.ListenError`. Logs `dashboard listening on http://host:port/` once bound.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { NodeDashboard } from "@fiberpool/node"
 *
 * const program = Effect.gen(function*() {
 *   const dashboard = yield* NodeDashboard.make({ port: 0 })
 *   const response = yield* Effect.promise(() => fetch(`${dashboard.url}/nope`))
 *   console.log(response.status) // => 404
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (
  options?: Options
): Effect.Effect<Dashboard, PoolError.InvalidOptions | ListenError, Scope.Scope> =>
  Effect.gen(function*() {
    const port = options?.port ?? defaultPort
    const host = options?.host ?? defaultHost
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      return yield* invalid("port", String(port), "an integer from 0 to 65535")
    }
    if (typeof host !== "string" || host.length === 0) {
      return yield* invalid("host", JSON.stringify(host) ?? String(host), "a non-empty host name or IP address")
    }
    const core = yield* makeCore(options)
    const { server, url } = yield* listen(host, port)
    yield* server.serve(
      Effect.flatMap(HttpServerRequest, (request) => Http.handle(core.context, request.url.split("?", 1)[0], request))
    )
    yield* Effect.logInfo(`dashboard listening on ${url}/`)
    return { ...core.dashboard, url }
  })

/**
 * A layer that runs the dashboard on its own port for the layer's lifetime and provides it as {@link Service}.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 * import { NodeDashboard } from "@fiberpool/node"
 *
 * const Pool = WorkerPool.layer({ name: "mailer", concurrency: 2 })
 * const Dashboard = Layer.effect(
 *   NodeDashboard.Service,
 *   Effect.flatMap(WorkerPool.Service, (pool) => NodeDashboard.make({ pools: [pool], port: 0 }))
 * ).pipe(Layer.provide(Pool))
 * const program = Effect.gen(function*() {
 *   const snapshot = yield* (yield* NodeDashboard.Service).snapshot
 *   console.log(snapshot.pools[0].name) // => mailer
 * })
 * await Effect.runPromise(program.pipe(Effect.provide(Dashboard)))
 * console.log(Layer.isLayer(NodeDashboard.layer({ port: 0 }))) // => true
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options?: Options): Layer.Layer<Service, PoolError.InvalidOptions | ListenError> =>
  Layer.effect(Service, make(options))

/**
 * A layer that mounts the dashboard on the application's `HttpRouter` under `prefix` (default `"/dashboard"`;
 * the page is at `prefix/`, and `prefix` alone redirects there) and provides it as {@link Service}. `port` and
 * `host` are ignored: the application's server serves it.
 *
 * @example
 * ```ts
 * import { Effect, Layer } from "effect"
 * import { HttpRouter } from "effect/http"
 * import { NodeDashboard } from "@fiberpool/node"
 *
 * const Routes = NodeDashboard.layerRouter({ prefix: "/ops" })
 * const program = Effect.gen(function*() {
 *   const handler = yield* HttpRouter.toHttpEffect(Routes)
 *   console.log(typeof handler) // => object
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * console.log(Layer.isLayer(Routes)) // => true
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerRouter = (
  options?: Options & { readonly prefix?: string | undefined }
): Layer.Layer<Service, PoolError.InvalidOptions, HttpRouter.HttpRouter> =>
  Layer.effect(
    Service,
    Effect.gen(function*() {
      const prefix = (options?.prefix ?? "/dashboard").replace(/\/+$/, "")
      if (!/^\/[^?#*:]*$/.test(prefix)) {
        return yield* invalid("prefix", JSON.stringify(options?.prefix), "a path starting with / (no *, :, ?, #)")
      }
      const core = yield* makeCore(options)
      const router = yield* HttpRouter.HttpRouter
      const handler = (request: HttpServerRequest) => {
        const path = request.url.split("?", 1)[0]
        // `prefix/*` also matches `prefix` itself: send it to `prefix/`, so the page's relative URLs resolve.
        if (path === prefix) return Effect.succeed(HttpServerResponse.redirect(`${prefix}/`))
        return Http.handle(core.context, path.slice(prefix.length), request)
      }
      yield* router.add("*", `${prefix}/*` as HttpRouter.PathInput, handler)
      return core.dashboard
    })
  )

/**
 * Adds a pool (or a {@link PoolSource}) to the {@link Service} dashboard.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { WorkerPool } from "@fiberpool/core"
 * import { NodeDashboard } from "@fiberpool/node"
 *
 * const program = Effect.gen(function*() {
 *   const pool = yield* WorkerPool.make({ name: "thumbnails", concurrency: 4 })
 *   yield* NodeDashboard.register(pool)
 *   const snapshot = yield* (yield* NodeDashboard.Service).snapshot
 *   console.log(snapshot.pools[0].stats.concurrency) // => 4
 * })
 * await Effect.runPromise(Effect.scoped(program).pipe(Effect.provide(NodeDashboard.layer({ port: 0 }))))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const register = (pool: WorkerPool.WorkerPool | PoolSource): Effect.Effect<void, never, Service> =>
  Service.use((dashboard) => dashboard.register(pool))

/**
 * Adds a queue to the {@link Service} dashboard.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { NodeDashboard } from "@fiberpool/node"
 *
 * const program = Effect.gen(function*() {
 *   yield* NodeDashboard.registerQueue({ name: "mail", deadLetters: Effect.succeed([]), requeue: () => Effect.succeed(false) })
 *   const snapshot = yield* (yield* NodeDashboard.Service).snapshot
 *   console.log(snapshot.queues[0].name) // => mail
 * })
 * await Effect.runPromise(program.pipe(Effect.provide(NodeDashboard.layer({ port: 0 }))))
 * ```
 *
 * @category combinators
 * @since 0.1.0
 */
export const registerQueue = (source: QueueSource): Effect.Effect<void, never, Service> =>
  Service.use((dashboard) => dashboard.registerQueue(source))

// ---- Internal ----

const defaultPort = 9465
const defaultHost = "127.0.0.1"

const invalid = (option: string, value: string, expected: string) =>
  Effect.fail(new PoolError.InvalidOptions({ option, value, expected }))

const makeCore = (options: Options | undefined) =>
  Effect.gen(function*() {
    const refresh = Option.getOrUndefined(Duration.fromInput(options?.refreshInterval ?? "1 second"))
    if (refresh === undefined || Duration.toMillis(refresh) < 50 || !Duration.isFinite(refresh)) {
      return yield* invalid("refreshInterval", String(options?.refreshInterval), "a duration of at least 50 millis")
    }
    const window = Option.getOrUndefined(Duration.fromInput(options?.window ?? "5 minutes"))
    const windowSeconds = window === undefined ? NaN : Math.floor(Duration.toSeconds(window))
    if (!(windowSeconds >= 10 && windowSeconds <= 3600)) {
      return yield* invalid("window", String(options?.window), "a duration from 10 seconds to 1 hour")
    }
    const scope = yield* Effect.scope
    const closed = yield* Deferred.make<void>()
    yield* Effect.addFinalizer(() => Deferred.succeed(closed, undefined))
    const controller = options?.controller ?? (yield* Shutdown.CurrentController)
    const trackers: Array<Http.TrackedPool> = []
    const queues: Array<QueueSource> = []
    const trackOptions = { windowSeconds, failureLimit: 50, causeChars: 2000 }
    const cache: Http.Context["cache"] = { current: undefined }
    const register = (entry: WorkerPool.WorkerPool | PoolSource): Effect.Effect<void> =>
      Effect.suspend(() => {
        const { cancel, pool } = WorkerPool.isWorkerPool(entry) ? { pool: entry, cancel: undefined } : entry
        const known = trackers.find((t) => t.tracker.pool === pool)
        if (known !== undefined) {
          if (cancel !== undefined) known.cancel = cancel
          cache.current = undefined
          return Effect.void
        }
        return Effect.map(Scope.provide(track(pool, trackOptions), scope), (tracker) => {
          trackers.push({ tracker, cancel })
          cache.current = undefined
        })
      })
    const registerQueue = (source: QueueSource): Effect.Effect<void> =>
      Effect.sync(() => {
        const at = queues.findIndex((q) => q.name === source.name)
        if (at >= 0) queues[at] = source
        else queues.push(source)
        cache.current = undefined
      })
    for (const pool of options?.pools ?? []) yield* register(pool)
    for (const source of options?.queues ?? []) yield* registerQueue(source)
    const context: Http.Context = {
      title: options?.title ?? "fiberpool",
      trackers: () => trackers,
      queues: () => queues,
      guard: options?.guard,
      controller,
      refreshMillis: Duration.toMillis(refresh),
      windowSeconds,
      closed,
      cache
    }
    const dashboard: Dashboard = {
      url: undefined,
      register,
      registerQueue,
      snapshot: Http.freshSnapshot(context)
    }
    return { context, dashboard }
  })
