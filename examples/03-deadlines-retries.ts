/**
 * @title Deadlines, retries, cancellation and typed errors
 *
 * Shows, side by side, what each way a job can end looks like to the caller: a timeout counted from the
 * job's start, an absolute deadline that passes while the job waits, retries with exponential backoff that
 * only retry transient errors, cancellation of a queued and of a running job, and matching on typed errors.
 *
 * Run: npm run example:03
 */
import { type PoolError, WorkerPool } from "@fiberpool/core"
import { NodeShutdown } from "@fiberpool/node"
import { Clock, Data, Effect, Schedule } from "effect"

class PaymentDeclined extends Data.TaggedError("PaymentDeclined")<{ readonly retryable: boolean }> {}

const log = (line: string) => Effect.sync(() => console.log(line))

// One line per outcome, whatever the job's error: its own typed error, or the pool's JobError.
const describe = <A>(effect: Effect.Effect<A, PaymentDeclined | PoolError.JobError | PoolError.PoolError>) =>
  effect.pipe(
    Effect.map((value) => `succeeded with ${JSON.stringify(value)}`),
    Effect.catchTags({
      PaymentDeclined: (error) => Effect.succeed(`failed with PaymentDeclined (retryable: ${error.retryable})`),
      JobError: (error) => Effect.succeed(`ended ${error.reason._tag}: ${error.reason.message}`),
      PoolError: (error) => Effect.succeed(`rejected ${error.reason._tag}: ${error.message}`)
    })
  )

const program = Effect.gen(function*() {
  yield* log("03-deadlines-retries: one pool, five ways a job can end")
  const pool = yield* WorkerPool.make({ name: "payments", concurrency: 1 })

  yield* log("\n1. timeout: a 1 s job with a 100 ms timeout, counted from its start")
  const slow = Effect.sleep("1 second").pipe(Effect.ensuring(log("   finalizer of the slow job ran")))
  yield* log(`   -> ${yield* describe(WorkerPool.run(pool, slow, { id: "slow", timeout: "100 millis" }))}`)

  yield* log("\n2. deadline: a job due in 50 ms waits behind a 200 ms job and never starts")
  const now = yield* Clock.currentTimeMillis
  const blocker = yield* WorkerPool.submit(pool, Effect.sleep("200 millis"), { id: "blocker" })
  const late = yield* WorkerPool.submit(pool, log("   (never printed)"), { id: "late", deadline: now + 50 })
  yield* late.exit
  yield* log(`   -> status ${yield* late.status}, attempts ${yield* late.attempts}: it never started`)
  yield* blocker.await

  yield* log("\n3. retries: exponential backoff from 50 ms, at most 4 retries, only while the error is retryable")
  let attempts = 0
  const start = yield* Clock.currentTimeMillis
  const flaky = Effect.gen(function*() {
    attempts++
    const at = (yield* Clock.currentTimeMillis) - start
    yield* log(`   attempt ${attempts} at ~${Math.round(at / 10) * 10} ms`)
    if (attempts < 3) return yield* new PaymentDeclined({ retryable: true })
    return "charged"
  })
  const retry = { schedule: Schedule.exponential("50 millis"), times: 4, while: (e: PaymentDeclined) => e.retryable }
  yield* log(`   -> ${yield* describe(WorkerPool.run(pool, flaky, { id: "flaky", retry }))}`)
  const declined = Effect.gen(function*() {
    yield* log("   card declined for good: not retried")
    return yield* new PaymentDeclined({ retryable: false })
  })
  yield* log(`   -> ${yield* describe(WorkerPool.run(pool, declined, { id: "declined", retry }))}`)

  yield* log("\n4. cancellation: one job running, one queued behind it; cancel both")
  const running = yield* WorkerPool.submit(
    pool,
    Effect.never.pipe(Effect.onInterrupt(() => log("   running job interrupted, its finalizer ran"))),
    { id: "running" }
  )
  const queued = yield* WorkerPool.submit(pool, log("   (never printed)"), { id: "queued" })
  while ((yield* running.status) !== "running") yield* Effect.sleep("1 millis")
  yield* queued.cancel
  yield* running.cancel
  yield* log(`   queued  -> ${yield* describe(queued.await)}`)
  yield* log(`   running -> ${yield* describe(running.await)}`)

  yield* log("\n5. typed errors: handle one reason, let the others through")
  const handled = yield* WorkerPool.run(pool, Effect.never, { id: "slow-again", timeout: "30 millis" }).pipe(
    Effect.catchReason(
      "JobError",
      "JobTimedOut",
      (reason) => Effect.succeed(`fallback after ${reason.timeoutMillis} ms`)
    )
  )
  yield* log(`   -> ${handled}`)

  const report = yield* WorkerPool.shutdown(pool)
  const t = report.totals
  yield* log(
    `\ntotals: ${t.submitted} submitted, ${t.succeeded} succeeded, ${t.failed} failed, ${t.timedOut} timed out, ` +
      `${t.cancelled} cancelled, ${t.interrupted} interrupted, ${t.retries} retries`
  )
}).pipe(Effect.scoped)

NodeShutdown.runMain(program)
