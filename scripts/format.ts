/**
 * Formats (or with `--check`, checks) the repository's TypeScript, JSON and Markdown files with dprint's Wasm
 * plugins and the settings in `dprint.json`.
 *
 * This runs the plugins through `@dprint/formatter` instead of the `dprint` CLI: the CLI's npm package installs
 * a native binary per platform, and a lockfile written on one platform then lacks the others, which `npm ci`
 * refuses. The Wasm plugins are the same formatters the CLI runs.
 *
 *   node scripts/format.ts            # rewrite files in place
 *   node scripts/format.ts --check    # list unformatted files, exit 1 if any
 */
import { createContext } from "@dprint/formatter"
import { execFileSync } from "node:child_process"
import { readFileSync, writeFileSync } from "node:fs"
import { extname } from "node:path"

const root = new URL("..", import.meta.url)
const check = process.argv.includes("--check")
const config = JSON.parse(readFileSync(new URL("dprint.json", root), "utf8")) as {
  readonly lineWidth: number
  readonly excludes: ReadonlyArray<string>
  readonly plugins: ReadonlyArray<string>
  readonly [plugin: string]: unknown
}

const context = createContext({ lineWidth: config.lineWidth })
const pluginKeys: Record<string, string> = { typescript: "typescript", json: "json", markdown: "markdown" }
for (const plugin of config.plugins) {
  const key = Object.keys(pluginKeys).find((name) => plugin.includes(`/@dprint/${name}/`))
  const options = key !== undefined ? (config[key] as Record<string, unknown> | undefined) : undefined
  context.addPlugin(readFileSync(new URL(plugin, root)), options ?? {})
}

const extensions = new Set([".ts", ".mts", ".cts", ".js", ".mjs", ".cjs", ".json", ".md"])
const isExcluded = (file: string) =>
  config.excludes.some((pattern) => {
    const rest = pattern.startsWith("**/") ? pattern.slice(3) : pattern
    const anywhere = pattern.startsWith("**/")
    return file === rest || file.startsWith(`${rest}/`) ||
      (anywhere && (file.includes(`/${rest}/`) || file.endsWith(`/${rest}`)))
  })

const files = execFileSync("git", ["ls-files", "--cached", "--others", "--exclude-standard"], {
  cwd: root,
  encoding: "utf8"
}).split("\n").filter((file) => file !== "" && extensions.has(extname(file)) && !isExcluded(file))

const unformatted: Array<string> = []
for (const file of files) {
  const url = new URL(file, root)
  let text: string
  try {
    text = readFileSync(url, "utf8")
  } catch {
    continue // listed by git but deleted in the working tree
  }
  const formatted = context.formatText({ filePath: file, fileText: text })
  if (formatted === text) continue
  unformatted.push(file)
  if (!check) writeFileSync(url, formatted)
}

if (check && unformatted.length > 0) {
  console.error(`Not formatted (run \`npm run format\`):\n${unformatted.map((file) => `  ${file}`).join("\n")}`)
  process.exit(1)
}
console.log(`${files.length} files ${check ? "checked" : "formatted"}${check ? "" : `, ${unformatted.length} changed`}`)
