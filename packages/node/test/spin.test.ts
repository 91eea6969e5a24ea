import { assert, describe, it } from "@effect/vitest"
import { Shared, Spin, spin, SpinPolicy, type SpinResult } from "../src/internal/threads.ts"

// about 1 µs, exact in binary: the clock's sums stay exact
const step = 2 ** -10

const buffer = () => new Int32Array(new SharedArrayBuffer(Shared.bytes), 0, Shared.length)

/** A clock that advances by `steps[i]` ms at its i-th reading (the last step repeats), calling `onRead` first. */
const clock = (steps: ReadonlyArray<number>, onRead: (reading: number) => void = () => {}) => {
  let time = 1000
  let reading = 0
  return () => {
    onRead(reading)
    time += steps[Math.min(reading, steps.length - 1)]
    reading++
    return time
  }
}

describe("an idle thread's poll for its next request", () => {
  it("catches a request posted while it polls", () => {
    const shared = buffer()
    // the main thread posts (bumps the counter) after the thread's fifth reading of the clock
    const now = clock([0, step], (reading) => {
      if (reading === 5) Atomics.add(shared, Shared.counter, 1)
    })
    assert.strictEqual(spin(shared, 0, Spin.millis, now), "caught")
  })

  it("catches a request posted before it polls, without reading past it", () => {
    const shared = buffer()
    Atomics.store(shared, Shared.counter, 7)
    let readings = 0
    assert.strictEqual(spin(shared, 6, Spin.millis, () => ++readings * step), "caught")
    // the start, and the first poll
    assert.strictEqual(readings, 2)
  })

  it("gives up when nothing came within its time", () => {
    const shared = buffer()
    let readings = 0
    const now = clock([0, step], () => readings++)
    assert.strictEqual(spin(shared, 0, 50 * step, now), "missed")
    // the first reading, then 50 polls a step apart
    assert.strictEqual(readings, 51)
  })

  it("stops at once when a gap between two polls shows it was descheduled", () => {
    const shared = buffer()
    let readings = 0
    const now = clock([0, step, step, 2 * Spin.preemptedMillis, step], () => readings++)
    assert.strictEqual(spin(shared, 0, Spin.millis, now), "preempted")
    assert.strictEqual(readings, 4)
  })

  it("reports such a gap even when a request was posted during it: polling did not pay, the core is shared", () => {
    const shared = buffer()
    const now = clock([0, Spin.preemptedMillis * 2], (reading) => {
      if (reading === 1) Atomics.add(shared, Shared.counter, 1)
    })
    assert.strictEqual(spin(shared, 0, Spin.millis, now), "preempted")
  })
})

const slow = Spin.slowWakeMillis * 2
const fast = Spin.slowWakeMillis / 4

describe("whether an idle thread polls", () => {
  /**
   * Runs `periods` idle periods: each one that does not poll blocks, with a wake-up of `wake(period)` ms; each poll
   * gets `result(poll)`. Returns the periods that polled.
   */
  const run = (
    policy: SpinPolicy,
    periods: number,
    wake: (period: number) => number,
    result: (poll: number) => SpinResult
  ) => {
    const polled: Array<number> = []
    for (let period = 0; period < periods; period++) {
      if (policy.polls()) {
        polled.push(period)
        policy.record(result(polled.length - 1))
      } else {
        policy.blocked(wake(period))
      }
    }
    return polled
  }

  it("blocks at once while its wake-ups are fast (it runs on the main thread's core)", () => {
    assert.deepStrictEqual(run(new SpinPolicy(), 100, () => fast, () => "caught"), [])
  })

  it("after a slow wake-up, polls for Spin.pollPeriods periods while polls catch, then blocks once to measure", () => {
    const polled = run(new SpinPolicy(), 2 * Spin.pollPeriods + 3, () => slow, () => "caught")
    // period 0 blocks (slow), the next 64 poll, one blocks (slow again), the next 64 poll, the last one blocks
    assert.strictEqual(polled.length, 2 * Spin.pollPeriods)
    assert.strictEqual(polled[0], 1)
    assert.strictEqual(polled[Spin.pollPeriods], Spin.pollPeriods + 2)
  })

  it("goes back to blocking once a wake-up is fast again (the kernel moved it)", () => {
    const polled = run(new SpinPolicy(), 3 * Spin.pollPeriods, (period) => period === 0 ? slow : fast, () => "caught")
    assert.strictEqual(polled.length, Spin.pollPeriods)
  })

  it("stops polling at the first poll that does not pay, then blocks for 1, 2, 4, ... periods before it polls", () => {
    // every wake-up slow, every poll missed: 1, 2, 4, 8 blocking periods between polls (the last one's slow wake-up
    // starts the next poll)
    assert.deepStrictEqual(run(new SpinPolicy(), 30, () => slow, () => "missed"), [1, 3, 6, 11, 20])
  })

  it("blocks for Spin.maxBackoff periods at most between polls", () => {
    const polled = run(new SpinPolicy(), 20 * Spin.maxBackoff, () => slow, () => "preempted")
    const gaps = polled.slice(1).map((period, i) => period - polled[i] - 1)
    assert.strictEqual(Math.max(...gaps), Spin.maxBackoff)
  })

  it("halves that backoff with each poll that catches a request", () => {
    // misses at polls 0-3 (the backoff is 16), then catches: 4 of them halve it to 1, and a miss skips 1 period
    const results: ReadonlyArray<SpinResult> = ["missed", "missed", "missed", "missed", "caught", "caught", "caught"]
    const policy = new SpinPolicy()
    run(policy, 60, () => slow, (poll) => results[Math.min(poll, results.length - 1)])
    assert.strictEqual(policy.backoff, 1)
    policy.record("missed")
    assert.strictEqual(policy.skip, 1)
  })

  it("leaves out gaps longer than Spin.maxGapMillis: those are the caller's", () => {
    assert.deepStrictEqual(run(new SpinPolicy(), 100, () => 2 * Spin.maxGapMillis, () => "caught"), [])
  })
})
