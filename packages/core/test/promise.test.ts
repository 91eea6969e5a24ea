import { createPool, JobError, PoolError } from "@fiberpool/core/promise"
import { assert, describe, it } from "vitest"

/** Resolves when the job's signal aborts; the job then stops, as a well-behaved job does. */
const untilAborted = (signal: AbortSignal): Promise<never> =>
  new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason), { once: true }))

const reasonOf = async (promise: Promise<unknown>): Promise<string> => {
  const error = await promise.then(() => assert.fail("expected a rejection"), (e: unknown) => e)
  assert.ok(error instanceof JobError || error instanceof PoolError, String(error))
  return error.reason._tag
}

describe("promise pool", () => {
  it("runs plain async functions and gives the job its context", async () => {
    const pool = createPool({ name: "ctx", concurrency: 2 })
    const seen = await pool.add(
      async (signal, ctx) => `${ctx.pool}/${ctx.id} #${ctx.attempt} ${ctx.metadata?.tenant} ${signal.aborted}`,
      { id: "j1", metadata: { tenant: "t9" } }
    )
    assert.strictEqual(seen, "ctx/j1 #1 t9 false")
    const report = await pool.close()
    assert.strictEqual(report.totals.succeeded, 1)
  })

  it("rethrows a job's own error as is", async () => {
    const pool = createPool({ concurrency: 1 })
    class Mine extends Error {}
    const thrown = new Mine("boom")
    const error = await pool.add(async () => {
      throw thrown
    }).catch((e) => e)
    assert.strictEqual(error, thrown)
    await pool.close()
  })

  it("retries a job that threw, as many times as asked, while the predicate holds", async () => {
    const pool = createPool({ concurrency: 1 })
    const attempts: Array<number> = []
    const result = await pool.add(async (_signal, ctx) => {
      attempts.push(ctx.attempt)
      if (ctx.attempt < 3) throw new Error("transient")
      return "third time"
    }, { retry: { times: 5 } })
    assert.strictEqual(result, "third time")
    assert.deepStrictEqual(attempts, [1, 2, 3])
    const fatal = new Error("fatal")
    let runs = 0
    const error = await pool.add(async () => {
      runs++
      throw fatal
    }, { retry: { times: 5, while: (e) => e !== fatal } }).catch((e) => e)
    assert.strictEqual(error, fatal)
    assert.strictEqual(runs, 1)
    await pool.close()
  })

  it("a timeout stops the work: the signal aborts and the promise rejects JobTimedOut", async () => {
    const pool = createPool({ concurrency: 1 })
    let aborted = false
    const job = pool.add(async (signal) => {
      signal.addEventListener("abort", () => aborted = true)
      return untilAborted(signal)
    }, { id: "slow", timeout: 20 })
    assert.strictEqual(await reasonOf(job), "JobTimedOut")
    assert.ok(aborted)
    const report = await pool.close()
    assert.strictEqual(report.totals.timedOut, 1)
  })

  it("the pool's timeout (a Duration string) applies to every job", async () => {
    const pool = createPool({ concurrency: 1, timeout: "20 millis" })
    assert.strictEqual(await reasonOf(pool.add(untilAborted)), "JobTimedOut")
    await pool.close()
  })

  it("bounded close: a job ignoring its signal is abandoned and named, close returns in time", async () => {
    const pool = createPool({ concurrency: 2 })
    const stubborn = pool.add(() => new Promise<never>(() => {}), { id: "stubborn" })
    const polite = pool.add(untilAborted, { id: "polite" })
    const fates = [reasonOf(stubborn), reasonOf(polite)]
    await new Promise((r) => setTimeout(r, 10))
    const started = Date.now()
    const report = await pool.close({ gracePeriod: 30, interruptTimeout: 30 })
    const took = Date.now() - started
    assert.deepStrictEqual(report.jobs.abandoned, ["stubborn"])
    assert.deepStrictEqual(report.jobs.interrupted, ["polite"])
    assert.ok(report.graceExpired)
    // bounded: gracePeriod + interruptTimeout, with room for a loaded machine
    assert.ok(took < 60 + 1_000, `close took ${took} ms`)
    assert.deepStrictEqual(await Promise.all(fates), ["JobAbandoned", "JobInterrupted"])
    // closing again returns the same report
    assert.strictEqual(await pool.close(), report)
  })

  it("a second close escalates a draining one", async () => {
    const pool = createPool({ concurrency: 1 })
    const running = pool.add(untilAborted, { id: "r" }).catch((e) => e)
    await new Promise((r) => setTimeout(r, 5))
    const first = pool.close({ gracePeriod: "1 minute" })
    const second = pool.close({ gracePeriod: 0 })
    assert.strictEqual(first, second)
    const report = await first
    assert.deepStrictEqual(report.jobs.interrupted, ["r"])
    assert.ok((await running) instanceof JobError)
  })

  it("close({ drain: false }) cancels queued jobs; a closed pool refuses new ones", async () => {
    const pool = createPool({ concurrency: 1 })
    pool.pause()
    const queued = pool.add(async () => 1, { id: "q" })
    const report = await pool.close({ drain: false })
    assert.deepStrictEqual(report.jobs.cancelled, ["q"])
    assert.strictEqual(await reasonOf(queued), "JobCancelled")
    assert.strictEqual(await reasonOf(pool.add(async () => 1)), "PoolClosed")
  })

  it("sliding and dropping backpressure tell the caller", async () => {
    const sliding = createPool({ concurrency: 1, capacity: 1, backpressure: "sliding" })
    sliding.pause()
    const oldest = sliding.add(async () => "old", { id: "old" })
    const newest = sliding.add(async () => "new", { id: "new" })
    const error = await oldest.catch((e) => e)
    assert.ok(error instanceof JobError)
    assert.strictEqual(error.reason._tag, "JobCancelled")
    assert.strictEqual(error.reason._tag === "JobCancelled" && error.reason.by, "sliding")
    sliding.resume()
    assert.strictEqual(await newest, "new")
    await sliding.close()

    const dropping = createPool({ concurrency: 1, capacity: 1, backpressure: "dropping" })
    dropping.pause()
    const kept = dropping.add(async () => "kept")
    assert.strictEqual(await reasonOf(dropping.add(async () => "dropped")), "JobDropped")
    dropping.resume()
    assert.strictEqual(await kept, "kept")
    await dropping.close()

    const failing = createPool({ concurrency: 1, capacity: 0, backpressure: "fail" })
    failing.pause()
    assert.strictEqual(await reasonOf(failing.add(async () => 1)), "QueueFull")
    await failing.close()
  })

  it("rejects a duplicate id while the first job is live, accepts it once it has finished", async () => {
    const pool = createPool({ concurrency: 1 })
    pool.pause()
    const first = pool.add(async () => 1, { id: "same" })
    const error = await pool.add(async () => 2, { id: "same" }).catch((e) => e)
    assert.ok(error instanceof PoolError)
    assert.strictEqual(error.reason._tag, "DuplicateJobId")
    pool.resume()
    assert.strictEqual(await first, 1)
    assert.strictEqual(await pool.add(async () => 3, { id: "same" }), 3)
    await pool.close()
  })

  it("a user signal cancels a queued job and interrupts a running one, aborting the job's signal", async () => {
    const pool = createPool({ concurrency: 1 })
    let jobSignal: AbortSignal | undefined
    const running = new AbortController()
    let markStarted = () => {}
    const started = new Promise<void>((resolve) => markStarted = resolve)
    const first = pool.add((signal) => {
      jobSignal = signal
      markStarted()
      return untilAborted(signal)
    }, { signal: running.signal })
    const queued = new AbortController()
    let ran = false
    const second = pool.add(async () => ran = true, { signal: queued.signal })
    await started
    assert.strictEqual(pool.pending, 1)
    assert.strictEqual(pool.size, 1)
    queued.abort()
    assert.strictEqual(await reasonOf(second), "JobCancelled")
    running.abort()
    assert.strictEqual(await reasonOf(first), "JobInterrupted")
    assert.ok(jobSignal?.aborted)
    assert.ok(!ran)
    // an already-aborted signal never runs the job
    assert.strictEqual(await reasonOf(pool.add(async () => 1, { signal: AbortSignal.abort() })), "JobCancelled")
    await pool.close()
  })

  it("a user signal withdraws a submission still waiting for room", async () => {
    const pool = createPool({ concurrency: 1, capacity: 0 })
    pool.pause()
    const controller = new AbortController()
    const waiting = pool.add(async () => 1, { id: "w", signal: controller.signal })
    controller.abort()
    assert.strictEqual(await reasonOf(waiting), "JobCancelled")
    await pool.close()
  })

  it("adds that wait for room (backpressure suspend) resolve in order, as do the ones accepted at once", async () => {
    const pool = createPool({ concurrency: 1, capacity: 1 })
    const order: Array<number> = []
    const job = (n: number) => async () => {
      await new Promise((resolve) => setTimeout(resolve, 1))
      order.push(n)
      return n * 10
    }
    // 1 runs, 2 is queued, 3 to 5 wait for room; a job that throws synchronously rejects its own promise only
    const added = [1, 2, 3, 4, 5].map((n) => pool.add(job(n)))
    const thrown = pool.add(() => {
      throw new Error("sync")
    })
    assert.deepStrictEqual(await Promise.all(added), [10, 20, 30, 40, 50])
    assert.strictEqual((await thrown.catch((e: Error) => e)).message, "sync")
    assert.deepStrictEqual(order, [1, 2, 3, 4, 5])
    const report = await pool.close()
    assert.strictEqual(report.totals.succeeded, 5)
    assert.strictEqual(report.totals.failed, 1)
  })
  it("progress arrives in order on onProgress, and the last value before the result", async () => {
    const pool = createPool({ concurrency: 1, progressInterval: 1 })
    const seen: Array<unknown> = []
    const result = await pool.add(async (_signal, ctx) => {
      for (let i = 1; i <= 5; i++) {
        ctx.progress(i)
        await new Promise((r) => setTimeout(r, 5))
      }
      return "done"
    }, { onProgress: (value) => seen.push(value) })
    assert.strictEqual(result, "done")
    assert.strictEqual(seen.at(-1), 5)
    assert.deepStrictEqual(seen, [...seen].sort((a, b) => Number(a) - Number(b)))
    assert.ok(seen.length >= 2, JSON.stringify(seen))
    await pool.close()
  })

  it("onIdle, size and pending, pause and resume", async () => {
    const pool = createPool({ concurrency: 2 })
    pool.pause()
    assert.ok(pool.isPaused)
    const results = [1, 2, 3].map((n) => pool.add(async () => n))
    assert.strictEqual(pool.size, 3)
    assert.strictEqual(pool.pending, 0)
    pool.resume()
    await pool.onIdle()
    assert.strictEqual(pool.size + pool.pending, 0)
    assert.deepStrictEqual(await Promise.all(results), [1, 2, 3])
    await pool.close()
  })

  it("invalid options throw at construction, naming the option", () => {
    assert.throws(() => createPool({ concurrency: 0 }), PoolError, /"concurrency"/)
    assert.throws(() => createPool({ concurrency: 1, timeout: -5 }), PoolError, /"timeout"/)
  })

  it("an invalid job option rejects, naming the option", async () => {
    const pool = createPool({ concurrency: 1 })
    const error = await pool.add(async () => 1, { priority: Number.NaN }).catch((e) => e)
    assert.ok(error instanceof PoolError)
    assert.strictEqual(error.reason._tag, "InvalidOptions")
    assert.match(error.message, /"priority"/)
    await pool.close()
  })
})
