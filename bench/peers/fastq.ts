/**
 * fastq: the callback API for fire-and-forget (`push` then the `drain` hook), the promise API
 * (`fastq.promise`, one promise per job) for submit-and-await. fastq has no queue bound.
 */
import fastq from "fastq"
import type { Peer } from "../lib.ts"
import { gate, sleep } from "../lib.ts"

const drained = (queue: fastq.queue<number, number>) =>
  new Promise<void>((resolve) => {
    if (queue.idle()) resolve()
    else queue.drain = resolve
  })

export const peer: Peer = {
  throughput: async ({ concurrency, mode, n }, tracker) => {
    if (mode === "fire") {
      const queue = fastq<unknown, number, number>((i, done) => done(null, tracker.hit(i)), concurrency)
      for (let i = 0; i < n; i++) queue.push(i)
      await drained(queue)
      return undefined
    }
    const queue = fastq.promise<unknown, number, number>(async (i) => tracker.hit(i), concurrency)
    const results = new Array<Promise<number>>(n)
    for (let i = 0; i < n; i++) results[i] = queue.push(i)
    let sum = 0
    for (const result of results) sum += await result
    return sum
  },

  io: async ({ concurrency, n, sleepMs }, tracker) => {
    const queue = fastq.promise<unknown, number, number>(async (i) => {
      await sleep(sleepMs)
      return tracker.hit(i)
    }, concurrency)
    const results = new Array<Promise<number>>(n)
    for (let i = 0; i < n; i++) results[i] = queue.push(i)
    let sum = 0
    for (const result of results) sum += await result
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
