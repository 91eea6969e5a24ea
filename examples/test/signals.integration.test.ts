import { assert, describe, it } from "@effect/vitest"
import { fileURLToPath } from "node:url"
// the process helpers are shared with the node package's integration tests
import { exitWithin, run, runCommand, sleep } from "../../packages/node/test/utils/spawn.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))

/**
 * `npm start` as a person runs it in a terminal: its own process group, and a signal to the whole group, as a
 * terminal's Ctrl-C sends SIGINT to every process of the foreground job (npm, and the example under it).
 */
const startThenSignalGroup = async (signal: NodeJS.Signals, afterLine: RegExp, then?: NodeJS.Signals) => {
  const started = runCommand("npm", ["start", "--silent"], { cwd: root, detached: true })
  try {
    await started.waitForLine(afterLine, 30_000)
    process.kill(-started.child.pid!, signal)
    if (then !== undefined) {
      await started.waitForLine(new RegExp(`${signal} received: graceful shutdown started`), 10_000)
      await sleep(150) // a person's second press, not the forwarded copy of the first
      process.kill(-started.child.pid!, then)
    }
    const { code } = await exitWithin(started, 30_000)
    return { code, lines: started.lines }
  } finally {
    if (started.child.exitCode === null) process.kill(-started.child.pid!, "SIGKILL")
  }
}

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

  // job-6 runs for its full 500 ms deadline: the drain is still going when the second signal arrives.
  it("SIGINT, then SIGTERM while draining: the forced line names both signals, exit 3", async () => {
    const { code, lines } = await startThenSignalGroup("SIGINT", /^ {2}job-6 started/, "SIGTERM")
    const output = lines.join("\n")
    assert.strictEqual(code, 3, output)
    assert.strictEqual(lines.filter((line) => line.includes("SIGINT received: graceful")).length, 1, output)
    const forced = lines.filter((line) => /forcing shutdown/.test(line))
    assert.strictEqual(forced.length, 1, output)
    assert.match(forced[0]!, /SIGTERM received after SIGINT: forcing shutdown, exiting with code 3/)
  })

  it("every package under a JSON logger, SIGTERM then SIGINT: every line is JSON and names both signals", async () => {
    const program = run(fileURLToPath(new URL("./fixtures/json-logs.ts", import.meta.url)), [], root)
    try {
      await program.waitForLine(/"message":"ready"/, 30_000)
      program.child.kill("SIGTERM")
      await program.waitForLine(/SIGTERM received: graceful shutdown started/)
      await sleep(150) // a second signal, not a repeat of the first
      program.child.kill("SIGINT")
      const { code } = await exitWithin(program, 10_000)
      const output = program.lines.join("\n")
      assert.strictEqual(code, 3, output)
      const messages = program.lines.filter((line) => line !== "").map((line) => {
        try {
          return String((JSON.parse(line) as { message: unknown }).message)
        } catch {
          return assert.fail(`not a JSON line: ${line}\n${output}`)
        }
      })
      for (
        const pattern of [
          /^metrics endpoint listening on http:\/\/127\.0\.0\.1:\d+$/, // NodeMetrics
          /^dashboard listening on http:\/\/127\.0\.0\.1:\d+\/$/, // NodeDashboard
          /^job doomed \(flaky\) dead-lettered: Refused/, // DurableWorker
          /^pool stubborn shut down \(.*abandoned stuck$/, // core's report
          /^SIGINT received after SIGTERM: forcing shutdown, exiting with code 3 within 750 ms$/, // NodeShutdown
          /^finalizers did not finish in time: exiting now$/
        ]
      ) assert.ok(messages.some((message) => pattern.test(message)), `${pattern}\n${output}`)
    } finally {
      if (program.child.exitCode === null) program.child.kill("SIGKILL")
    }
  })
})
