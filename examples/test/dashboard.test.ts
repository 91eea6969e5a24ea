import { assert, describe, it } from "@effect/vitest"
import { exitWithin } from "../../packages/node/test/utils/spawn.ts"
import { runExample } from "./npmScript.ts"

describe("examples", () => {
  it("npm run example:08 (08-dashboard.ts) exits 0 by itself and prints what it did", async () => {
    const program = runExample("08-dashboard.ts")
    const { code } = await exitWithin(program, 30_000)
    const output = program.lines.join("\n")
    assert.strictEqual(code, 0, output)
    assert.match(
      program.lines[0] ?? "",
      /^08-dashboard: a pool with mixed outcomes and a durable queue on SQLite/,
      output
    )
    for (
      const pattern of [
        /^dashboard: http:\/\/127\.0\.0\.1:\d+\/$/,
        /^3 dead letters: invoice-1, invoice-2, invoice-3$/,
        /^orders: \d+ succeeded, [1-9]\d* failed, [1-9]\d* timed out, [1-9]\d* retried$/,
        /^cancel export-1: cancelled$/,
        /^cancel reminder-2: cancelled$/,
        /^dashboard shows 3 pools and 3 dead letters$/,
        /^done, exiting 0$/
      ]
    ) assert.ok(program.lines.some((line) => pattern.test(line)), `${pattern}\n${output}`)
  })
})
