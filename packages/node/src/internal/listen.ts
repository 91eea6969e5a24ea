/**
 * Binds an HTTP server for the node package's endpoints (metrics, dashboard): `@effect/platform-node`'s server
 * on `host:port`, a bind failure as a typed `ListenError` with the system's code, and the port actually bound
 * (for `port: 0`).
 */
import * as NodeHttpServer from "@effect/platform-node/NodeHttpServer"
import * as Effect from "effect/Effect"
import type * as HttpServer from "effect/http/HttpServer"
import type * as Scope from "effect/Scope"
import { createServer } from "node:http"
import { ListenError } from "../NodeError.ts"

/** @internal */
export const listen = (
  host: string,
  port: number
): Effect.Effect<
  { readonly server: HttpServer.HttpServer["Service"]; readonly port: number; readonly url: string },
  ListenError,
  Scope.Scope
> =>
  NodeHttpServer.make(() => createServer(), { port, host, gracefulShutdownTimeout: "1 second" }).pipe(
    Effect.catchTag("ServeError", (error) =>
      Effect.fail(
        new ListenError({
          host,
          port,
          code: String((error.cause as { readonly code?: unknown } | undefined)?.code ?? "UNKNOWN")
        })
      )),
    Effect.map((server) => {
      const bound = server.address._tag === "UnixPathAddress" ? port : server.address.port
      const hostInUrl = host.includes(":") ? `[${host}]` : host
      return { server, port: bound, url: `http://${hostInUrl}:${bound}` }
    })
  )
