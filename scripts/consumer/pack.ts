/**
 * Builds and packs the published packages exactly as `npm publish` would (its `prepack` is the build), for the
 * consumer test and `npm run release:dry`.
 */
import { execFileSync } from "node:child_process"
import { mkdirSync, readdirSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { fileURLToPath } from "node:url"

const repo = fileURLToPath(new URL("../..", import.meta.url))

/** The workspace packages that are published: every `packages/*` without `"private": true`, core first. */
export const publicPackages: ReadonlyArray<string> = readdirSync(join(repo, "packages"))
  .map((dir) => JSON.parse(readFileSync(join(repo, "packages", dir, "package.json"), "utf8")))
  .filter((manifest) => manifest.private !== true)
  .map((manifest) => manifest.name as string)
  .sort((a, b) => (a === "@fiberpool/core" ? -1 : b === "@fiberpool/core" ? 1 : a.localeCompare(b)))

/** What `npm pack --json` says of one tarball. */
export interface Packed {
  readonly name: string
  readonly version: string
  readonly filename: string
  readonly size: number
  readonly unpackedSize: number
  readonly entryCount: number
  readonly files: ReadonlyArray<{ readonly path: string; readonly size: number }>
}

const npm = (args: ReadonlyArray<string>) =>
  execFileSync("npm", args, { cwd: repo, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], maxBuffer: 64 << 20 })

/**
 * Builds every package (in dependency order: the root `build` script), then packs them into `destination`
 * (or, with `dryRun`, only lists what would be packed). The build runs once, before packing, instead of as each
 * package's `prepack`, so that `npm pack --json` prints nothing but its JSON.
 */
export const packWorkspaces = (destination: string, options: { readonly dryRun?: boolean } = {}): Array<Packed> => {
  npm(["run", "build", "--silent"])
  mkdirSync(destination, { recursive: true })
  const workspaces = publicPackages.flatMap((name) => ["-w", name])
  const output = npm([
    "pack",
    "--json",
    "--ignore-scripts",
    ...(options.dryRun === true ? ["--dry-run"] : []),
    "--pack-destination",
    destination,
    ...workspaces
  ])
  return JSON.parse(output) as Array<Packed>
}
