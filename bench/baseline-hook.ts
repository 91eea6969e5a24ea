/**
 * Runs a benchmark cell against an earlier version of `@fiberpool/core`: with `FIBERPOOL_BASELINE_CORE` set to
 * a folder holding that version's `src/` (extracted by `run.ts --baseline <rev>`), every import of
 * `@fiberpool/core` (and its subpaths) resolves there instead. Loaded with `node --import`.
 */
import { registerHooks } from "node:module"
import { join } from "node:path"
import { pathToFileURL } from "node:url"

const dir = process.env["FIBERPOOL_BASELINE_CORE"]
const name = "@fiberpool/core"

if (dir !== undefined) {
  registerHooks({
    resolve(specifier, context, nextResolve) {
      if (specifier === name || specifier.startsWith(`${name}/`)) {
        const sub = specifier === name ? "index" : specifier.slice(name.length + 1)
        return nextResolve(pathToFileURL(join(dir, "src", `${sub}.ts`)).href, context)
      }
      return nextResolve(specifier, context)
    }
  })
}
