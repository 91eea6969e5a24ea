/**
 * @title Migrating from BullMQ: the "after" program of packages/core/docs/migrating-from-bullmq.md
 *
 * BullMQ's in-process half (a Worker's concurrency, job ids, priorities, retries on failure, progress, a
 * graceful close) on the promise pool, without Redis. Jobs live in memory: for jobs that must survive a
 * restart, see `@fiberpool/durable` (Effect) in the guide. No `effect` import.
 *
 * Run: `node examples/migrating/from-bullmq.ts`
 */
import { createPool } from "@fiberpool/core/promise"

interface Email {
  readonly to: string
  readonly flaky: boolean
}

const sendEmail = async (email: Email, attempt: number, signal: AbortSignal): Promise<string> => {
  await new Promise((resolve) => setTimeout(resolve, 10))
  signal.throwIfAborted()
  if (email.flaky && attempt < 2) throw new Error(`SMTP 451 for ${email.to}`)
  return `sent to ${email.to}`
}

const pool = createPool({ name: "emails", concurrency: 2, capacity: 1_000, progressInterval: 0 })

const emails: ReadonlyArray<Email> = [
  { to: "ada@example.com", flaky: false },
  { to: "grace@example.com", flaky: true },
  { to: "alan@example.com", flaky: false }
]
const results = await Promise.all(emails.map((email, i) =>
  pool.add(async (signal, job) => {
    job.progress({ step: "rendering", attempt: job.attempt })
    const result = await sendEmail(email, job.attempt, signal)
    job.progress({ step: "sent", attempt: job.attempt })
    return `${job.id}: ${result} (attempt ${job.attempt})`
  }, {
    id: `welcome-${email.to}`,
    priority: i === 2 ? 10 : 0,
    retry: { times: 3 },
    metadata: { template: "welcome" },
    onProgress: (value) => {
      if ((value as { step: string }).step === "sent") console.log(`progress of ${email.to}:`, JSON.stringify(value))
    }
  })
))
for (const line of results) console.log(line)
const report = await pool.close()
console.log(`closed: ${report.totals.succeeded} succeeded, ${report.totals.retries} retried`)
