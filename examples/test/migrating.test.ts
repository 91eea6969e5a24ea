import { spawnSync } from "node:child_process"
import { readFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { describe, expect, it } from "vitest"

// The "after" programs of packages/core/docs/migrating-from-*.md: they run, print what the guides show, and
// never import `effect` (the Promise API's promise).
const run = (name: string) => {
  const file = fileURLToPath(new URL(`../migrating/${name}`, import.meta.url))
  expect(readFileSync(file, "utf8")).not.toMatch(/from "effect/)
  const result = spawnSync(process.execPath, ["--conditions=@fiberpool/source", file], {
    encoding: "utf8",
    timeout: 30_000
  })
  expect(result.status, `${result.stdout}${result.stderr}`).toBe(0)
  return result.stdout.trimEnd().split("\n")
}

describe("migration guides' programs", () => {
  it("from p-queue: timeouts, a cancelled job, the close report", () => {
    const lines = run("from-p-queue.ts")
    expect(lines).toContain("https://example.com/slow: JobTimedOut")
    expect(lines).toContain("https://example.com/e: JobCancelled")
    expect(lines.at(-1)).toBe("closed: 4 succeeded, 1 timed out, 1 cancelled")
  })

  it("from piscina: tasks on threads, a timeout that terminates its thread", () => {
    const lines = run("from-piscina.ts")
    expect(lines).toEqual(["counts: 1229, 2262, 3245", "too-big: JobTimedOut", "closed: 3 succeeded, 1 timed out"])
  })

  it("from BullMQ: ids, priorities, a retry, progress", () => {
    const lines = run("from-bullmq.ts")
    expect(lines).toContain("welcome-grace@example.com: sent to grace@example.com (attempt 2)")
    expect(lines).toContain("progress of grace@example.com: {\"step\":\"sent\",\"attempt\":2}")
    expect(lines.at(-1)).toBe("closed: 3 succeeded, 1 retried")
  })
}, 60_000)
