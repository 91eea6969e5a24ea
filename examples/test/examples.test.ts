import { assert, describe, it } from "@effect/vitest"
import * as Fs from "node:fs"
import { fileURLToPath } from "node:url"
// the process helpers are shared with the node package's integration tests
import { exitWithin, run } from "../../packages/node/test/utils/spawn.ts"
import { root, runExample, scripts } from "./npmScript.ts"

const readme = (path: string) => Fs.readFileSync(fileURLToPath(new URL(path, import.meta.url)), "utf8")

/** Every example: a numbered file, or a numbered directory whose entry is main.ts. */
const entries = Fs.readdirSync(fileURLToPath(new URL("..", import.meta.url)), { withFileTypes: true })
  .filter((entry) => /^\d\d-/.test(entry.name))
  .map((entry) => entry.isDirectory() ? `${entry.name}/main.ts` : entry.name)
  .sort()

// Each example, the first line it prints, and lines that prove it did its job.
const cases: ReadonlyArray<{ file: string; first: RegExp; expect: ReadonlyArray<RegExp> }> = [
  {
    file: "01-basic-pool.ts",
    first: /^01-basic-pool: 3 workers, queue of 2, 8 jobs$/,
    expect: [
      /^ {2}job-4 failed {4}-> CorruptImage \(broken\.png\)$/,
      /^ {2}job-6 failed {4}-> JobTimedOut/,
      /8 submitted, 6 succeeded, 1 failed, 1 timed out, 0 cancelled, 0 interrupted, 0 abandoned$/
    ]
  },
  {
    file: "02-http-job-service.ts",
    first: /^02-http-job-service: /,
    expect: [
      /POST \/jobs \{bad json -> 400 \{"_tag":"MalformedJson"/,
      /POST \/jobs \{"ms":"abc"\} -> 400 \{"_tag":"InvalidJob"/,
      /POST \/jobs \(empty body\) -> 400 \{"_tag":"EmptyBody"/,
      /POST \/jobs \(100 KiB body\) -> 413 \{"_tag":"BodyTooLarge"/,
      /DELETE \/jobs -> 405 \{"_tag":"MethodNotAllowed"/,
      /GET \/nope -> 404 \{"_tag":"RouteNotFound"/,
      /POST \/jobs extra 100 ms -> 429/,
      /GET \/ready -> 503/,
      /POST \/jobs late 100 ms -> 503/,
      /GET \/jobs\/job-2 -> 200 .*"status":"failed"/,
      /^drained: 3 succeeded, 1 failed, 0 cancelled$/
    ]
  },
  {
    file: "03-deadlines-retries.ts",
    first: /^03-deadlines-retries: /,
    expect: [
      /-> ended JobTimedOut: The job timed out after 100 ms/,
      /-> status timedOut, attempts 0/,
      /attempt 3 at/,
      /-> succeeded with "charged"/,
      /queued {2}-> ended JobCancelled/,
      /running -> ended JobInterrupted/,
      /-> fallback after 30 ms/
    ]
  },
  {
    file: "04-progress-batch.ts",
    first: /^04-progress-batch: 300 jobs on 8 workers \(one line per second\)$/,
    expect: [/100% 300\/300/, /^\| succeeded {3}\| {4}291 \|/, /^\| timed out {3}\| {6}3 \|/]
  },
  {
    file: "05-metrics-endpoint.ts",
    first: /^05-metrics-endpoint: /,
    expect: [
      /metrics endpoint listening on http:\/\/127\.0\.0\.1:\d+/,
      /GET \/ready {2}-> 200/,
      /GET \/metrics -> 200/,
      /fiberpool_jobs_succeeded_total\{pool="reports"\} 17/
    ]
  },
  {
    file: "06-cpu-offload/main.ts",
    first: /^06-cpu-offload: counting the primes below 3,000,000 in 24 chunks$/,
    expect: [
      /^progress: +24\/24 chunks$/,
      /^speed-up: +\d+\.\d+x on \d+ threads?$/,
      /^closed: +24 jobs succeeded, threads ended$/
    ]
  },
  {
    file: "07-durable/main.ts",
    first: /^07-durable: 1 producer, 3 worker processes, 90 jobs on SQLite \(/,
    expect: [
      /^SIGKILL worker-2 while it runs invoice-/,
      /^workers exited: worker-1 exit 0, worker-2 SIGKILL, worker-3 exit 0$/,
      /^every job completed once: 90\/90 invoices sent once, 90 jobs ran, \d+ of them twice, 0 left claimed$/
    ]
  }
]

describe("examples", () => {
  it("every example has its one command: an npm script, listed in both READMEs, whose run is tested", () => {
    assert.deepStrictEqual(entries.map((entry) => entry.slice(0, 2)), [
      "01",
      "02",
      "03",
      "04",
      "05",
      "06",
      "07",
      "08",
      "09"
    ])
    const tested = [...cases.map((c) => c.file), "08-dashboard.ts", "09-opentelemetry.ts"]
    for (const entry of entries) {
      const script = `example:${entry.slice(0, 2)}`
      assert.strictEqual(scripts[script], `exec node examples/${entry}`, script)
      const command = entry.startsWith("01-") ? "`npm start`" : `\`npm run ${script}\``
      assert.include(readme("../README.md"), command, `examples/README.md lists ${entry}`)
      assert.include(readme("../../README.md"), command, `README.md lists ${entry}`)
      assert.include(tested, entry, `${entry} is run by a test`)
    }
    assert.strictEqual(scripts.start, scripts["example:01"])
    assert.notInclude(readme("../README.md"), "npx node")
  })

  for (const { expect, file, first } of cases) {
    it(`npm run example:${file.slice(0, 2)} (${file}) exits 0 by itself and prints what it did`, async () => {
      const program = runExample(file)
      const { code } = await exitWithin(program, 30_000)
      const output = program.lines.join("\n")
      assert.strictEqual(code, 0, output)
      assert.match(program.lines[0] ?? "", first, output)
      for (const pattern of expect) assert.ok(program.lines.some((line) => pattern.test(line)), `${pattern}\n${output}`)
    })
  }

  it("02-http-job-service.ts --serve: real requests, then SIGTERM drains and exits 0", async () => {
    // node directly: the test signals the example's own process, not an npm in between.
    const service = run(fileURLToPath(new URL("../02-http-job-service.ts", import.meta.url)), ["--serve"], root)
    const url = (await service.waitForLine(/^listening on http:\/\/127\.0\.0\.1:\d+$/)).slice("listening on ".length)
    const post = async (ms: number, task = "work") => {
      const response = await fetch(`${url}/jobs`, { method: "POST", body: JSON.stringify({ task, ms }) })
      return { status: response.status, body: await response.json() as { id?: string } }
    }
    const status = async (id: string) => (await fetch(`${url}/jobs/${id}`)).json() as Promise<{ status: string }>

    // 2 workers + a queue of 2: the fifth job is refused with 429.
    const accepted = [await post(2000), await post(600), await post(100), await post(100, "fail")]
    assert.deepStrictEqual(accepted.map((r) => r.status), [202, 202, 202, 202])
    assert.strictEqual((await post(100)).status, 429)
    assert.strictEqual((await fetch(`${url}/jobs/nope`)).status, 404)

    service.child.kill("SIGTERM")
    await service.waitForLine(/SIGTERM received/)
    // While draining: new jobs get 503, status requests still work.
    assert.strictEqual((await post(100)).status, 503)
    assert.strictEqual((await status("job-1")).status, "running")

    const { code } = await exitWithin(service, 15_000)
    assert.strictEqual(code, 0, service.lines.join("\n"))
    assert.include(service.lines, "drained: 3 succeeded, 1 failed, 0 cancelled")
  })
})
