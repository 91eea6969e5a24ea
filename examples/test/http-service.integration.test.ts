// Example 02 as a client sees it: a real process on 127.0.0.1, real requests, the status codes and typed reasons.
import { assert, describe, it } from "@effect/vitest"
import { fileURLToPath } from "node:url"
import { exitWithin, run, type Running, sleep } from "../../packages/node/test/utils/spawn.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))
const example = fileURLToPath(new URL("../02-http-job-service.ts", import.meta.url))

interface Answer {
  readonly status: number
  readonly headers: Headers
  readonly body: Record<string, any>
}

const start = async (args: ReadonlyArray<string> = []) => {
  const service = run(example, ["--serve", "--port", "0", ...args], root)
  const url = (await service.waitForLine(/^listening on http:\/\/127\.0\.0\.1:\d+$/)).slice("listening on ".length)
  const request = async (method: string, path: string, body?: RequestInit["body"]): Promise<Answer> => {
    const response = await fetch(`${url}${path}`, body === undefined ? { method } : { method, body })
    const text = await response.text()
    return { status: response.status, headers: response.headers, body: text === "" ? {} : JSON.parse(text) }
  }
  const post = (body?: RequestInit["body"]) => request("POST", "/jobs", body)
  const job = (task: string, ms: number) => post(JSON.stringify({ task, ms }))
  const get = (path: string) => request("GET", path)
  /** Polls a job until its status is terminal (bounded). */
  const settled = async (id: string) => {
    for (let i = 0; i < 200; i++) {
      const answer = await get(`/jobs/${id}`)
      if (answer.status !== 200 || !["queued", "running"].includes(answer.body.status)) return answer
      await sleep(25)
    }
    throw new Error(`${id} did not finish\n${service.lines.join("\n")}`)
  }
  return { service, url, request, post, job, get, settled }
}

const stop = async (service: Running) => {
  if (service.child.exitCode === null) service.child.kill("SIGKILL")
  await service.exited
}

describe("02-http-job-service over HTTP", () => {
  it("refuses bad requests with a typed reason and queues none of them", async () => {
    const { get, job, post, request, service, settled, url } = await start()
    try {
      const malformed = await post("{bad json")
      assert.strictEqual(malformed.status, 400)
      assert.strictEqual(malformed.body._tag, "MalformedJson")
      assert.match(malformed.body.message, /not valid JSON/)

      const wrongType = await post(JSON.stringify({ task: "resize", ms: "abc" }))
      assert.strictEqual(wrongType.status, 400)
      assert.strictEqual(wrongType.body._tag, "InvalidJob")
      assert.deepStrictEqual(wrongType.body.issues, [{ path: ["ms"], message: "Expected number" }])

      const missing = await post("{}")
      assert.strictEqual(missing.status, 400)
      assert.deepStrictEqual(missing.body.issues.map((issue: { path: Array<string> }) => issue.path), [
        ["task"],
        ["ms"]
      ])

      const outOfRange = await job("resize", 20_000)
      assert.strictEqual(outOfRange.status, 400)
      assert.deepStrictEqual(outOfRange.body.issues, [{
        path: ["ms"],
        message: "Expected a value between 0 and 10000"
      }])

      const notAnObject = await post("[1, 2]")
      assert.strictEqual(notAnObject.status, 400)
      assert.deepStrictEqual(notAnObject.body.issues, [{ path: [], message: "Expected object" }])

      for (const empty of [undefined, "", "  \n"]) {
        const answer = await post(empty)
        assert.strictEqual(answer.status, 400, JSON.stringify(empty))
        assert.strictEqual(answer.body._tag, "EmptyBody")
      }

      // 10 MB of valid JSON: refused after 64 KiB have been read, with the limit in the answer.
      const oversize = await job("x".repeat(10 * 1024 * 1024), 1)
      assert.strictEqual(oversize.status, 413)
      assert.deepStrictEqual(oversize.body._tag, "BodyTooLarge")
      assert.strictEqual(oversize.body.limitBytes, 64 * 1024)
      // Just over the limit, as a stream without a Content-Length.
      const chunked = await fetch(`${url}/jobs`, {
        method: "POST",
        body: new Blob(["{\"task\":\"", "y".repeat(64 * 1024), "\",\"ms\":1}"]).stream(),
        duplex: "half"
      } as RequestInit)
      assert.strictEqual(chunked.status, 413)

      const wrongMethod = await request("DELETE", "/jobs")
      assert.strictEqual(wrongMethod.status, 405)
      assert.strictEqual(wrongMethod.body._tag, "MethodNotAllowed")
      assert.strictEqual(wrongMethod.headers.get("allow"), "POST")
      const wrongMethodOnJob = await request("PUT", "/jobs/job-1", "{}")
      assert.strictEqual(wrongMethodOnJob.status, 405)
      assert.strictEqual(wrongMethodOnJob.headers.get("allow"), "GET")
      assert.strictEqual((await request("POST", "/ready")).status, 405)

      const unknown = await get("/nope")
      assert.strictEqual(unknown.status, 404)
      assert.deepStrictEqual(unknown.body._tag, "RouteNotFound")
      const unknownJob = await get("/jobs/job-1")
      assert.strictEqual(unknownJob.status, 404)
      assert.deepStrictEqual(unknownJob.body, {
        _tag: "JobNotFound",
        id: "job-1",
        message: "no job job-1 (never submitted, or finished and no longer kept)"
      })

      // None of the refused requests became a job: the first valid one is job-1, and it runs to its result.
      const accepted = await job("resize", 50)
      assert.strictEqual(accepted.status, 202)
      assert.strictEqual(accepted.body.id, "job-1")
      assert.strictEqual(accepted.headers.get("location"), "/jobs/job-1")
      const done = await settled("job-1")
      assert.deepStrictEqual(done.body, {
        id: "job-1",
        status: "succeeded",
        task: "resize",
        result: { task: "resize", tookMs: 50 }
      })
      const failed = await settled((await job("fail", 10)).body.id)
      assert.deepStrictEqual([failed.body.status, failed.body.error], ["failed", "TaskFailed"])
      assert.strictEqual((await get("/health")).status, 200)
    } finally {
      await stop(service)
    }
  })

  it("429 when the queue is full; on SIGTERM /ready and POST turn 503 while status still answers, exit 0", async () => {
    const { get, job, service, settled } = await start()
    try {
      assert.deepStrictEqual((await get("/ready")).body, { status: "ready" })
      // 2 workers and a queue of 2: the fifth job is refused.
      const accepted = [await job("slow", 3000), await job("quick", 100), await job("a", 100), await job("b", 100)]
      assert.deepStrictEqual(accepted.map((answer) => answer.status), [202, 202, 202, 202])
      const full = await job("c", 100)
      assert.strictEqual(full.status, 429)
      assert.deepStrictEqual([full.body._tag, full.body.capacity], ["QueueFull", 2])

      service.child.kill("SIGTERM")
      await service.waitForLine(/SIGTERM received/)
      const ready = await get("/ready")
      assert.strictEqual(ready.status, 503)
      const late = await job("late", 10)
      assert.strictEqual(late.status, 503)
      assert.strictEqual(late.body._tag, "ShuttingDown")
      // Draining: the queued jobs still run to the end, and every accepted job still reports its status.
      assert.strictEqual((await settled("job-4")).body.status, "succeeded")
      assert.strictEqual((await get("/jobs/job-1")).body.status, "running")

      const { code } = await exitWithin(service, 15_000)
      assert.strictEqual(code, 0, service.lines.join("\n"))
      assert.include(service.lines, "drained: 4 succeeded, 0 failed, 0 cancelled")
    } finally {
      await stop(service)
    }
  })

  it("keeps only the last N finished jobs, and none longer than the retention time", async () => {
    const { get, job, service, settled } = await start(["--keep-finished", "2", "--keep-finished-ms", "1500"])
    try {
      for (const task of ["a", "b", "c"]) assert.strictEqual((await job(task, 0)).status, 202)
      for (const id of ["job-1", "job-2", "job-3"]) await settled(id)
      // job-1 finished first, so the third finished job pushed it out.
      assert.strictEqual((await get("/jobs/job-1")).body._tag, "JobNotFound")
      assert.strictEqual((await get("/jobs/job-3")).body.status, "succeeded")
      // Without any new job, the time bound alone evicts job-3 (bounded poll, no assumption about timing).
      let answer = await get("/jobs/job-3")
      for (let i = 0; i < 100 && answer.status === 200; i++) {
        await sleep(100)
        answer = await get("/jobs/job-3")
      }
      assert.strictEqual(answer.status, 404)
      assert.strictEqual(answer.body._tag, "JobNotFound")
    } finally {
      await stop(service)
    }
  })
})
