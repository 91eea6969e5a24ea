/**
 * Shows what `npm run release` would publish, without publishing: each package's name and version, whether
 * that version is already on the registry, its tarball's file count and sizes, and the files themselves; then
 * the pending changesets.
 *
 *   npm run release:dry
 */
import { spawnSync } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { packWorkspaces } from "./consumer/pack.ts"

const kb = (bytes: number) => `${(bytes / 1024).toFixed(1)} kB`

const destination = mkdtempSync(join(tmpdir(), "fiberpool-release-dry-"))
try {
  const packed = packWorkspaces(destination, { dryRun: true })
  for (const p of packed) {
    // `npm view` answers 404 (E404) for a version that was never published: that is the one to publish.
    const view = spawnSync("npm", ["view", `${p.name}@${p.version}`, "version"], { encoding: "utf8" })
    const published = view.status === 0 && view.stdout.trim() === p.version
    const unknown = view.status !== 0 && !/E404|404/.test(view.stderr)
    const verdict = published
      ? "already published: skipped"
      : unknown
      ? "would publish (the registry could not be asked)"
      : "would publish"
    console.log(`${p.name}@${p.version}: ${verdict}`)
    console.log(`  ${p.entryCount} files, ${kb(p.size)} packed, ${kb(p.unpackedSize)} unpacked`)
    for (const file of p.files) console.log(`    ${file.path.padEnd(40)} ${kb(file.size).padStart(9)}`)
  }
} finally {
  rmSync(destination, { recursive: true, force: true })
}

console.log("\npending changesets (`changeset status`):")
const status = spawnSync("npx", ["changeset", "status", "--verbose"], { encoding: "utf8" })
console.log((status.stdout + status.stderr).trim() || "none")
