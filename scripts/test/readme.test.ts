import { spawnSync } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import { fileURLToPath } from "node:url"
import { expect, it } from "vitest"

const root = fileURLToPath(new URL("../..", import.meta.url))

/**
 * The quickstart in a README is code people paste: run it, and check that it prints what the README says it
 * prints (the `// ` lines at the end of the block).
 */
const checkQuickstart = (readme: string, dir: string) => {
  const text = readFileSync(`${root}/${readme}`, "utf8")
  const section = text.slice(text.indexOf("## Quickstart"))
  const block = /```ts\n([\s\S]*?)```/.exec(section)![1]
  const lines = block.trimEnd().split("\n")
  const expected: Array<string> = []
  while (lines.length > 0 && lines[lines.length - 1].startsWith("// ")) expected.unshift(lines.pop()!.slice(3))
  mkdirSync(`${root}/${dir}/.docs`, { recursive: true })
  const file = `${root}/${dir}/.docs/readme-quickstart.ts`
  writeFileSync(file, block)
  const result = spawnSync(process.execPath, [file], { cwd: root, encoding: "utf8", timeout: 30_000 })
  expect(result.status, result.stderr).toBe(0)
  expect(result.stdout.trimEnd().split("\n")).toEqual(expected)
}

it("the core README's quickstart runs and prints what it says", () => {
  checkQuickstart("packages/core/README.md", "packages/core")
}, 60_000)

it("the top README's quickstart runs as pasted and prints what it says", () => {
  checkQuickstart("README.md", ".")
}, 60_000)
