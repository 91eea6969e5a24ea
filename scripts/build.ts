/**
 * Builds the package in the current directory: removes `dist/`, then emits ESM JavaScript, `.d.ts` and their
 * maps with the repository's TypeScript (`tsconfig.build.json`). A package that depends on a sibling resolves
 * the sibling's `dist/` types (no `@fiberpool/source` condition here), so siblings are built in dependency order
 * by the root `npm run build`.
 */
import { execFileSync } from "node:child_process"
import { rmSync } from "node:fs"

rmSync("dist", { recursive: true, force: true })
// `tsc` is the root devDependency: npm scripts put the repository's node_modules/.bin on PATH.
execFileSync("tsc", ["-p", "tsconfig.build.json"], { stdio: "inherit" })
