import { assert, describe, it } from "@effect/vitest"
import { spawn } from "node:child_process"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../..", import.meta.url))

/**
 * `npm start` as a person runs it in a terminal: its own process group, and a SIGTERM to the whole group, as a
 * terminal's Ctrl-C sends SIGINT to every process of the foreground job (npm, and the example under it).
 */
const startThenSignalGroup = (signal: NodeJS.Signals, afterLine: RegExp) =>
  new Promise<{ code: number | null; lines: Array<string> }>((resolve, reject) => {
    const child = spawn("npm", ["start", "--silent"], { cwd: root, detached: true, stdio: ["ignore", "pipe", "pipe"] })
    const lines: Array<string> = []
    let buffer = ""
    let signalled = false
    const onData = (chunk: Buffer) => {
      buffer += chunk.toString("utf8")
      const parts = buffer.split("\n")
      buffer = parts.pop() ?? ""
      for (const line of parts) {
        lines.push(line)
        if (!signalled && afterLine.test(line)) {
          signalled = true
          process.kill(-child.pid!, signal)
        }
      }
    }
    child.stdout.on("data", onData)
    child.stderr.on("data", onData)
    const timer = setTimeout(() => {
      process.kill(-child.pid!, "SIGKILL")
      reject(new Error(`npm start still running after 30 s\n${lines.join("\n")}`))
    }, 30_000)
    child.on("exit", (code) => {
      clearTimeout(timer)
      if (buffer !== "") lines.push(buffer)
      resolve({ code, lines })
    })
  })

describe("npm start, interrupted from the terminal", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`${signal} to the process group mid-run: every accepted job's fate is printed, exit 0`, async () => {
      const { code, lines } = await startThenSignalGroup(signal, /^submitted job-5 /)
      const output = lines.join("\n")
      assert.strictEqual(code, 0, output)
      // One signal, although both npm and the example got it and npm forwarded it again: not a forced exit.
      assert.strictEqual(lines.filter((line) => line.includes(`${signal} received`)).length, 1, output)
      assert.notOk(lines.some((line) => /forcing shutdown/.test(line)), output)
      const submitted = lines.flatMap((line) => /^submitted (job-\d+) /.exec(line)?.[1] ?? [])
      assert.isAtLeast(submitted.length, 5, output)
      // The example's own results, printed by its finalizer, name every job it submitted...
      for (const id of submitted) {
        assert.ok(lines.some((line) => new RegExp(`^ {2}${id} (succeeded|failed) +-> `).test(line)), `${id}\n${output}`)
      }
      assert.ok(lines.some((line) => line.startsWith(`shutdown report (`)), output)
      // ...and the pool's report reached the log, with each live job's fate.
      const report = lines.find((line) => /pool thumbnails shut down \(drain, \d+ ms\): /.test(line))
      assert.isDefined(report, output)
      assert.match(report!, /failed job-4/)
    })
  }
})
