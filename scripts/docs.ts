/**
 * Checks the JSDoc of the libraries: every public export documented with `@since` (and `@category`), and
 * every `@example` type-checked and executed. It stands in for `@effect/docgen`, which needs the TypeScript
 * JS compiler API that typescript 7 (native) does not ship.
 *
 * Usage: `node scripts/docs.ts [package...] [--no-exec]` from anywhere (packages are folder names under
 * `packages/`, default: all of them).
 *
 * - Scans `packages/<pkg>/src/**\/*.ts` outside `internal/`.
 * - Writes each ```ts block under `@example` to `packages/<pkg>/.docs/<File>.<n>.ts` (generated, gitignored), so
 *   that `@fiberpool/*` resolve through the workspace symlinks at runtime and through `paths` in the type-check.
 * - Type-checks them with one `tsc` run per package (`packages/<pkg>/.docs/tsconfig.json`), then runs each with
 *   `node` (cwd: repository root, 20 s timeout, 2 at a time). A type error, a thrown error, a non-zero exit or
 *   a timeout fails the example.
 * - An example whose first line is a comment starting with `sketch` or `a sketch` (`// sketch: needs a worker
 *   file`) is type-checked but not executed.
 *
 * Exits 1 when any example or JSDoc check fails. Warnings (missing `@example`, a category outside STYLE.md's
 * list, more than one `@category`) are printed but do not fail the run.
 */
import { spawn } from "node:child_process"
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { cpus } from "node:os"
import * as path from "node:path"
import { fileURLToPath } from "node:url"

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..")
const binDir = path.join(root, "node_modules", ".bin")
const execTimeoutMillis = 20_000
const execConcurrency = Math.max(1, Math.min(2, cpus().length))
const outputLimit = 4_000

const knownCategories = new Set([
  "models",
  "constructors",
  "guards",
  "combinators",
  "getters",
  "services",
  "layers",
  "errors",
  "error handling",
  "metrics",
  "resource management",
  "running",
  "testing",
  "type ids"
])

// ---- Model ----

interface JsDoc {
  readonly start: number // offset of "/**"
  readonly end: number // offset just after "*/"
  readonly line: number // 1-based line of "/**"
  readonly endLine: number // 1-based line of "*/"
  readonly lines: ReadonlyArray<string> // content lines, the leading " * " stripped
  readonly tags: ReadonlyMap<string, ReadonlyArray<string>>
}

interface Example {
  readonly pkg: string
  readonly source: string // path relative to the repository root
  readonly owner: string // the export it documents
  readonly jsdocLine: number
  readonly codeLine: number // source line of the example's first line
  readonly code: string
  readonly sketch: boolean
  outFile: string
  typeErrors: Array<string>
  runError: string | undefined
  millis: number
}

interface Problem {
  readonly where: string // file:line
  readonly message: string
}

// ---- JSDoc parsing ----

const lineStarts = (text: string): Array<number> => {
  const starts = [0]
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1)
  return starts
}

const lineOf = (starts: ReadonlyArray<number>, offset: number): number => {
  let lo = 0
  let hi = starts.length - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (starts[mid]! <= offset) lo = mid
    else hi = mid - 1
  }
  return lo + 1
}

/** Strips the comment frame of one JSDoc line: `/**`, `*\/` and the leading ` * ` (one space only). */
const stripLine = (raw: string, first: boolean, last: boolean): string => {
  let line = raw
  if (last) line = line.replace(/\s*\*\/\s*$/, "")
  if (first) line = line.replace(/^\s*\/\*\*\s?/, "")
  else line = line.replace(/^\s*\*(?: |$)/, "")
  return line.replace(/\s+$/, "")
}

/** Block tags start a line (`@since 0.1.0`); inline `{@link X}` are not tags. Fenced code is skipped. */
const parseTags = (lines: ReadonlyArray<string>): Map<string, Array<string>> => {
  const tags = new Map<string, Array<string>>()
  let fence = false
  for (const line of lines) {
    if (/^\s*```/.test(line)) fence = !fence
    if (fence) continue
    const tag = /^\s*@(\w+)\s*(.*)$/.exec(line)
    if (tag === null) continue
    const values = tags.get(tag[1]!) ?? []
    values.push(tag[2]!.trim())
    tags.set(tag[1]!, values)
  }
  return tags
}

const parseJsDocs = (text: string, starts: ReadonlyArray<number>): Array<JsDoc> => {
  const docs: Array<JsDoc> = []
  for (const match of text.matchAll(/\/\*\*(?!\/)[\s\S]*?\*\//g)) {
    const start = match.index!
    const end = start + match[0].length
    const raw = match[0].split("\n")
    const lines = raw.map((l, i) => stripLine(l, i === 0, i === raw.length - 1))
    docs.push({
      start,
      end,
      line: lineOf(starts, start),
      endLine: lineOf(starts, end - 1),
      lines,
      tags: parseTags(lines)
    })
  }
  return docs
}

/** Offsets covered by block comments (JSDoc included), so that code inside them is not read as code. */
const commentRanges = (text: string): Array<readonly [number, number]> => {
  const ranges: Array<readonly [number, number]> = []
  for (const match of text.matchAll(/\/\*[\s\S]*?\*\//g)) ranges.push([match.index!, match.index! + match[0].length])
  return ranges
}

const inRanges = (ranges: ReadonlyArray<readonly [number, number]>, offset: number): boolean =>
  ranges.some(([from, to]) => offset >= from && offset < to)

/** The JSDoc that ends right before `offset`, with only whitespace between. */
const docBefore = (text: string, docs: ReadonlyArray<JsDoc>, offset: number): JsDoc | undefined => {
  let found: JsDoc | undefined
  for (const doc of docs) {
    if (doc.end <= offset) found = doc
    else break
  }
  if (found === undefined) return undefined
  return /^\s*$/.test(text.slice(found.end, offset)) ? found : undefined
}

interface ExampleBlock {
  readonly code: string
  readonly firstLine: number // index in doc.lines of the first code line
  readonly lang: string
}

const exampleBlocks = (doc: JsDoc): Array<ExampleBlock> => {
  const blocks: Array<ExampleBlock> = []
  let inExample = false
  let fence: { lang: string; firstLine: number; lines: Array<string> } | undefined
  doc.lines.forEach((line, index) => {
    if (fence !== undefined) {
      if (/^\s*```\s*$/.test(line)) {
        if (inExample) blocks.push({ code: fence.lines.join("\n"), firstLine: fence.firstLine, lang: fence.lang })
        fence = undefined
      } else {
        fence.lines.push(line)
      }
      return
    }
    const open = /^\s*```(\w*)\s*$/.exec(line)
    if (open !== null) {
      fence = { lang: open[1]!, firstLine: index + 1, lines: [] }
      return
    }
    const tag = /^\s*@(\w+)/.exec(line)
    if (tag !== null) inExample = tag[1] === "example"
  })
  return blocks
}

// ---- Checking one source file ----

interface FileResult {
  readonly problems: Array<Problem>
  readonly warnings: Array<Problem>
  readonly examples: Array<Example>
}

const exportPattern =
  /^export\s+(?:declare\s+)?(?:abstract\s+)?(?:async\s+)?(const|let|var|function\*?|class|interface|type|enum|namespace|module)\s+([A-Za-z_$][\w$]*)/

const checkFile = (pkg: string, file: string): FileResult => {
  const source = path.relative(root, file)
  const text = readFileSync(file, "utf8")
  const starts = lineStarts(text)
  const docs = parseJsDocs(text, starts)
  const comments = commentRanges(text)
  const problems: Array<Problem> = []
  const warnings: Array<Problem> = []
  const at = (line: number) => `${source}:${line}`
  const owners = new Map<JsDoc, string>()

  const checkDoc = (name: string, line: number, doc: JsDoc | undefined, needsCategory: boolean) => {
    if (doc === undefined) return void problems.push({ where: at(line), message: `${name}: no JSDoc` })
    owners.set(doc, name)
    if (doc.tags.has("internal")) return
    const since = doc.tags.get("since")
    if (since === undefined || since[0] === "") problems.push({ where: at(line), message: `${name}: no @since` })
    if (!needsCategory) return
    const categories = doc.tags.get("category")
    if (categories === undefined || categories[0] === "") {
      problems.push({ where: at(line), message: `${name}: no @category` })
      return
    }
    if (categories.length > 1) warnings.push({ where: at(line), message: `${name}: more than one @category` })
    for (const category of categories) {
      if (!knownCategories.has(category)) {
        warnings.push({ where: at(line), message: `${name}: @category "${category}" is not in STYLE.md's list` })
      }
    }
    if (!doc.tags.has("example") && categories[0] !== "type ids") {
      warnings.push({ where: at(line), message: `${name}: no @example` })
    }
  }

  // module documentation: the first JSDoc, before any import or export, and not attached to an export
  const firstStatement = /^(?:import|export)\b/m.exec(text)
  const firstDoc = docs[0]
  const moduleDoc = firstDoc !== undefined && (firstStatement === null || firstDoc.end <= firstStatement.index) &&
      !(firstStatement !== null && /^export\b/.test(firstStatement[0]) &&
        docBefore(text, docs, firstStatement.index) === firstDoc)
    ? firstDoc
    : undefined
  if (moduleDoc === undefined) {
    const attached = firstDoc !== undefined && firstStatement !== null && firstDoc.end <= firstStatement.index
    problems.push({
      where: at(1),
      message: attached
        ? `no module JSDoc at the top of the file (the first JSDoc belongs to the export on line ${
          lineOf(starts, firstStatement.index)
        }: give the module its own)`
        : "no module JSDoc at the top of the file"
    })
  } else checkDoc("module", moduleDoc.line, moduleDoc, false)

  // exports: top level, inside exported namespaces (indented), and the overloads of dual APIs
  const lines = text.split("\n")
  lines.forEach((lineText, index) => {
    const offset = starts[index]!
    const indent = /^\s*/.exec(lineText)![0].length
    const trimmed = lineText.slice(indent)
    if (!trimmed.startsWith("export ") || inRanges(comments, offset)) return
    const at0 = offset + indent
    const doc = docBefore(text, docs, at0)
    const line = index + 1
    const reexport = /^export\s+\*\s+as\s+([\w$]+)\s+from/.exec(trimmed)
    if (reexport !== null) return checkDoc(reexport[1]!, line, doc, false)
    if (/^export\s+\*\s+from/.test(trimmed) || /^export\s+(type\s+)?\{/.test(trimmed)) {
      warnings.push({ where: at(line), message: `re-export not checked: ${trimmed}` })
      return
    }
    const declaration = exportPattern.exec(trimmed)
    const name = declaration?.[2] ?? (/^export\s+default\b/.test(trimmed) ? "default" : undefined)
    if (name === undefined) {
      warnings.push({ where: at(line), message: `export not understood: ${trimmed}` })
      return
    }
    const kind = declaration?.[1]
    checkDoc(name, line, doc, kind !== "namespace" && kind !== "module")
    if (doc?.tags.has("internal") === true) return

    // a dual API: `export const name: { <overloads> } = dual(...)`, each overload with its own JSDoc
    if (kind === "const" && /:\s*\{\s*$/.test(trimmed)) {
      const signatures: Array<number> = []
      for (let j = index + 1; j < lines.length; j++) {
        const inner = lines[j]!
        const innerIndent = /^\s*/.exec(inner)![0].length
        if (innerIndent <= indent && inner.trim() !== "") break
        if (innerIndent === indent + 2 && /^[<(]/.test(inner.trim()) && !inRanges(comments, starts[j]!)) {
          signatures.push(j)
        }
      }
      if (signatures.length > 1) {
        signatures.forEach((j, n) => {
          const sigDoc = docBefore(text, docs, starts[j]! + indent + 2)
          checkDoc(`${name} (overload ${n + 1})`, j + 1, sigDoc, true)
        })
      }
    }
  })

  const examples: Array<Example> = []
  for (const doc of docs) {
    for (const block of exampleBlocks(doc)) {
      if (block.lang !== "ts" && block.lang !== "typescript") {
        warnings.push({
          where: at(doc.line),
          message: `@example block in \`\`\`${block.lang || "(no language)"} is not checked`
        })
        continue
      }
      const firstCode = block.code.split("\n").find((l) => l.trim() !== "") ?? ""
      examples.push({
        pkg,
        source,
        owner: owners.get(doc) ?? "?",
        jsdocLine: doc.line,
        codeLine: doc.line + block.firstLine,
        code: block.code,
        sketch: /^\s*\/\/\s*(?:a\s+)?sketch\b/i.test(firstCode),
        outFile: "",
        typeErrors: [],
        runError: undefined,
        millis: 0
      })
    }
  }
  return { problems, warnings, examples }
}

// ---- Files ----

const sourceFiles = (dir: string): Array<string> => {
  if (!existsSync(dir)) return []
  const out: Array<string> = []
  for (const entry of readdirSync(dir).sort()) {
    const full = path.join(dir, entry)
    if (statSync(full).isDirectory()) {
      if (entry !== "internal") out.push(...sourceFiles(full))
    } else if (entry.endsWith(".ts") && !entry.endsWith(".d.ts")) {
      out.push(full)
    }
  }
  return out
}

/** The root tsconfig's `paths`, rebased onto `dir`. */
const rebasedPaths = (dir: string): Record<string, Array<string>> => {
  const raw = readFileSync(path.join(root, "tsconfig.json"), "utf8").replace(/^\s*\/\/.*$/gm, "")
  const paths = (JSON.parse(raw) as { compilerOptions?: { paths?: Record<string, Array<string>> } }).compilerOptions
    ?.paths ?? {}
  const out: Record<string, Array<string>> = {}
  for (const [key, targets] of Object.entries(paths)) {
    out[key] = targets.map((target) => {
      const relative = path.relative(dir, path.resolve(root, target)).split(path.sep).join("/")
      return relative.startsWith(".") ? relative : `./${relative}`
    })
  }
  return out
}

const writeExamples = (pkg: string, examples: Array<Example>): string => {
  const dir = path.join(root, "packages", pkg, ".docs")
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
  const counters = new Map<string, number>()
  for (const example of examples) {
    const base = path.basename(example.source, ".ts")
    const n = (counters.get(base) ?? 0) + 1
    counters.set(base, n)
    example.outFile = path.join(dir, `${base}.${n}.ts`)
    // without an import or export the file would be a script sharing globals with the others
    const isModule = /^\s*(import|export)\b/m.test(example.code)
    writeFileSync(example.outFile, `${example.code}\n${isModule ? "" : "export {}\n"}`)
  }
  const tsconfig = {
    extends: "../../../tsconfig.base.json",
    compilerOptions: {
      noEmit: true,
      // examples declare values to show them; an unused one is not a bug
      noUnusedLocals: false,
      noUnusedParameters: false,
      paths: rebasedPaths(dir)
    },
    include: ["./*.ts"]
  }
  writeFileSync(path.join(dir, "tsconfig.json"), `${JSON.stringify(tsconfig, null, 2)}\n`)
  return dir
}

// ---- Processes ----

interface ProcessResult {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
  readonly output: string
  readonly timedOut: boolean
  readonly millis: number
}

const runProcess = (command: string, args: ReadonlyArray<string>, timeoutMillis: number): Promise<ProcessResult> =>
  new Promise((resolve) => {
    const started = performance.now()
    const child = spawn(command, args, {
      cwd: root,
      env: { ...process.env, PATH: `${binDir}${path.delimiter}${process.env.PATH ?? ""}`, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"]
    })
    let output = ""
    const append = (chunk: Buffer) => {
      output += chunk.toString()
    }
    child.stdout.on("data", append)
    child.stderr.on("data", append)
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill("SIGKILL")
    }, timeoutMillis)
    child.on("error", (error) => {
      output += String(error)
    })
    child.on("close", (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, output, timedOut, millis: performance.now() - started })
    })
  })

const tail = (text: string): string => {
  const trimmed = text.trimEnd()
  return trimmed.length <= outputLimit ? trimmed : `...${trimmed.slice(trimmed.length - outputLimit)}`
}

/** Type-checks a package's examples; the errors go to their example, others are returned. */
const typeCheck = async (dir: string, examples: ReadonlyArray<Example>): Promise<Array<string>> => {
  const result = await runProcess(path.join(binDir, "tsc"), [
    "-p",
    path.join(dir, "tsconfig.json"),
    "--pretty",
    "false"
  ], 300_000)
  const byFile = new Map(examples.map((example) => [path.resolve(example.outFile), example]))
  const unattached: Array<string> = []
  let current: Array<string> | undefined
  for (const line of result.output.split("\n")) {
    if (line.trim() === "") continue
    const error = /^(.+?)\((\d+),(\d+)\): (error .*)$/.exec(line)
    if (error !== null) {
      const example = byFile.get(path.resolve(root, error[1]!))
      if (example !== undefined) {
        const sourceLine = example.codeLine + Number(error[2]) - 1
        current = example.typeErrors
        current.push(`${example.source}:${sourceLine}:${error[3]} (example line ${error[2]}): ${error[4]}`)
        continue
      }
      current = unattached
      current.push(line)
      continue
    }
    if (/^\s/.test(line) && current !== undefined) current.push(line)
    else unattached.push(line)
  }
  if (result.code !== 0 && result.output.trim() === "") unattached.push(`tsc exited with ${result.code}`)
  if (result.timedOut) unattached.push("tsc timed out")
  return unattached
}

const execute = async (example: Example): Promise<void> => {
  const result = await runProcess(process.execPath, [example.outFile], execTimeoutMillis)
  example.millis = result.millis
  if (result.timedOut) example.runError = `timed out after ${execTimeoutMillis / 1000} s\n${tail(result.output)}`
  else if (result.code !== 0) {
    example.runError = `exited with ${result.code ?? result.signal}\n${tail(result.output)}`
  }
}

const pool = async <A>(items: ReadonlyArray<A>, concurrency: number, f: (a: A) => Promise<void>): Promise<void> => {
  let next = 0
  const worker = async () => {
    while (next < items.length) await f(items[next++]!)
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker))
}

// ---- Main ----

const main = async (): Promise<number> => {
  const started = performance.now()
  const args = process.argv.slice(2)
  const exec = !args.includes("--no-exec")
  const requested = args.filter((arg) => !arg.startsWith("--"))
  const all = readdirSync(path.join(root, "packages")).filter((p) => existsSync(path.join(root, "packages", p, "src")))
  const unknown = requested.filter((p) => !all.includes(p))
  if (unknown.length > 0) {
    console.error(`unknown package(s): ${unknown.join(", ")} (known: ${all.join(", ")})`)
    return 2
  }
  const packages = requested.length > 0 ? requested : all

  const problems: Array<Problem> = []
  const warnings: Array<Problem> = []
  const examples: Array<Example> = []
  const globalErrors: Array<string> = []
  for (const pkg of packages) {
    const files = sourceFiles(path.join(root, "packages", pkg, "src"))
    const own: Array<Example> = []
    for (const file of files) {
      const result = checkFile(pkg, file)
      problems.push(...result.problems)
      warnings.push(...result.warnings)
      own.push(...result.examples)
    }
    examples.push(...own)
    console.log(`${pkg}: ${files.length} files, ${own.length} examples`)
    if (own.length === 0) continue
    const dir = writeExamples(pkg, own)
    const typeStarted = performance.now()
    const errors = await typeCheck(dir, own)
    globalErrors.push(...errors.map((e) => `[${pkg}] ${e}`))
    const failing = own.filter((e) => e.typeErrors.length > 0).length
    console.log(
      `${pkg}: type-checked in ${((performance.now() - typeStarted) / 1000).toFixed(1)} s, ${failing} with type errors`
    )
  }

  if (exec) {
    const runnable = examples.filter((example) => !example.sketch)
    const execStarted = performance.now()
    let done = 0
    await pool(runnable, execConcurrency, async (example) => {
      await execute(example)
      done++
      const status = example.runError === undefined ? "ok" : "FAILED"
      console.log(
        `  [${done}/${runnable.length}] ${path.relative(root, example.outFile)} ${status} (${
          Math.round(example.millis)
        } ms)`
      )
    })
    console.log(`executed ${runnable.length} examples in ${((performance.now() - execStarted) / 1000).toFixed(1)} s`)
  }

  const failed = examples.filter((e) => e.typeErrors.length > 0 || e.runError !== undefined)
  const sketches = examples.filter((e) => e.sketch).length
  if (warnings.length > 0) {
    console.log(`\n${warnings.length} warnings:`)
    for (const w of warnings) console.log(`  ${w.where}: ${w.message}`)
  }
  if (problems.length > 0) {
    console.log(`\n${problems.length} JSDoc problems:`)
    for (const p of problems) console.log(`  ${p.where}: ${p.message}`)
  }
  if (globalErrors.length > 0) {
    console.log(`\ntype errors outside the examples:`)
    for (const e of globalErrors) console.log(`  ${e}`)
  }
  if (failed.length > 0) {
    console.log(`\n${failed.length} failing examples:`)
    for (const e of failed) {
      console.log(`\n- ${e.source}:${e.jsdocLine} (${e.owner}) -> ${path.relative(root, e.outFile)}`)
      for (const t of e.typeErrors) console.log(`    ${t.split("\n").join("\n    ")}`)
      if (e.runError !== undefined) console.log(`    runtime: ${e.runError.split("\n").join("\n      ")}`)
    }
  }
  const passed = examples.length - failed.length
  console.log(
    `\n${examples.length} examples (${sketches} sketches, type-checked only${
      exec ? "" : "; --no-exec: none executed"
    }), ` +
      `${passed} passed, ${failed.length} failed; ${problems.length} JSDoc problems, ${warnings.length} warnings; ` +
      `${((performance.now() - started) / 1000).toFixed(1)} s`
  )
  return failed.length > 0 || problems.length > 0 || globalErrors.length > 0 ? 1 : 0
}

process.exitCode = await main()
