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

/** A policy that polls (as after a slow wake-up) for `periods` idle periods. */
const polling = (periods: number) => {
  const policy = new SpinPolicy()
  policy.pollFor = periods
  return policy
}

describe("while an idle thread polls", () => {
  /** Which of `periods` idle periods poll, with `result` recorded after each poll. */
  const polls = (policy: SpinPolicy, periods: number, result: (poll: number) => SpinResult) => {
    const polled: Array<number> = []
    for (let period = 0; period < periods; period++) {
      if (policy.polls()) {
        polled.push(period)
        policy.record(result(polled.length - 1))
      }
    }
    return polled
  }

  it("polls every idle period while polls catch requests", () => {
    assert.deepStrictEqual(polls(polling(5), 5, () => "caught"), [0, 1, 2, 3, 4])
  })

  it("after polls that do not pay, blocks at once for 1, 2, 4, ... idle periods", () => {
    const failed: ReadonlyArray<SpinResult> = ["missed", "preempted", "missed", "missed"]
    assert.deepStrictEqual(polls(polling(23), 23, (poll) => failed[poll % failed.length]), [0, 2, 5, 10, 19])
  })

  it("backs off to Spin.maxBackoff idle periods at most", () => {
    const polled = polls(polling(20 * Spin.maxBackoff), 20 * Spin.maxBackoff, () => "missed")
    const gaps = polled.slice(1).map((period, i) => period - polled[i] - 1)
    assert.strictEqual(Math.max(...gaps), Spin.maxBackoff)
    assert.strictEqual(gaps[gaps.length - 1], Spin.maxBackoff)
  })

  it("halves its backoff with each poll that catches a request, so that a core shared now and then settles", () => {
    // misses at polls 0–3 (periods 0, 2, 5, 10: the backoff is 16), a catch (8), then a miss: 8 periods skipped
    const results: ReadonlyArray<SpinResult> = ["missed", "missed", "missed", "missed", "caught", "missed", "caught"]
    assert.deepStrictEqual(polls(polling(30), 30, (poll) => results[Math.min(poll, results.length - 1)]), [
      0,
      2,
      5,
      10,
      19,
      20,
      29
    ])
  })

  it("polls every period again once a poll catches a request", () => {
    // misses at polls 0–2 (periods 0, 2, 5), then every poll catches
    assert.deepStrictEqual(polls(polling(13), 13, (poll) => poll < 3 ? "missed" : "caught"), [
      0,
      2,
      5,
      10,
      11,
      12
    ])
  })
})

describe("whether an idle thread polls at all", () => {
  const slow = Spin.slowWakeMillis * 2
  const fast = Spin.slowWakeMillis / 4

  it("blocks at once while its wake-ups are fast (it runs on the main thread's core)", () => {
    const policy = new SpinPolicy()
    for (let period = 0; period < 100; period++) {
      assert.isFalse(policy.polls())
      policy.blocked(fast)
    }
  })

  it("after a slow wake-up, polls for Spin.pollPeriods periods, then blocks once to measure again", () => {
    const policy = new SpinPolicy()
    assert.isFalse(policy.polls())
    policy.blocked(slow)
    for (let period = 0; period < Spin.pollPeriods; period++) {
      assert.isTrue(policy.polls())
      policy.record("caught")
    }
    assert.isFalse(policy.polls())
    // still slow: polls again; fast (the kernel moved it): blocks
    policy.blocked(slow)
    assert.isTrue(policy.polls())
    policy.pollFor = 0
    policy.blocked(fast)
    assert.isFalse(policy.polls())
  })

  it("leaves out gaps longer than Spin.maxGapMillis: those are the caller's", () => {
    const policy = new SpinPolicy()
    policy.blocked(2 * Spin.maxGapMillis)
    assert.isFalse(policy.polls())
  })

  it("counts the periods its backoff skips toward Spin.pollPeriods", () => {
    const policy = new SpinPolicy()
    policy.blocked(slow)
    let polled = 0
    for (let period = 0; period < 2 * Spin.pollPeriods; period++) {
      if (policy.polls()) {
        polled++
        policy.record("missed")
      }
    }
    // misses at periods 0, 2, 5, 10, 19, 36: the rest of the 64 periods were skipped, then it blocks
    assert.strictEqual(polled, 6)
    assert.strictEqual(policy.pollFor, 0)
  })
})
