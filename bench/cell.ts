/**
 * One benchmark cell, run in a fresh process by `run.ts`:
 * `node --expose-gc bench/cell.ts <scenario> <peer> <params as JSON>`.
 * Prints one JSON line with the measurement and exits 0, or prints the reason and exits 1 when a job was
 * lost, repeated or answered wrong, so that a broken run never looks fast.
 */
import type { IoParams, MemoryParams, Peer, ShutdownParams, ThroughputParams } from "./lib.ts"
import { now, Tracker } from "./lib.ts"

/** Every peer, by the file name under `peers/`. */
export const peerNames = [
  "fiberpool",
  "fiberpool-run",
  "fiberpool-unbounded",
  "fiberpool-promise",
  "fastq",
  "fastq-callback",
  "p-queue-bounded",
  "p-queue-unbounded",
  "p-limit",
  "effect-foreach",
  "effect-pool",
  "plain-loop",
  "piscina"
] as const

/** The scenarios: the operation of `Peer` each one calls. */
export const scenarioNames = ["throughput", "promise", "io", "memory", "shutdown", "scheduling"] as const

/** What a cell prints: `value` is the scenario's headline number (see `unit`), the rest is detail. */
export interface CellResult {
  readonly scenario: string
  readonly peer: string
  readonly params: Record<string, unknown>
  readonly value: number
  readonly unit: string
  readonly detail: Record<string, number | string | null>
}

const gc = (): void => {
  const collect = (globalThis as { gc?: () => void }).gc
  if (collect === undefined) throw new Error("run the cell with node --expose-gc")
  collect()
  collect()
}

/**
 * `run.ts --warm K`: before the measured run, K more full-size runs of the same cell (checked), so that the
 * measurement is of code the JIT has optimized (a long-running service's steady state). 0 by default: the
 * measurement then includes the JIT's tier-up, which costs more the more code a peer runs per job.
 */
export const fullWarmRuns = (): number => {
  const runs = Number(process.env.FIBERPOOL_BENCH_WARM ?? 0)
  return Number.isSafeInteger(runs) && runs > 0 ? runs : 0
}

/**
 * Warms the JIT on a smaller run of the same shape (checked), plus `fullWarmRuns()` full-size ones, then times
 * a fresh run of `params.n` jobs: after a forced garbage collection by default, as it is with `--warm`.
 */
const warmThenMeasure = async <P extends { readonly n: number }>(
  run: (params: P, tracker: Tracker) => Promise<number | undefined>,
  params: P,
  warmN: number
) => {
  const warm = new Tracker(warmN)
  warm.verify(await run({ ...params, n: warmN }, warm))
  const warmRuns = fullWarmRuns()
  for (let i = warmRuns; i > 0; i--) {
    const full = new Tracker(params.n)
    full.verify(await run(params, full))
  }
  // a forced full collection resets what the warm runs built up (it halved the speed of every peer's next run,
  // fiberpool's and Effect.forEach's alike): the steady state is measured as the process is
  if (warmRuns === 0) gc()
  const tracker = new Tracker(params.n)
  const start = now()
  const sum = await run(params, tracker)
  return { ms: now() - start, sum, tracker }
}

/** Scenarios 1, 1b and 5: the same measurement, through `peer.throughput`, `peer.promise` or `peer.scheduling`. */
const throughput = async <P extends ThroughputParams>(
  run: (params: P, tracker: Tracker) => Promise<number | undefined>,
  params: P
) => {
  const { ms, sum, tracker } = await warmThenMeasure(run, params, Math.min(params.n, 5_000))
  tracker.verify(params.mode === "await" ? sum : undefined)
  if (params.mode === "await" && sum === undefined) throw new Error("no results in submit-and-await mode")
  return { value: ms, unit: "ms", detail: { jobsPerSecond: Math.round(params.n / (ms / 1000)) } }
}

const io = async (peer: Peer, params: IoParams) => {
  const { ms, sum, tracker } = await warmThenMeasure(peer.io!, params, Math.min(params.n, params.concurrency * 2))
  tracker.verify(sum)
  const idealMs = (params.n / params.concurrency) * params.sleepMs
  return { value: ms / idealMs, unit: "× ideal", detail: { ms, idealMs } }
}

const memory = async (peer: Peer, params: MemoryParams) => {
  gc()
  const baseline = process.memoryUsage()
  let queued: NodeJS.MemoryUsage | undefined
  const tracker = new Tracker(params.n)
  await peer.memory!(params, tracker, () => {
    gc()
    queued = process.memoryUsage()
  })
  if (queued === undefined) throw new Error("the peer never measured")
  tracker.verify(undefined)
  const bytesPerJob = (queued.heapUsed - baseline.heapUsed) / params.n
  return {
    value: bytesPerJob,
    unit: "bytes/job",
    detail: {
      heapMB: queued.heapUsed / 2 ** 20,
      rssMB: queued.rss / 2 ** 20,
      rssPerJob: (queued.rss - baseline.rss) / params.n
    }
  }
}

const shutdown = async (peer: Peer, params: ShutdownParams) => {
  // with --warm, the same shutdown runs (unmeasured) before the measured one
  for (let i = fullWarmRuns(); i > 0; i--) await peer.shutdown!(params, new Tracker(params.jobs))
  const tracker = new Tracker(params.jobs)
  const outcome = await peer.shutdown!(params, tracker)
  if (params.mode === "graceful") {
    if (outcome.completed !== params.jobs) throw new Error(`${outcome.completed} of ${params.jobs} jobs completed`)
    tracker.verify(undefined)
  } else if (outcome.completed !== 0) {
    throw new Error(`${outcome.completed} jobs completed despite the forced shutdown`)
  }
  if (outcome.finalized !== undefined && outcome.finalized !== params.jobs) {
    throw new Error(`${outcome.finalized} of ${params.jobs} finalizers ran`)
  }
  // graceful: time beyond the ideal (the jobs' own duration); forced: the ideal is an immediate stop
  const overhead = params.mode === "graceful" ? outcome.totalMs - params.jobMs : outcome.shutdownMs
  return {
    value: overhead,
    unit: "ms overhead",
    detail: {
      shutdownMs: outcome.shutdownMs,
      totalMs: outcome.totalMs,
      finalizers: outcome.finalized === undefined ? "n/a" : `${outcome.finalized}/${params.jobs}`
    }
  }
}

const main = async (): Promise<CellResult> => {
  const [scenario, peerName, json] = process.argv.slice(2)
  if (!(scenarioNames as ReadonlyArray<string>).includes(scenario ?? "")) {
    throw new Error(`unknown scenario ${scenario}`)
  }
  if (!(peerNames as ReadonlyArray<string>).includes(peerName ?? "")) throw new Error(`unknown peer ${peerName}`)
  const params = JSON.parse(json ?? "{}")
  const { peer } = (await import(`./peers/${peerName}.ts`)) as { peer: Peer }
  if (peer[scenario as keyof Peer] === undefined) throw new Error(`${peerName} has no ${scenario} cell`)
  const measured = scenario === "throughput"
    ? await throughput(peer.throughput!, params)
    : scenario === "promise"
    ? await throughput(peer.promise!, params)
    : scenario === "scheduling"
    ? await throughput(peer.scheduling!, params)
    : scenario === "io"
    ? await io(peer, params)
    : scenario === "memory"
    ? await memory(peer, params)
    : await shutdown(peer, params)
  return { scenario: scenario!, peer: peerName!, params, ...measured }
}

if (import.meta.main) {
  main().then(
    (result) => {
      process.stdout.write(JSON.stringify(result) + "\n")
      process.exit(0)
    },
    (error: unknown) => {
      process.stderr.write(`cell failed: ${error instanceof Error ? error.stack : String(error)}\n`)
      process.exit(1)
    }
  )
}
