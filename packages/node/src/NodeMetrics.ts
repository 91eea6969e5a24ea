/**
 * An HTTP endpoint for operating a service: Prometheus metrics, liveness and readiness.
 *
 * - `GET /metrics`: every Effect metric of the process in Prometheus text format (the pools' `fiberpool_*`
 *   metrics among them).
 * - `GET /health`: 200 while the process is alive.
 * - `GET /ready`: 200 while the `Shutdown.Controller` is `"running"`, 503 as soon as shutdown begins, so that
 *   a load balancer stops sending work while the pools drain.
 * - anything else: 404.
 *
 * Bound to 127.0.0.1 by default. Port 0 picks a free port; the bound address is logged and exposed by the
 * {@link Endpoint} service.
 *
 * @since 0.1.0
 */
import { type PoolError, Shutdown, Validation } from "@fiberpool/core"
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import { HttpServerRequest } from "effect/http/HttpServerRequest"
import * as HttpServerResponse from "effect/http/HttpServerResponse"
import * as Layer from "effect/Layer"
import { PrometheusMetrics } from "effect/observability"
import type * as Scope from "effect/Scope"
import { listen } from "./internal/listen.ts"
import * as NodeError from "./NodeError.ts"

/**
 * Options of the endpoint.
 *
 * - `port`: an integer from 0 to 65535; 0 picks a free port. Default 9464 (the Prometheus exporters' port).
 * - `host`: the interface to bind. Default `"127.0.0.1"` (loopback only).
 * - `controller`: the controller whose phase `/ready` reports. Default: `Shutdown.CurrentController` (set by
 *   `NodeShutdown.runMain`). With neither, `/ready` is 200 until the endpoint starts closing.
 * - `prefix`: a prefix added to every metric name in `/metrics`.
 *
 * @example
 * ```ts
 * import type { NodeMetrics } from "@fiberpool/node"
 *
 * const options: NodeMetrics.Options = { port: 0, host: "127.0.0.1" }
 * console.log(options.port) // => 0
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Options {
  readonly port?: number | undefined
  readonly host?: string | undefined
  readonly controller?: Shutdown.Controller | undefined
  readonly prefix?: string | undefined
}

/**
 * The endpoint could not listen: the port is busy (`code: "EADDRINUSE"`), the address is not local to this
 * machine (`"EADDRNOTAVAIL"`), or binding needs privileges (`"EACCES"`). The same class as
 * `NodeError.ListenError`, re-exported here.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { NodeMetrics } from "@fiberpool/node"
 *
 * const error = new NodeMetrics.ListenError({ host: "127.0.0.1", port: 9464, code: "EADDRINUSE" })
 * assert.strictEqual(error.message, "Cannot listen on 127.0.0.1:9464: the port is already in use (EADDRINUSE)")
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export const ListenError: typeof NodeError.ListenError = NodeError.ListenError

/**
 * The type of {@link ListenError}.
 *
 * @example
 * ```ts
 * import { NodeMetrics } from "@fiberpool/node"
 *
 * const error: NodeMetrics.ListenError = new NodeMetrics.ListenError({ host: "::1", port: 80, code: "EACCES" })
 * console.log(error.code) // => EACCES
 * ```
 *
 * @category errors
 * @since 0.1.0
 */
export type ListenError = NodeError.ListenError

/**
 * The running endpoint: the address it is bound to.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { NodeMetrics } from "@fiberpool/node"
 *
 * const program = Effect.gen(function*() {
 *   const endpoint = yield* NodeMetrics.Endpoint
 *   const response = yield* Effect.promise(() => fetch(`${endpoint.url}/health`))
 *   console.log(response.status) // => 200
 * })
 * await Effect.runPromise(program.pipe(Effect.provide(NodeMetrics.layer({ port: 0 }))))
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export class Endpoint extends Context.Service<Endpoint, {
  readonly host: string
  readonly port: number
  readonly url: string
}>()("@fiberpool/node/NodeMetrics/Endpoint") {}

/**
 * Starts the endpoint for the lifetime of the current scope and returns its address.
 *
 * **Details**
 *
 * Fails with `InvalidOptions` (naming `port` or `host`) or {@link ListenError}. Logs
 * `metrics endpoint listening on http://host:port` once bound.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { NodeMetrics } from "@fiberpool/node"
 *
 * const program = Effect.gen(function*() {
 *   const endpoint = yield* NodeMetrics.make({ port: 0 })
 *   const response = yield* Effect.promise(() => fetch(`${endpoint.url}/nope`))
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
): Effect.Effect<Endpoint["Service"], PoolError.InvalidOptions | ListenError, Scope.Scope> =>
  Effect.gen(function*() {
    const port = options?.port ?? defaultPort
    const host = options?.host ?? defaultHost
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      return yield* Validation.invalid("port", port, "an integer from 0 to 65535")
    }
    if (typeof host !== "string" || host.length === 0) {
      return yield* Validation.invalid("host", host, "a non-empty host name or IP address")
    }
    const controller = options?.controller ?? (yield* Shutdown.CurrentController)
    let closing = false
    // Readiness turns 503 before the server stops listening, also without a controller.
    yield* Effect.addFinalizer(() => Effect.sync(() => (closing = true)))
    const { port: boundPort, server, url } = yield* listen(host, port)
    const isReady = () => !closing && (controller === undefined || controller.phase === "running")
    yield* server.serve(handler(isReady, options?.prefix))
    const endpoint = Endpoint.of({ host, port: boundPort, url })
    yield* Effect.logInfo(`metrics endpoint listening on ${endpoint.url}`)
    return endpoint
  })

/**
 * A layer that runs the endpoint for the layer's lifetime and provides its {@link Endpoint}.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { NodeMetrics } from "@fiberpool/node"
 *
 * const program = Effect.gen(function*() {
 *   const { url } = yield* NodeMetrics.Endpoint
 *   const response = yield* Effect.promise(() => fetch(`${url}/ready`))
 *   console.log(response.status) // => 200
 * })
 * await Effect.runPromise(program.pipe(Effect.provide(NodeMetrics.layer({ port: 0 }))))
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (options?: Options): Layer.Layer<Endpoint, PoolError.InvalidOptions | ListenError> =>
  Layer.effect(Endpoint, make(options))

// ---- Internal ----

const defaultPort = 9464
const defaultHost = "127.0.0.1"

const handler = (isReady: () => boolean, prefix: string | undefined) =>
  Effect.gen(function*() {
    const request = yield* HttpServerRequest
    const path = request.url.split("?", 1)[0]
    if (request.method !== "GET" && request.method !== "HEAD") {
      return path === "/metrics" || path === "/health" || path === "/ready"
        ? HttpServerResponse.text("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } })
        : notFound
    }
    switch (path) {
      case "/metrics": {
        const body = yield* PrometheusMetrics.format(prefix === undefined ? undefined : { prefix })
        return HttpServerResponse.text(body, { contentType: "text/plain; version=0.0.4; charset=utf-8" })
      }
      case "/health":
        return HttpServerResponse.text("ok\n")
      case "/ready":
        return isReady()
          ? HttpServerResponse.text("ready\n")
          : HttpServerResponse.text("shutting down\n", { status: 503 })
      default:
        return notFound
    }
  })

const notFound = HttpServerResponse.text("not found\n", { status: 404 })
