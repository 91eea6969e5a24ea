/**
 * fastq through its promise API (`fastq.promise` with an async worker), the API its README's numbers and
 * most users' code use: every `push` returns a promise. Fire-and-forget pushes without awaiting those
 * promises, then waits for `drained()`; submit-and-await awaits every one. fastq has no queue bound.
 * The callback API is the `fastq-callback` peer.
 */
import fastq from "fastq"
import type { Peer } from "../lib.ts"
import { awaited, gate, sleep, type Tracker } from "../lib.ts"

const run = async (
  { concurrency, mode, n }: { readonly concurrency: number; readonly mode: "fire" | "await"; readonly n: number },
  worker: (i: number) => Promise<number>
): Promise<number | undefined> => {
  const queue = fastq.promise<unknown, number, number>(worker, concurrency)
  if (mode === "fire") {
    for (let i = 0; i < n; i++) queue.push(i)
    await queue.drained()
    return undefined
  }
  const results = new Array<Promise<number>>(n)
  for (let i = 0; i < n; i++) results[i] = queue.push(i)
  let sum = 0
  for (const result of results) sum += await result
  return sum
}

const trivial = (tracker: Tracker) => async (i: number) => tracker.hit(i)

export const peer: Peer = {
  throughput: (params, tracker) => run(params, trivial(tracker)),

  promise: (params, tracker) => run(params, (i) => awaited(tracker, i)),

  io: async ({ concurrency, n, sleepMs }, tracker) =>
    (await run({ concurrency, mode: "await", n }, async (i) => {
      await sleep(sleepMs)
      return tracker.hit(i)
    }))!,

  memory: async ({ n }, tracker, measure) => {
    const blocker = gate()
    // one promise per queued job is what the promise API keeps; the job's own body is the shared worker
    const queue = fastq.promise<unknown, number, number>(async (i) => {
      if (i < 0) {
        await blocker.promise
        return 0
      }
      return tracker.hit(i)
    }, 1)
    queue.push(-1)
    for (let i = 0; i < n; i++) queue.push(i)
    measure()
    blocker.open()
    await queue.drained()
  }
}
