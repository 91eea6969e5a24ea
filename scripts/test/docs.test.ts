import { spawnSync } from "node:child_process"
import { fileURLToPath } from "node:url"
import { expect, it } from "vitest"

const root = fileURLToPath(new URL("../..", import.meta.url))

// Every JSDoc @example of the libraries type-checks and runs (see scripts/docs.ts).
it("every JSDoc example type-checks and runs, and every export is documented", () => {
  const result = spawnSync(process.execPath, ["scripts/docs.ts", "core", "node", "durable"], {
    cwd: root,
    encoding: "utf8",
    timeout: 390_000
  })
  const output = `${result.stdout}\n${result.stderr}`
  expect(output, output.slice(-4000)).toMatch(/\d+ passed, 0 failed; 0 JSDoc problems/)
  expect(result.status, output.slice(-4000)).toBe(0)
}, 400_000)
