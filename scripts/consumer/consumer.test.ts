/**
 * The packages as a user gets them: `npm pack` of every package, installed from the tarballs (with `effect`,
 * `@effect/platform-node` and the type definitions a user adds) into a new project outside the repository;
 * the README's first programs are type-checked under the consumer's compiler settings, run on plain Node (no
 * type stripping of our files, no loaders, no `@fiberpool/source` condition) and bundled.
 */
import { describe, expect, it } from "@effect/vitest"
import { execFileSync, spawnSync } from "node:child_process"
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { fileURLToPath } from "node:url"
import { afterAll, beforeAll } from "vitest"
// the process helpers are shared with the node package's integration tests
import { exitWithin, runCommand } from "../../packages/node/test/utils/spawn.ts"
import { type Packed, packWorkspaces, publicPackages } from "./pack.ts"

const repo = fileURLToPath(new URL("../..", import.meta.url))
const tsc = join(repo, "node_modules", ".bin", "tsc")

// What the consumer's processes see: no npm script variables and no NODE_OPTIONS, so nothing of the
// workspace's own setup (the `@fiberpool/source` condition in particular) reaches them.
const cleanEnv = (): NodeJS.ProcessEnv =>
  Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith("npm_") && key !== "NODE_OPTIONS")
  )

let project = ""
let packed: ReadonlyArray<Packed> = []

const sh = (command: string, args: ReadonlyArray<string>, cwd = project) => {
  const result = spawnSync(command, args, { cwd, env: cleanEnv(), encoding: "utf8", timeout: 180_000 })
  return { status: result.status, output: `${result.stdout ?? ""}${result.stderr ?? ""}` }
}

const compilerOptions = {
  target: "ES2022",
  strict: true,
  noUncheckedIndexedAccess: true,
  exactOptionalPropertyTypes: true,
  skipLibCheck: false
}

const writeJson = (file: string, value: unknown) => writeFileSync(join(project, file), JSON.stringify(value, null, 2))

beforeAll(() => {
  project = mkdtempSync(join(tmpdir(), "fiberpool-consumer-"))
  packed = packWorkspaces(join(project, "tarballs"))
  const effectVersion = JSON.parse(readFileSync(join(repo, "node_modules/effect/package.json"), "utf8")).version
  const platformVersion =
    JSON.parse(readFileSync(join(repo, "node_modules/@effect/platform-node/package.json"), "utf8")).version
  writeJson("package.json", {
    name: "fiberpool-consumer",
    private: true,
    type: "module",
    dependencies: {
      ...Object.fromEntries(packed.map((p) => [p.name, `file:./tarballs/${p.filename}`])),
      effect: effectVersion,
      "@effect/platform-node": platformVersion
    },
    devDependencies: { "@types/node": "^24", "typescript": "5.9.3", "esbuild": "0.27.7" }
  })
  const install = sh("npm", ["install", "--no-audit", "--no-fund", "--loglevel=error"])
  if (install.status !== 0) throw new Error(`npm install in the consumer project failed:\n${install.output}`)
  cpSync(fileURLToPath(new URL("./app", import.meta.url)), join(project, "src"), { recursive: true })
}, 240_000)

afterAll(() => {
  if (project !== "") rmSync(project, { recursive: true, force: true })
})

describe("the packed tarballs", () => {
  it("hold the build, the docs and the license, and nothing of the repository's own", () => {
    expect(packed.map((p) => p.name).sort()).toEqual([...publicPackages].sort())
    for (const p of packed) {
      const paths = p.files.map((file) => file.path)
      for (
        const required of ["package.json", "README.md", "LICENSE", "CHANGELOG.md", "dist/index.js", "dist/index.d.ts"]
      ) {
        expect(paths, `${p.name} lacks ${required}`).toContain(required)
      }
      const stray = paths.filter((path) =>
        !/^(dist|src)\//.test(path) && !["package.json", "README.md", "LICENSE", "CHANGELOG.md"].includes(path)
      )
      expect(stray, `${p.name} ships files outside dist/ and src/`).toEqual([])
      expect(paths.filter((path) => /(^|\/)(test|benchmark)\/|tsconfig|\.test\.ts$/.test(path))).toEqual([])
      // Every module has its JavaScript, declarations and maps; the source the maps point to ships too.
      for (const source of paths.filter((path) => path.startsWith("src/") && path.endsWith(".ts"))) {
        const base = source.slice("src/".length, -".ts".length)
        for (const built of [`dist/${base}.js`, `dist/${base}.d.ts`, `dist/${base}.js.map`, `dist/${base}.d.ts.map`]) {
          expect(paths, `${p.name}: ${source} has no ${built}`).toContain(built)
        }
      }
      const manifest = JSON.parse(readFileSync(join(project, "node_modules", p.name, "package.json"), "utf8"))
      expect(manifest.version).toBe("0.1.0")
      expect(manifest.license).toBe("MIT")
      expect(manifest.engines?.node).toMatch(/^>=\d+/)
      expect(manifest.sideEffects).toBe(false)
      expect(manifest.repository?.directory).toBe(`packages/${p.name.split("/")[1]}`)
    }
  })

  it("export only the public modules: internal/ is blocked", () => {
    const probe = sh(process.execPath, [
      "--input-type=module",
      "-e",
      `await import("@fiberpool/core/WorkerPool");
       try { await import("@fiberpool/core/internal/pool"); console.log("internal loaded") }
       catch (error) { console.log(error.code) }`
    ])
    expect(probe.output.trim()).toBe("ERR_PACKAGE_PATH_NOT_EXPORTED")
  })
})

describe("a consumer's type-check", () => {
  const check = (name: string, options: Record<string, unknown>, files: ReadonlyArray<string>, compiler = tsc) => {
    writeJson(`tsconfig.${name}.json`, { compilerOptions: { ...options, noEmit: true }, files })
    const result = sh(compiler, ["-p", `tsconfig.${name}.json`])
    expect(result.output, `tsc -p tsconfig.${name}.json`).toBe("")
    expect(result.status).toBe(0)
  }
  const core = ["src/core-app.ts", "src/promise-app.ts"]
  const all = [
    "src/core-app.ts",
    "src/promise-app.ts",
    "src/node-app.ts",
    "src/sum.ts",
    "src/sum.worker.ts",
    "src/durable-app.ts",
    "src/durable-internals.ts"
  ]
  const withoutNodeTypes = { ...compilerOptions, types: [], lib: ["ES2022", "DOM"] }

  it("core without @types/node, module nodenext", () => {
    check("core-nodenext", { ...withoutNodeTypes, module: "nodenext", moduleResolution: "nodenext" }, core)
  })

  it("core without @types/node, moduleResolution bundler", () => {
    check("core-bundler", { ...withoutNodeTypes, module: "esnext", moduleResolution: "bundler" }, core)
  })

  it("every package with @types/node, module nodenext and moduleResolution bundler", () => {
    // effect's own declarations name Web Crypto types that @types/node does not declare: a Node consumer who
    // checks libraries' declarations (skipLibCheck false) adds the DOM lib, as here.
    const withNode = { ...compilerOptions, types: ["node"], lib: ["ES2022", "DOM"] }
    check("all-nodenext", { ...withNode, module: "nodenext", moduleResolution: "nodenext" }, all)
    check("all-bundler", { ...withNode, module: "esnext", moduleResolution: "bundler" }, all)
  })

  it("under the defaults `tsc --init` writes", () => {
    const init = join(project, "init")
    mkdirSync(init, { recursive: true })
    execFileSync(tsc, ["--init"], { cwd: init, env: cleanEnv(), stdio: "ignore" })
    const text = readFileSync(join(init, "tsconfig.json"), "utf8")
    // tsconfig.json allows comments and trailing commas
    const options = JSON.parse(text.replace(/^\s*\/\/.*$/gm, "").replace(/,(\s*[}\]])/g, "$1")).compilerOptions
    check("init-core", options, core)
    check("init-all", { ...options, types: ["node"] }, all)
  })

  it("with the JavaScript compiler (TypeScript 5.9) too", () => {
    check(
      "ts59",
      { ...compilerOptions, types: ["node"], lib: ["ES2022", "DOM"], module: "nodenext", moduleResolution: "nodenext" },
      all,
      join(project, "node_modules", ".bin", "tsc")
    )
  })
})

describe("a consumer's programs on plain Node", () => {
  beforeAll(() => {
    writeJson("tsconfig.json", {
      compilerOptions: {
        ...compilerOptions,
        types: ["node"],
        lib: ["ES2022", "DOM"],
        module: "nodenext",
        outDir: "out",
        rootDir: "src"
      },
      include: ["src"]
    })
    const build = sh(tsc, ["-p", "tsconfig.json"])
    if (build.status !== 0) throw new Error(`the consumer's build failed:\n${build.output}`)
  }, 60_000)

  const coreExpected = {
    invalid: "InvalidOptions concurrency",
    values: ["A", "B", "C"],
    declined: "no",
    timedOut: "JobTimedOut",
    succeeded: 3,
    timedOutTotal: 1
  }

  const promiseExpected = {
    invalid: "InvalidOptions Invalid option \"concurrency\": expected a positive integer, got 0",
    values: ["a:A", "b:B", "c:C"],
    timedOut: "JobTimedOut",
    cancelled: "JobInterrupted",
    progress: ["half"],
    own: "mine",
    succeeded: 4,
    size: 0
  }

  it("promise: a program that never imports effect", () => {
    const source = readFileSync(fileURLToPath(new URL("./app/promise-app.ts", import.meta.url)), "utf8")
    expect(source).not.toMatch(/from "effect/)
    const run = sh(process.execPath, ["out/promise-app.js"])
    expect(run.status, run.output).toBe(0)
    expect(JSON.parse(run.output)).toEqual(promiseExpected)
  })

  it("core: typed results and errors", () => {
    const run = sh(process.execPath, ["out/core-app.js"])
    expect(run.status, run.output).toBe(0)
    expect(JSON.parse(run.output)).toEqual(coreExpected)
  })

  it("the top README's quickstart, saved as main.ts and run with `node main.ts` as it says", () => {
    const readme = readFileSync(join(repo, "README.md"), "utf8")
    const block = /```ts\n([\s\S]*?)```/.exec(readme.slice(readme.indexOf("## Quickstart")))![1]!
    // the `// ` lines that end the block are what it prints
    const lines = block.trimEnd().split("\n")
    const expected: Array<string> = []
    while (lines.at(-1)?.startsWith("// ") === true) expected.unshift(lines.pop()!.slice(3))
    expect(expected.length).toBeGreaterThan(0)
    writeFileSync(join(project, "main.ts"), block)
    const run = sh(process.execPath, ["main.ts"])
    expect(run.status, run.output).toBe(0)
    expect(run.output.trimEnd().split("\n")).toEqual(expected)
  })

  it("core on the machine's own Node (the oldest engine core claims)", () => {
    const system = ["/usr/bin/node", "/usr/local/bin/node"].find((path) => existsSync(path))
    if (system === undefined) {
      // The machines this project runs on ship a Node 20; elsewhere there may be none to try.
      expect(process.env.CI, "no system Node found").toBeUndefined()
      return
    }
    const version = sh(system, ["-v"]).output.trim()
    const run = sh(system, ["out/core-app.js"])
    expect(run.status, `${version}: ${run.output}`).toBe(0)
    expect(JSON.parse(run.output)).toEqual(coreExpected)
    const promise = sh(system, ["out/promise-app.js"])
    expect(promise.status, `${version}: ${promise.output}`).toBe(0)
    expect(JSON.parse(promise.output)).toEqual(promiseExpected)
  })

  it("core bundled with esbuild", () => {
    const bundle = sh(join(project, "node_modules", ".bin", "esbuild"), [
      "src/core-app.ts",
      "--bundle",
      "--platform=node",
      "--format=esm",
      "--outfile=bundle/core-app.mjs",
      "--log-level=error"
    ])
    expect(bundle.status, bundle.output).toBe(0)
    const run = sh(process.execPath, ["bundle/core-app.mjs"])
    expect(run.status, run.output).toBe(0)
    expect(JSON.parse(run.output)).toEqual(coreExpected)
  })

  it("durable: enqueue, a worker, the result; a flow's parent reads its children; a schedule's tick runs; a batch type's jobs run (SQLite)", () => {
    const run = sh(process.execPath, ["out/durable-app.js", join(project, "jobs.db")])
    expect(run.status, run.output).toBe(0)
    expect(JSON.parse(run.output.trim().split("\n").at(-1)!)).toEqual({
      messageId: "invoice-42@acme",
      total: 11,
      tick: "beat at a tick",
      bulked: 6
    })
  })

  it("node: a thread task, then SIGTERM drains the pool, logs its report and exits 0", async () => {
    const service = runCommand(process.execPath, ["out/node-app.js"], { cwd: project, env: cleanEnv() })
    await service.waitForLine(/^ready$/)
    service.child.kill("SIGTERM")
    const { code } = await exitWithin(service, 20_000)
    const { lines } = service
    expect(code, lines.join("\n")).toBe(0)
    expect(lines).toContain("thread sum 10")
    expect(lines.some((line) => /SIGTERM received: graceful shutdown started/.test(line)), lines.join("\n")).toBe(true)
    expect(
      lines.some((line) => /pool consumer-node shut down \(drain, \d+ ms\): succeeded first, second, third/.test(line)),
      lines.join("\n")
    ).toBe(true)
  }, 30_000)
})
