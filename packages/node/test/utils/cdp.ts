// A headless Chromium driven over the Chrome DevTools Protocol with Node's global WebSocket: no npm dependency.
// Chromium comes from the system (Debian: `apt-get install -y chromium`), or CHROMIUM_PATH.
import { type ChildProcess, spawn, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const candidates = ["chromium", "chromium-browser", "google-chrome", "google-chrome-stable"]

/** The browser executable, or undefined when none is installed. */
export const findChromium = (): string | undefined => {
  const given = process.env.CHROMIUM_PATH
  if (given !== undefined && given !== "") return Fs.existsSync(given) ? given : undefined
  for (const name of candidates) {
    const found = spawnSync("sh", ["-c", `command -v ${name}`], { encoding: "utf8" })
    if (found.status === 0 && found.stdout.trim() !== "") return found.stdout.trim()
  }
  return undefined
}

export interface Page {
  /** Evaluates `expression` in the page (promises awaited) and returns its JSON value. */
  readonly evaluate: <A = unknown>(expression: string) => Promise<A>
  /** Polls `expression` every 100 ms until it is truthy; returns its value. */
  readonly waitFor: <A = unknown>(expression: string, what: string, timeoutMs?: number) => Promise<A>
  readonly navigate: (url: string) => Promise<void>
  readonly screenshot: (file: string) => Promise<void>
}

export interface Browser {
  readonly page: Page
  readonly close: () => Promise<void>
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))

export const launch = async (executable: string, size = { width: 1280, height: 1600 }): Promise<Browser> => {
  const dataDir = Fs.mkdtempSync(Path.join(Os.tmpdir(), "fiberpool-chromium-"))
  const child: ChildProcess = spawn(executable, [
    "--headless=new",
    "--remote-debugging-port=0",
    `--user-data-dir=${dataDir}`,
    "--no-sandbox", // root in containers has no user namespace sandbox
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    `--window-size=${size.width},${size.height}`,
    "about:blank"
  ], { stdio: ["ignore", "ignore", "pipe"] })
  let stderr = ""
  child.stderr!.on("data", (chunk) => (stderr = (stderr + String(chunk)).slice(-4000)))
  const portFile = Path.join(dataDir, "DevToolsActivePort")
  let endpoint: string | undefined
  for (let i = 0; i < 300 && endpoint === undefined; i++) {
    if (child.exitCode !== null) throw new Error(`chromium exited with ${child.exitCode}: ${stderr}`)
    const text = Fs.existsSync(portFile) ? Fs.readFileSync(portFile, "utf8") : ""
    const [port, path] = text.split("\n")
    if (port && path) endpoint = `ws://127.0.0.1:${port}${path}`
    else await sleep(100)
  }
  if (endpoint === undefined) throw new Error(`chromium wrote no DevToolsActivePort within 30 s: ${stderr}`)

  const socket = new WebSocket(endpoint)
  await new Promise<void>((resolve, reject) => {
    socket.addEventListener("open", () => resolve(), { once: true })
    socket.addEventListener("error", () => reject(new Error(`cannot connect to ${endpoint}`)), { once: true })
  })
  let nextId = 1
  const pending = new Map<number, { resolve: (v: any) => void; reject: (e: Error) => void; method: string }>()
  socket.addEventListener("message", (event) => {
    const message = JSON.parse(String(event.data))
    const waiter = message.id === undefined ? undefined : pending.get(message.id)
    if (waiter === undefined) return
    pending.delete(message.id)
    if (message.error) waiter.reject(new Error(`${waiter.method}: ${message.error.message}`))
    else waiter.resolve(message.result)
  })
  const send = (method: string, params: object = {}, sessionId?: string): Promise<any> =>
    new Promise((resolve, reject) => {
      const id = nextId++
      pending.set(id, { resolve, reject, method })
      socket.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }))
    })

  const { targetId } = await send("Target.createTarget", { url: "about:blank" })
  const { sessionId } = await send("Target.attachToTarget", { targetId, flatten: true })
  const call = (method: string, params: object = {}) => send(method, params, sessionId)
  await call("Page.enable")
  await call("Runtime.enable")
  await call("Emulation.setDeviceMetricsOverride", { ...size, deviceScaleFactor: 1, mobile: false })

  const evaluate = async <A>(expression: string): Promise<A> => {
    const result = await call("Runtime.evaluate", { expression, returnByValue: true, awaitPromise: true })
    if (result.exceptionDetails) {
      throw new Error(
        `${expression}: ${result.exceptionDetails.exception?.description ?? result.exceptionDetails.text}`
      )
    }
    return result.result.value as A
  }
  const page: Page = {
    evaluate,
    waitFor: async <A>(expression: string, what: string, timeoutMs = 15_000): Promise<A> => {
      const until = performance.now() + timeoutMs
      let last: unknown
      while (performance.now() < until) {
        last = await evaluate<A>(expression).catch((error: Error) => error.message)
        if (last && !(typeof last === "string" && last.startsWith(expression))) return last as A
        await sleep(100)
      }
      const body = await evaluate<string>("document.body ? document.body.innerText : ''").catch(() => "")
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what} (last: ${String(last)})\n--- page ---\n${body}`
      )
    },
    navigate: async (url) => {
      const result = await call("Page.navigate", { url })
      if (result.errorText) throw new Error(`navigate to ${url}: ${result.errorText}`)
    },
    screenshot: async (file) => {
      const { data } = await call("Page.captureScreenshot", { format: "png", captureBeyondViewport: true })
      Fs.mkdirSync(Path.dirname(file), { recursive: true })
      Fs.writeFileSync(file, Buffer.from(data, "base64"))
    }
  }
  const close = async () => {
    await send("Browser.close").catch(() => {})
    socket.close()
    if (child.exitCode === null) {
      await Promise.race([new Promise((resolve) => child.once("exit", resolve)), sleep(5000)])
      if (child.exitCode === null) child.kill("SIGKILL")
    }
    Fs.rmSync(dataDir, { recursive: true, force: true })
  }
  return { page, close }
}
