/**
 * The benchmark orchestrator: `npm run bench` (from the repository root) or `node bench/run.ts`.
 *
 * Runs fiberpool and its peers side by side in one run: each round goes through every scenario case and,
 * inside a case, runs every peer in turn (the order rotated each round), each cell in a fresh process
 * (`node --expose-gc bench/cell.ts <scenario> <peer> <params>`). It prints a markdown table of medians
 * with min–max and the ratios fiberpool ÷ peer, and writes `results/latest.{json,md}` and `results/chart.svg`.
 *
 * Flags: `--quick` (small N, 2 rounds), `--full` (adds N = 1M), `--rounds N`, `--only <scenario,...>`,
 * `--out <dir>` (where the results go; default `bench/results`), `--baseline <git rev>` (every fiberpool
 * entry also runs against `@fiberpool/core` as it was at that revision, in the same rounds: before/after),
 * `--warm K` (K unmeasured full-size runs in each cell before the measured one: the JIT's steady state).
 */
import { spawnSync } from "node:child_process"
import { mkdirSync, readFileSync, writeFileSync } from "node:fs"
import * as os from "node:os"
import { dirname, join } from "node:path"
import { fileURLToPath } from "node:url"
import type { CellResult } from "./cell.ts"
import { peerNames, scenarioNames } from "./cell.ts"
import type { SchedulingVariant } from "./lib.ts"
import { schedulingVariants } from "./lib.ts"

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, "..")

// ---- Cases ----

/** One column of a case: a peer (a file under `peers/`) with the label it is shown under. */
interface Entry {
  readonly label: string
  readonly peer: string
  readonly params: Record<string, unknown>
  /** A folder with an earlier `@fiberpool/core` (`src/`) that this entry runs against (`--baseline`). */
  readonly baseline?: string | undefined
}

/** One row group of the results: a scenario with fixed parameters, run by every entry. */
interface Case {
  readonly scenario: (typeof scenarioNames)[number]
  readonly label: string
  readonly entries: ReadonlyArray<Entry>
}

/** The entry whose median is the numerator of every ratio of its case. */
const reference = "fiberpool"

// every peer but the ones with a row of their own (`WorkerPool.run`) or no throughput cell (threads)
const throughputPeers = peerNames.filter((peer) => peer !== "fiberpool-run" && peer !== "piscina")

interface Sizes {
  readonly throughputN: ReadonlyArray<number>
  readonly throughputConcurrency: ReadonlyArray<number>
  readonly ioN: number
  readonly ioConcurrency: ReadonlyArray<number>
  readonly memoryN: number
  readonly promiseConcurrency: ReadonlyArray<number>
  readonly promiseModes: ReadonlyArray<"fire" | "await">
  readonly schedulingModes: ReadonlyArray<"fire" | "await">
  readonly schedulingN: number
  readonly schedulingConcurrency: number
}

const defaultSizes: Sizes = {
  throughputN: [100_000],
  throughputConcurrency: [1, 16, 256],
  ioN: 10_000,
  ioConcurrency: [100, 1000],
  memoryN: 1_000_000,
  promiseConcurrency: [16],
  promiseModes: ["fire", "await"],
  schedulingModes: ["fire", "await"],
  schedulingN: 100_000,
  schedulingConcurrency: 16
}

const quickSizes: Sizes = {
  throughputN: [10_000],
  throughputConcurrency: [16],
  ioN: 1_000,
  ioConcurrency: [100],
  memoryN: 50_000,
  promiseConcurrency: [16],
  promiseModes: ["await"],
  schedulingModes: ["fire"],
  schedulingN: 10_000,
  schedulingConcurrency: 16
}

const fullSizes: Sizes = { ...defaultSizes, throughputN: [100_000, 1_000_000] }

/** The I/O scenario leaves out the peers that only change the queue bound or the API of a peer already shown. */
const ioPeers = [
  "fiberpool",
  "fiberpool-run",
  ...throughputPeers.filter((peer) =>
    peer !== "fiberpool" && peer !== "fiberpool-unbounded" && peer !== "fastq-callback"
  )
]

const modeLabel = { fire: "fire-and-forget", await: "submit-and-await" } as const

/** Scenario 5's rows; the plain pool keeps the label `fiberpool`, the reference of every ratio. */
const variantLabel: Record<SchedulingVariant, string> = {
  plain: "fiberpool",
  unused: "fiberpool (options unused)",
  priority: "fiberpool (priorities 0–9)",
  keys: "fiberpool (16 keys, keyConcurrency 2)",
  rate: "fiberpool (rate limit, not binding)",
  events: "fiberpool (metrics + events)"
}

const formatN = (n: number) => n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1_000 ? `${n / 1_000}k` : `${n}`

const buildCases = (sizes: Sizes): Array<Case> => {
  const cases: Array<Case> = []
  for (const n of sizes.throughputN) {
    for (const mode of ["fire", "await"] as const) {
      for (const concurrency of sizes.throughputConcurrency) {
        const params = { n, concurrency, mode }
        const peers = mode === "await"
          ? [...throughputPeers.slice(0, 1), "fiberpool-run", ...throughputPeers.slice(1)]
          : throughputPeers
        cases.push({
          scenario: "throughput",
          label: `${modeLabel[mode]}, c=${concurrency}, N=${formatN(n)}`,
          entries: peers.map((peer) => ({ label: peer, peer, params }))
        })
      }
    }
  }
  for (const mode of sizes.promiseModes) {
    for (const concurrency of sizes.promiseConcurrency) {
      const params = { n: sizes.throughputN[0]!, concurrency, mode }
      cases.push({
        scenario: "promise",
        label: `${modeLabel[mode]}, c=${concurrency}, N=${formatN(params.n)}`,
        entries: [
          "fiberpool",
          "fiberpool-unbounded",
          "fiberpool-promise",
          "fastq",
          "effect-foreach",
          "effect-pool",
          "plain-loop"
        ].map((
          peer
        ) => ({ label: peer, peer, params }))
      })
    }
  }
  for (const concurrency of sizes.ioConcurrency) {
    const params = { n: sizes.ioN, concurrency, sleepMs: 1 }
    cases.push({
      scenario: "io",
      label: `${formatN(sizes.ioN)} × 1 ms, c=${concurrency}`,
      entries: ioPeers.map((peer) => ({
        label: peer,
        peer,
        params
      }))
    })
  }
  const memory = { n: sizes.memoryN, handles: false }
  cases.push({
    scenario: "memory",
    label: `${formatN(sizes.memoryN)} queued, c=1`,
    entries: [
      { label: "fiberpool", peer: "fiberpool", params: memory },
      { label: "fiberpool (handles)", peer: "fiberpool", params: { ...memory, handles: true } },
      { label: "p-queue-unbounded", peer: "p-queue-unbounded", params: memory },
      { label: "fastq", peer: "fastq", params: memory },
      { label: "fastq-callback", peer: "fastq-callback", params: memory }
    ]
  })
  for (const mode of ["graceful", "forced"] as const) {
    const params = { jobs: 100, jobMs: 200, mode }
    cases.push({
      scenario: "shutdown",
      label: `${mode}, 100 × 200 ms in flight`,
      entries: ["fiberpool", "p-queue-unbounded", "effect-foreach", "effect-pool", "piscina"].map((peer) => ({
        label: peer,
        peer,
        params
      }))
    })
  }
  for (const mode of sizes.schedulingModes) {
    const base = { n: sizes.schedulingN, concurrency: sizes.schedulingConcurrency, mode }
    cases.push({
      scenario: "scheduling",
      label: `${modeLabel[mode]}, c=${base.concurrency}, N=${formatN(base.n)}`,
      entries: [
        ...schedulingVariants.map((variant) => ({
          label: variantLabel[variant],
          peer: "fiberpool",
          params: { ...base, variant }
        })),
        { label: "effect-pool", peer: "effect-pool", params: { ...base, variant: "plain" } }
      ]
    })
  }
  return cases
}

// ---- Arguments ----

interface Args {
  readonly quick: boolean
  readonly full: boolean
  readonly rounds: number
  readonly only: string | undefined
  readonly out: string
  readonly baseline: string | undefined
  readonly peers: ReadonlyArray<string> | undefined
  readonly warm: number
}

const parseArgs = (argv: ReadonlyArray<string>): Args => {
  let quick = false
  let full = false
  let rounds: number | undefined
  let only: string | undefined
  let out = join(here, "results")
  let baseline: string | undefined
  let peers: ReadonlyArray<string> | undefined
  let warm = 0
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === "--quick") quick = true
    else if (arg === "--full") full = true
    else if (arg === "--rounds") rounds = Number(argv[++i])
    else if (arg === "--only") only = argv[++i]
    else if (arg === "--out") out = argv[++i] ?? out
    else if (arg === "--baseline") baseline = argv[++i]
    else if (arg === "--peers") peers = (argv[++i] ?? "").split(",")
    else if (arg === "--warm") warm = Number(argv[++i])
    else {
      throw new Error(
        `unknown argument ${arg} (flags: --quick, --full, --rounds N, --only <scenario>, --out <dir>, --baseline <rev>, --peers a,b, --warm K)`
      )
    }
  }
  if (rounds !== undefined && (!Number.isSafeInteger(rounds) || rounds < 1)) {
    throw new Error("--rounds takes a positive integer")
  }
  if (only !== undefined && !only.split(",").every((o) => (scenarioNames as ReadonlyArray<string>).includes(o))) {
    throw new Error(`--only takes one or more (comma-separated) of ${scenarioNames.join(", ")}`)
  }
  if (!Number.isSafeInteger(warm) || warm < 0) throw new Error("--warm takes a whole number of runs")
  if (quick && full) throw new Error("--quick and --full exclude each other")
  if (baseline !== undefined && !/^[\w./~^-]+$/.test(baseline)) throw new Error("--baseline takes a git revision")
  return { quick, full, rounds: rounds ?? (quick ? 2 : 10), only, out, baseline, peers, warm }
}

// ---- Running ----

interface Sample {
  readonly caseIndex: number
  readonly label: string
  readonly round: number
  readonly result: CellResult | undefined
  readonly error: string | undefined
}

const runCell = (entry: Entry, scenario: string, warm: number): { result?: CellResult; error?: string } => {
  const child = spawnSync(
    process.execPath,
    [
      ...(entry.baseline === undefined ? [] : ["--import", join(here, "baseline-hook.ts")]),
      "--expose-gc",
      "--max-old-space-size=4096",
      join(here, "cell.ts"),
      scenario,
      entry.peer,
      JSON.stringify(entry.params)
    ],
    {
      encoding: "utf8",
      timeout: 180_000,
      maxBuffer: 16 * 2 ** 20,
      env: {
        ...process.env,
        FIBERPOOL_BENCH_WARM: String(warm),
        ...(entry.baseline === undefined ? {} : { FIBERPOOL_BASELINE_CORE: entry.baseline })
      }
    }
  )
  const line = child.stdout.trim().split("\n").pop() ?? ""
  if (child.status !== 0 || line === "") {
    const reason = child.error?.message ?? child.stderr.trim().split("\n").slice(0, 3).join(" | ")
    return { error: `exit ${child.status ?? child.signal}: ${reason}` }
  }
  return { result: JSON.parse(line) as CellResult }
}

/** Rotates the entries by `round`, so that no peer always runs first (or last) in its case. */
const rotate = <A>(items: ReadonlyArray<A>, round: number): Array<A> => {
  const k = round % items.length
  return [...items.slice(k), ...items.slice(0, k)]
}

// ---- Statistics and output ----

interface Summary {
  readonly label: string
  readonly samples: number
  readonly failures: ReadonlyArray<string>
  readonly median: number | undefined
  readonly min: number | undefined
  readonly max: number | undefined
  readonly unit: string | undefined
  /**
   * fiberpool ÷ this peer; in scenario 5, where every row but effect-pool is a fiberpool variant, the other
   * way round: this variant ÷ plain fiberpool (the cost of the option).
   */
  readonly ratio: number | undefined
  /** Scenario 5 only: this row ÷ the hand-rolled Effect pool. */
  readonly vsEffectPool: number | undefined
  readonly detail: string
}

interface CaseSummary {
  readonly scenario: string
  readonly label: string
  readonly rows: ReadonlyArray<Summary>
}

const median = (values: ReadonlyArray<number>): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

const fmt = (value: number | undefined): string => {
  if (value === undefined) return "–"
  const abs = Math.abs(value)
  if (abs >= 100) return value.toFixed(0)
  if (abs >= 10) return value.toFixed(1)
  return value.toFixed(2)
}

const detailOf = (scenario: string, results: ReadonlyArray<CellResult>): string => {
  if (results.length === 0) return ""
  const med = (key: string) => median(results.map((r) => Number(r.detail[key])))
  switch (scenario) {
    case "throughput":
    case "promise":
    case "scheduling":
      return `${fmt(1e6 / med("jobsPerSecond"))} µs/job`
    case "io":
      return `${fmt(med("ms"))} ms (ideal ${fmt(med("idealMs"))} ms)`
    case "memory":
      return `RSS ${fmt(med("rssMB"))} MB`
    default:
      return `shutdown call ${fmt(med("shutdownMs"))} ms, finalizers ${results[0]!.detail["finalizers"]}`
  }
}

const summarize = (cases: ReadonlyArray<Case>, samples: ReadonlyArray<Sample>): Array<CaseSummary> =>
  cases.map((c, caseIndex) => {
    const rows = c.entries.map((entry) => {
      const mine = samples.filter((s) => s.caseIndex === caseIndex && s.label === entry.label)
      const results = mine.flatMap((s) => s.result === undefined ? [] : [s.result])
      const values = results.map((r) => r.value)
      return {
        label: entry.label,
        samples: values.length,
        failures: mine.flatMap((s) => s.error === undefined ? [] : [s.error]),
        median: values.length === 0 ? undefined : median(values),
        min: values.length === 0 ? undefined : Math.min(...values),
        max: values.length === 0 ? undefined : Math.max(...values),
        unit: results[0]?.unit,
        detail: detailOf(c.scenario, results)
      }
    })
    const ref = rows.find((row) => row.label === reference)?.median
    const divide = (a: number | undefined, b: number | undefined) =>
      a === undefined || b === undefined || b === 0 ? undefined : a / b
    if (c.scenario === "scheduling") {
      const handRolled = rows.find((row) => row.label === "effect-pool")?.median
      return {
        scenario: c.scenario,
        label: c.label,
        rows: rows.map((row) => ({
          ...row,
          ratio: row.label === "effect-pool" ? undefined : divide(row.median, ref),
          vsEffectPool: divide(row.median, handRolled)
        }))
      }
    }
    return {
      scenario: c.scenario,
      label: c.label,
      rows: rows.map((row) => ({ ...row, ratio: divide(ref, row.median), vsEffectPool: undefined }))
    }
  })

const scenarioTitles: Record<string, string> = {
  throughput: "1. Throughput of trivial jobs (ms for N jobs)",
  promise: "1b. Jobs awaiting a promise (ms for N jobs)",
  io: "2. I/O-shaped jobs (wall time ÷ ideal N / c × 1 ms)",
  memory: "3. Memory per queued job (heap after GC ÷ N, bytes)",
  shutdown: "4. Shutdown latency (ms beyond the ideal: graceful 200 ms, forced 0 ms)",
  scheduling: "5. Cost of the scheduling options (ms for N trivial jobs, capacity 100)"
}

const renderTables = (summaries: ReadonlyArray<CaseSummary>): string => {
  const lines: Array<string> = []
  for (const scenario of scenarioNames) {
    const mine = summaries.filter((s) => s.scenario === scenario)
    if (mine.length === 0) continue
    lines.push(`### ${scenarioTitles[scenario]}`, "")
    if (scenario === "scheduling") {
      lines.push(renderScheduling(mine), "")
      continue
    }
    lines.push("| case | peer | median | min–max | ratio fiberpool ÷ peer | detail |")
    lines.push("| --- | --- | ---: | ---: | ---: | --- |")
    for (const c of mine) {
      for (const row of c.rows) {
        const failed = row.failures.length > 0 ? ` **${row.failures.length} failed**` : ""
        lines.push(
          `| ${c.label} | ${row.label} | ${fmt(row.median)} | ${fmt(row.min)}–${fmt(row.max)} | ${
            row.label === reference ? "1 (reference)" : fmt(row.ratio)
          } | ${row.detail}${failed} |`
        )
      }
    }
    lines.push("")
  }
  return lines.join("\n")
}

/** Scenario 5: each variant ÷ plain fiberpool (the option's cost) and ÷ the hand-rolled Effect pool. */
const renderScheduling = (cases: ReadonlyArray<CaseSummary>): string => {
  const lines = [
    "| case | pool | median | min–max | ÷ fiberpool (no options) | ÷ effect-pool | detail |",
    "| --- | --- | ---: | ---: | ---: | ---: | --- |"
  ]
  for (const c of cases) {
    for (const row of c.rows) {
      const failed = row.failures.length > 0 ? ` **${row.failures.length} failed**` : ""
      lines.push(
        `| ${c.label} | ${row.label} | ${fmt(row.median)} | ${fmt(row.min)}–${fmt(row.max)} | ${
          row.label === reference ? "1 (reference)" : fmt(row.ratio)
        } | ${row.label === "effect-pool" ? "1 (reference)" : fmt(row.vsEffectPool)} | ${row.detail}${failed} |`
      )
    }
  }
  return lines.join("\n")
}

/** One line per case, one column per peer: the ratios only, fastq-README style (scenario 5 has its own). */
const renderRatioMatrix = (all: ReadonlyArray<CaseSummary>): string => {
  const summaries = all.filter((s) => s.scenario !== "scheduling")
  const labels = [...new Set(summaries.flatMap((s) => s.rows.map((row) => row.label)))].filter((p) => p !== reference)
  // fiberpool's own variants first, then the peers
  const peers = [...labels.filter((p) => p.startsWith(reference)), ...labels.filter((p) => !p.startsWith(reference))]
  const lines = [
    `| case | ${peers.join(" | ")} |`,
    `| --- | ${peers.map(() => "---:").join(" | ")} |`
  ]
  for (const s of summaries) {
    const cells = peers.map((p) => {
      const row = s.rows.find((r) => r.label === p)
      return row === undefined ? "" : fmt(row.ratio)
    })
    lines.push(`| ${s.scenario}: ${s.label} | ${cells.join(" | ")} |`)
  }
  return lines.join("\n")
}

const escapeXml = (text: string) => text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;")

/** A horizontal bar per (case, peer) on a log scale centred on 1: left of 1, fiberpool used less. */
const renderChart = (summaries: ReadonlyArray<CaseSummary>, title: string): string => {
  const rows: Array<{ readonly text: string; readonly ratio: number } | { readonly heading: string }> = []
  for (const s of summaries) {
    if (s.scenario === "scheduling") {
      // the bars are the options' cost (variant ÷ plain fiberpool), then two rows against the hand-rolled pool
      rows.push({ heading: `scheduling: ${s.label} (row ÷ fiberpool without options)` })
      for (const row of s.rows) {
        if (row.label !== reference && row.ratio !== undefined) rows.push({ text: row.label, ratio: row.ratio })
      }
      for (const row of s.rows) {
        if ((row.label === reference || row.label === variantLabel.events) && row.vsEffectPool !== undefined) {
          rows.push({ text: `${row.label} ÷ effect-pool`, ratio: row.vsEffectPool })
        }
      }
      continue
    }
    rows.push({ heading: `${s.scenario}: ${s.label}` })
    for (const row of s.rows) {
      if (row.label !== reference && row.ratio !== undefined) rows.push({ text: row.label, ratio: row.ratio })
    }
  }
  const ratios = rows.flatMap((r) => "ratio" in r ? [r.ratio] : [])
  const span = Math.max(2, ...ratios.map((r) => Math.ceil(Math.abs(Math.log2(r)))))
  const labelWidth = 270
  const plotWidth = 560
  const rowHeight = 16
  const top = 56
  const width = labelWidth + plotWidth + 70
  const height = top + rows.length * rowHeight + 30
  const x = (ratio: number) => labelWidth + ((Math.log2(ratio) + span) / (2 * span)) * plotWidth
  const out: Array<string> = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="10" y="18" font-size="14" font-weight="bold">${escapeXml(title)}</text>`,
    `<text x="10" y="36" fill="#555">ratio fiberpool ÷ peer (median), log scale; &lt; 1 (green): fiberpool lower, i.e. better; &gt; 1 (red): the peer is better</text>`
  ]
  for (let k = -span; k <= span; k++) {
    const gx = x(2 ** k)
    out.push(
      `<line x1="${gx}" y1="${top - 6}" x2="${gx}" y2="${height - 24}" stroke="${k === 0 ? "#000" : "#ddd"}"/>`,
      `<text x="${gx}" y="${height - 10}" text-anchor="middle" fill="#555">${k < 0 ? `1/${2 ** -k}` : 2 ** k}</text>`
    )
  }
  rows.forEach((row, i) => {
    const y = top + i * rowHeight
    if ("heading" in row) {
      out.push(`<text x="10" y="${y + 11}" font-weight="bold">${escapeXml(row.heading)}</text>`)
      return
    }
    const x1 = x(1)
    const clamped = Math.min(Math.max(row.ratio, 2 ** -span), 2 ** span)
    const x2 = x(clamped)
    const color = row.ratio <= 1 ? "#2e7d32" : "#c62828"
    out.push(
      `<text x="${labelWidth - 6}" y="${y + 11}" text-anchor="end">${escapeXml(row.text)}</text>`,
      `<rect x="${Math.min(x1, x2)}" y="${y + 2}" width="${Math.max(1, Math.abs(x2 - x1))}" height="${
        rowHeight - 4
      }" fill="${color}"/>`,
      `<text x="${Math.max(x1, x2) + 4}" y="${y + 11}">${fmt(row.ratio)}</text>`
    )
  })
  out.push("</svg>")
  return out.join("\n") + "\n"
}

const version = (name: string): string => {
  try {
    return (JSON.parse(readFileSync(join(root, "node_modules", name, "package.json"), "utf8")) as { version: string })
      .version
  } catch {
    return "?"
  }
}

const loadAverage = (): string => os.loadavg().map((load) => load.toFixed(2)).join(", ")

const environment = () => ({
  node: process.version,
  platform: `${os.platform()} ${os.arch()}`,
  cpu: os.cpus()[0]?.model ?? "unknown",
  cores: os.availableParallelism(),
  memoryGB: Math.round(os.totalmem() / 2 ** 30),
  packages: Object.fromEntries(
    ["@fiberpool/core", "effect", "fastq", "p-queue", "p-limit", "piscina"].map((name) => [name, version(name)])
  )
})

// ---- Before/after ----

/** Extracts `packages/core` as it was at `rev` (git archive) under `bench/.baseline/<rev>/`; returns its folder. */
const extractBaseline = (rev: string): string => {
  const dir = join(here, ".baseline", rev.replace(/[^\w.-]/g, "_"))
  mkdirSync(dir, { recursive: true })
  const archive = spawnSync("git", ["-C", root, "archive", "--format=tar", rev, "packages/core/src"], {
    maxBuffer: 64 * 2 ** 20
  })
  if (archive.status !== 0) throw new Error(`git archive ${rev}: ${archive.stderr.toString().trim()}`)
  const untar = spawnSync("tar", ["-x", "-C", dir], { input: archive.stdout })
  if (untar.status !== 0) throw new Error(`tar: ${untar.stderr.toString().trim()}`)
  return join(dir, "packages", "core")
}

/** Beside every fiberpool entry, the same entry on the baseline's core, labelled `<label> @<rev>`. */
const withBaseline = (cases: ReadonlyArray<Case>, rev: string, dir: string): Array<Case> =>
  cases.map((c) => ({
    ...c,
    entries: c.entries.flatMap((entry) =>
      entry.peer.startsWith("fiberpool")
        ? [entry, { ...entry, label: `${entry.label} @${rev}`, baseline: dir }]
        : [entry]
    )
  }))

// ---- Main ----

const main = (): number => {
  const args = parseArgs(process.argv.slice(2))
  const sizes = args.quick ? quickSizes : args.full ? fullSizes : defaultSizes
  const built = buildCases(sizes)
    .filter((c) => args.only === undefined || args.only.split(",").includes(c.scenario))
    .map((c) => args.peers === undefined ? c : { ...c, entries: c.entries.filter((e) => args.peers!.includes(e.peer)) })
    .filter((c) => c.entries.length > 0)
  const cases = args.baseline === undefined
    ? built
    : withBaseline(built, args.baseline, extractBaseline(args.baseline))
  const env = environment()
  const envLines = [
    `- node ${env.node}, ${env.platform}, ${env.cpu}, ${env.cores} cores, ${env.memoryGB} GB`,
    `- ${Object.entries(env.packages).map(([name, v]) => `${name} ${v}`).join(", ")}`,
    `- ${args.rounds} rounds${
      args.quick ? " (--quick)" : args.full ? " (--full)" : ""
    }; every cell a fresh process; peers interleaved, order rotated each round`,
    args.warm > 0
      ? `- warm-up: a small run, then ${args.warm} full-size run(s) of the same cell before the measured one, no forced GC (\`--warm ${args.warm}\`)`
      : "- warm-up: a small run of the same cell (5k jobs; 2 × c for I/O), then a forced GC, before the measured one",
    `- load average (1, 5, 15 min) at the start: ${loadAverage()}`
  ]
  console.log("## Environment\n")
  console.log(envLines.join("\n") + "\n")
  const cells = cases.reduce((total, c) => total + c.entries.length, 0) * args.rounds
  console.log(`running ${cells} cells (${cases.length} cases × ${args.rounds} rounds)\n`)

  const started = performance.now()
  const samples: Array<Sample> = []
  for (let round = 0; round < args.rounds; round++) {
    const roundStart = performance.now()
    cases.forEach((c, caseIndex) => {
      for (const entry of rotate(c.entries, round)) {
        const { error, result } = runCell(entry, c.scenario, args.warm)
        samples.push({ caseIndex, label: entry.label, round, result, error })
        if (error !== undefined) console.error(`FAILED ${c.scenario} ${c.label} ${entry.label}: ${error}`)
      }
    })
    console.log(`round ${round + 1}/${args.rounds} done in ${((performance.now() - roundStart) / 1000).toFixed(1)} s`)
  }
  const seconds = (performance.now() - started) / 1000
  envLines.push(`- load average at the end: ${loadAverage()}; ${seconds.toFixed(0)} s in all`)

  const summaries = summarize(cases, samples)
  const tables = renderTables(summaries)
  const matrix = renderRatioMatrix(summaries)
  const how = "Lower is better everywhere; a ratio below 1 means fiberpool used less (time, memory) than that peer."
  console.log(`\n## Results (${seconds.toFixed(0)} s)\n\n${how}\n\n${tables}`)
  console.log(`### Ratio summary (fiberpool ÷ peer, medians)\n\n${matrix}\n`)

  mkdirSync(args.out, { recursive: true })
  writeFileSync(
    join(args.out, "latest.json"),
    JSON.stringify({ environment: env, args, seconds, summaries, samples }, null, 2) + "\n"
  )
  writeFileSync(
    join(args.out, "latest.md"),
    `## Environment\n\n${
      envLines.join("\n")
    }\n\n## Results\n\n${how}\n\n${tables}\n### Ratio summary (fiberpool ÷ peer, medians)\n\n${matrix}\n`
  )
  writeFileSync(
    join(args.out, "chart.svg"),
    renderChart(summaries, `fiberpool vs peers: node ${env.node}, ${env.cores} cores, ${args.rounds} rounds`)
  )
  console.log(`wrote ${join(args.out, "latest.json")}, latest.md and chart.svg`)

  const failures = samples.filter((s) => s.error !== undefined)
  if (failures.length > 0) {
    console.error(`${failures.length} cell(s) failed their correctness check or crashed`)
    return 1
  }
  return 0
}

process.exitCode = main()
