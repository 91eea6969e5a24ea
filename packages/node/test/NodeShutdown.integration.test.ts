import { assert, describe, it } from "@effect/vitest"
import { createServer } from "node:net"
import { fileURLToPath } from "node:url"
import { exitWithin, run, sleep } from "./utils/spawn.ts"

const fixture = fileURLToPath(new URL("./fixtures/shutdown-main.ts", import.meta.url))

const indexOf = (lines: ReadonlyArray<string>, pattern: RegExp) => lines.findIndex((line) => pattern.test(line))

describe("NodeShutdown.runMain in a real process", () => {
  it("SIGTERM: /ready turns 503, in-flight jobs finish, finalizers run, exit 0", async () => {
    const service = run(fixture, ["graceful"])
    const url = (await service.waitForLine(/^ready http:/)).slice("ready ".length)
    assert.strictEqual((await fetch(`${url}/ready`)).status, 200)

    service.child.kill("SIGTERM")
    await service.waitForLine(/SIGTERM received: graceful shutdown started/)
    // The jobs take 1.5 s, so the endpoint is still up while the pool drains.
    const ready = await fetch(`${url}/ready`)
    assert.strictEqual(ready.status, 503)
    assert.strictEqual((await fetch(`${url}/health`)).status, 200)

    const { code } = await exitWithin(service, 15_000)
    const lines = service.lines
    assert.strictEqual(code, 0, lines.join("\n"))
    const signalled = indexOf(lines, /SIGTERM received/)
    for (const id of ["job-1", "job-2"]) {
      assert.isAbove(indexOf(lines, new RegExp(`^${id} finished$`)), signalled, `${id} finished after the signal`)
      assert.isAbove(indexOf(lines, new RegExp(`^${id} finalizer ran$`)), signalled)
    }
    assert.isAbove(indexOf(lines, /^main finalizer ran$/), indexOf(lines, /^job-2 finished$/))
  })

  it("one signal delivered twice at once (process group + npm forwarding) drains, logs the report, exits 0", async () => {
    const service = run(fixture, ["graceful"])
    await service.waitForLine(/^ready http:/)
    service.child.kill("SIGTERM")
    service.child.kill("SIGTERM")
    const { code } = await exitWithin(service, 15_000)
    const lines = service.lines
    assert.strictEqual(code, 0, lines.join("\n"))
    assert.strictEqual(lines.filter((line) => /SIGTERM received/.test(line)).length, 1, lines.join("\n"))
    assert.isAbove(indexOf(lines, /^job-2 finished$/), 0)
    assert.isAbove(indexOf(lines, /pool fixture shut down \(drain, \d+ ms\): succeeded job-1, job-2/), 0)
  })

  it("the shutdown report goes through the application's logger: JSON stays JSON", async () => {
    const service = run(fixture, ["json"])
    await service.waitForLine(/^ready$/)
    service.child.kill("SIGINT")
    const { code } = await exitWithin(service, 15_000)
    assert.strictEqual(code, 0, service.lines.join("\n"))
    const reports = service.lines.filter((line) => line.includes("shut down")).map((line) => JSON.parse(line))
    assert.strictEqual(reports.length, 1, service.lines.join("\n"))
    assert.match(reports[0].message, /^pool fixture shut down \(drain, \d+ ms\): succeeded job-1, job-2$/)
    assert.strictEqual(reports[0].annotations["fiberpool.pool"], "fixture")
    assert.strictEqual(reports[0].level, "INFO")
  })

  for (const [first, second] of [["SIGTERM", "SIGTERM"], ["SIGINT", "SIGTERM"]] as const) {
    it(`${first} then ${second} under a JSON logger: every line is JSON, the second names both signals`, async () => {
      const service = run(fixture, ["json-hang"])
      await service.waitForLine(/"message":"ready"/)
      service.child.kill(first)
      await service.waitForLine(new RegExp(`${first} received: graceful shutdown started`))
      await sleep(150) // a repeat closer than 100 ms counts as the same signal
      service.child.kill(second)
      const { code } = await exitWithin(service, 5_000)
      const output = service.lines.join("\n")
      assert.strictEqual(code, 3, output)
      const entries = service.lines.filter((line) => line !== "").map((line) => {
        try {
          return JSON.parse(line) as { message: unknown; level: string; annotations: Record<string, unknown> }
        } catch {
          return assert.fail(`not a JSON line: ${line}\n${output}`)
        }
      })
      const message = (entry: { message: unknown }) => String(entry.message)
      const firstLine = entries.find((entry) => message(entry).startsWith(`${first} received:`))
      assert.deepInclude(firstLine?.annotations, { phase: "graceful", signals: first }, output)
      const wording = first === second ? `${second} received again` : `${second} received after ${first}`
      const secondLine = entries.find((entry) => message(entry).includes("forcing shutdown"))
      assert.strictEqual(message(secondLine!), `${wording}: forcing shutdown, exiting with code 3 within 750 ms`)
      assert.strictEqual(secondLine!.level, "WARN")
      assert.deepInclude(secondLine!.annotations, { phase: "forced", signals: `${first}, ${second}` })
      // The hard deadline's line and the pool's report are JSON too.
      assert.ok(entries.some((entry) => message(entry) === "finalizers did not finish in time: exiting now"), output)
      assert.ok(entries.some((entry) => /^pool fixture shut down \(.*abandoned stubborn$/.test(message(entry))), output)
    })
  }

  it("two SIGINTs with a job that ignores interruption: exit 3 within 1 s of the second", async () => {
    const service = run(fixture, ["hang"])
    await service.waitForLine(/^ready$/)
    service.child.kill("SIGINT")
    await service.waitForLine(/SIGINT received: graceful shutdown started/)
    await sleep(200)
    assert.strictEqual(service.child.exitCode, null, "still draining after the first signal")
    const secondAt = performance.now()
    service.child.kill("SIGINT")
    const { code, at } = await exitWithin(service, 5_000)
    assert.strictEqual(code, 3, service.lines.join("\n"))
    assert.isBelow(at - secondAt, 1_000)
    assert.isAtLeast(indexOf(service.lines, /forcing shutdown, exiting with code 3/), 0)
    // The finalizer never ends: the hard deadline is what ended the process.
    assert.isAtLeast(indexOf(service.lines, /finalizers did not finish in time: exiting now/), 0)
  })

  it("two SIGTERMs while draining: queued jobs cancelled, the running one interrupted, exit 3", async () => {
    const service = run(fixture, ["forced"])
    await service.waitForLine(/^ready$/)
    service.child.kill("SIGTERM")
    await service.waitForLine(/SIGTERM received: graceful shutdown started/)
    await sleep(150) // a repeat closer than 100 ms counts as the same signal
    const secondAt = performance.now()
    service.child.kill("SIGTERM")
    const { code, at } = await exitWithin(service, 5_000)
    assert.strictEqual(code, 3, service.lines.join("\n"))
    assert.isBelow(at - secondAt, 1_000)
    assert.include(service.lines, "long interrupted")
    assert.include(service.lines, "report: interrupted long cancelled q1,q2,q3")
    assert.notOk(service.lines.some((line) => /^q\d ran$/.test(line)), "no queued job started")
  })

  it("a program that finishes exits 0 without a signal", async () => {
    const service = run(fixture, ["finish"])
    const { code } = await exitWithin(service, 15_000)
    assert.strictEqual(code, 0)
    assert.include(service.lines, "result: 42")
  })

  it("a failing program exits 1", async () => {
    const service = run(fixture, ["fail"])
    const { code } = await exitWithin(service, 15_000)
    assert.strictEqual(code, 1)
    assert.isAtLeast(indexOf(service.lines, /Boom/), 0)
  })

  it("with the logger option, a failing program's report is JSON too, exit 1", async () => {
    const service = run(fixture, ["json-fail"])
    const { code } = await exitWithin(service, 15_000)
    assert.strictEqual(code, 1, service.lines.join("\n"))
    const entries = service.lines.filter((line) => line !== "").map((line) => JSON.parse(line))
    assert.strictEqual(entries.length, 1, service.lines.join("\n"))
    assert.strictEqual(entries[0].level, "ERROR")
    assert.match(entries[0].cause, /^Boom: /)
  })

  it("invalid options exit 2 with one line naming the option", async () => {
    const service = run(fixture, ["invalid"])
    const { code } = await exitWithin(service, 15_000)
    assert.strictEqual(code, 2)
    assert.notInclude(service.lines, "should not run")
    const line = service.lines.find((l) => l.includes("forceExitAfter")) ?? ""
    assert.include(line, `InvalidOptions: Invalid option "forceExitAfter"`)
    assert.notOk(service.lines.some((l) => /^\s+at /.test(l)), "no stack trace")
  })

  it("a busy metrics port fails with a one-line ListenError and exit 1", async () => {
    const blocker = createServer()
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve))
    const port = (blocker.address() as { port: number }).port
    try {
      const service = run(fixture, ["busy-port", String(port)])
      const { code } = await exitWithin(service, 15_000)
      assert.strictEqual(code, 1)
      const line = service.lines.find((l) => l.includes("ListenError")) ?? ""
      assert.include(line, `Cannot listen on 127.0.0.1:${port}: the port is already in use (EADDRINUSE)`)
      assert.notOk(service.lines.some((l) => /^\s+at /.test(l)), "no stack trace")
    } finally {
      await new Promise((resolve) => blocker.close(resolve))
    }
  })
})
