/**
 * A stand-in OTLP/HTTP collector on 127.0.0.1 for example 09 and its test: keeps the JSON bodies POSTed to
 * `/v1/traces`, `/v1/metrics` and `/v1/logs`, by path, and answers 200.
 */
import * as Http from "node:http"

export interface StandIn {
  readonly url: string
  readonly received: Map<string, Array<any>>
  readonly close: () => Promise<void>
}

export const startStandIn = async (): Promise<StandIn> => {
  const received = new Map<string, Array<any>>()
  const server = Http.createServer((request, response) => {
    let body = ""
    request.setEncoding("utf8")
    request.on("data", (chunk) => (body += chunk))
    request.on("end", () => {
      const list = received.get(request.url ?? "") ?? []
      list.push(JSON.parse(body || "{}"))
      received.set(request.url ?? "", list)
      response.writeHead(200, { "content-type": "application/json" }).end("{}")
    })
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  const { port } = server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
