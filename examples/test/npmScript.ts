// Runs an example as its README says: `npm run --silent example:NN` from the repository root.
import * as Fs from "node:fs"
import { fileURLToPath } from "node:url"
import { runCommand, type Running } from "../../packages/node/test/utils/spawn.ts"

export const root = fileURLToPath(new URL("../..", import.meta.url))

/** The root package.json's scripts. */
export const scripts: Readonly<Record<string, string>> =
  JSON.parse(Fs.readFileSync(new URL("../../package.json", import.meta.url), "utf8")).scripts

/** The npm script that runs `entry` (a path under examples/), e.g. `example:08` for `08-dashboard.ts`. */
export const scriptFor = (entry: string): string => {
  const name = `example:${entry.slice(0, 2)}`
  if (scripts[name] !== `exec node examples/${entry}`) {
    throw new Error(`package.json has no "${name}": "exec node examples/${entry}" (it has ${scripts[name]})`)
  }
  return name
}

/** `npm run --silent example:NN -- ...args` for the example whose entry is `entry`. */
export const runExample = (
  entry: string,
  args: ReadonlyArray<string> = [],
  env?: Readonly<Record<string, string>>
): Running =>
  runCommand("npm", ["run", "--silent", scriptFor(entry), ...(args.length > 0 ? ["--", ...args] : [])], {
    cwd: root,
    env: env === undefined ? process.env : { ...process.env, ...env }
  })
