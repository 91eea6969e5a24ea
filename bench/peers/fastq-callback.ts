/**
 * fastq through its callback API: a synchronous worker (`done(null, result)` in the same call), `push` then
 * the `drain` hook. Fire-and-forget pushes without a callback; submit-and-await passes one callback per job
 * that adds its result. No promise is created per job, so this is close to the plain-loop floor. fastq has
 * no queue bound.
 */
import fastq from "fastq"
import type { Peer } from "../lib.ts"
import { gate } from "../lib.ts"

const drained = (queue: fastq.queue<number, number>) =>
  new Promise<void>((resolve) => {
    if (queue.idle()) resolve()
    else queue.drain = resolve
  })

export const peer: Peer = {
  throughput: async ({ concurrency, mode, n }, tracker) => {
    const queue = fastq<unknown, number, number>((i, done) => done(null, tracker.hit(i)), concurrency)
    if (mode === "fire") {
      for (let i = 0; i < n; i++) queue.push(i)
      await drained(queue)
      return undefined
    }
    let sum = 0
    let received = 0
    const add = (error: Error | null, result?: number) => {
      if (error !== null) throw error
      sum += result!
      received++
    }
    for (let i = 0; i < n; i++) queue.push(i, add)
    await drained(queue)
    if (received !== n) throw new Error(`${received} of ${n} callbacks called`)
    return sum
  },

  memory: async ({ n }, tracker, measure) => {
    const blocker = gate()
    // the worker is shared and each job is only its payload: that is fastq's design, not a shortcut.
    // Completing synchronously would recurse once per queued job when the blocker opens (a RangeError at 1M),
    // so the worker completes on a microtask; that does not change what a queued job costs.
    const queue = fastq<unknown, number, number>((i, done) => {
      if (i < 0) blocker.promise.then(() => done(null, 0))
      else queueMicrotask(() => done(null, tracker.hit(i)))
    }, 1)
    queue.push(-1)
    for (let i = 0; i < n; i++) queue.push(i)
    measure()
    blocker.open()
    await drained(queue)
  }
}
