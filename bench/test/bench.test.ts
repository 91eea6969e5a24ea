import { assert, describe, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { mkdtempSync, readFileSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { peerNames } from "../cell.ts"

const run = fileURLToPath(new URL("../run.ts", import.meta.url))

// Every label run.ts shows, so that a peer silently dropped from the suite fails this test: every peer, and the
// fiberpool variants of the memory and scheduling scenarios.
const labels = [
  ...peerNames,
  "fiberpool (handles)",
  "fiberpool (options unused)",
  "fiberpool (priorities 0–9)",
  "fiberpool (16 keys, keyConcurrency 2)",
  "fiberpool (rate limit, not binding)",
  "fiberpool (metrics + events)"
]

interface Outcome {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const quickRun = (out: string): Promise<Outcome> =>
  new Promise((resolve) => {
    // vitest already runs on the pinned Node 24, so its execPath is the node the bench needs
    execFile(
      process.execPath,
      [run, "--quick", "--out", out],
      { timeout: 240_000, maxBuffer: 16 * 2 ** 20 },
      (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === "number" ? error.code : null, stdout, stderr })
      }
    )
  })

describe("bench --quick", () => {
  it("runs every peer of every scenario, all cells correct, and prints the ratio table", async () => {
    const out = mkdtempSync(join(tmpdir(), "fiberpool-bench-"))
    try {
      const { code, stderr, stdout } = await quickRun(out)
      assert.strictEqual(code, 0, `bench --quick failed:\n${stderr}\n${stdout.slice(-2000)}`)
      assert.include(stdout, "ratio fiberpool ÷ peer")
      for (
        const title of [
          "Throughput",
          "Jobs awaiting a promise",
          "I/O-shaped",
          "Memory per queued job",
          "Shutdown latency",
          "Cost of the scheduling options"
        ]
      ) {
        assert.include(stdout, title)
      }
      for (const label of labels) assert.include(stdout, `| ${label} |`, `no row for ${label}`)
      const results = JSON.parse(readFileSync(join(out, "latest.json"), "utf8")) as {
        samples: ReadonlyArray<{ error?: string; result?: { value: number } }>
      }
      // 2 rounds of every cell, none failed its correctness check
      assert.isAbove(results.samples.length, labels.length * 2)
      for (const sample of results.samples) {
        assert.isUndefined(sample.error)
        assert.isTrue(Number.isFinite(sample.result?.value))
      }
      assert.match(readFileSync(join(out, "chart.svg"), "utf8"), /^<svg [^>]*>[\s\S]*<\/svg>\n$/)
      assert.include(readFileSync(join(out, "latest.md"), "utf8"), "ratio fiberpool ÷ peer")
    } finally {
      rmSync(out, { recursive: true, force: true })
    }
  })
})
