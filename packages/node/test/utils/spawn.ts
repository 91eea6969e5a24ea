// Runs a TypeScript program in a child Node process (the same Node 24 binary as the tests) and watches it.
import { type ChildProcess, spawn } from "node:child_process"

export interface Running {
  readonly child: ChildProcess
  /** Every stdout and stderr line so far, in arrival order. */
  readonly lines: Array<string>
  /** Resolves with the first line matching `pattern`; rejects after `timeoutMs` or when the process exits. */
  readonly waitForLine: (pattern: RegExp, timeoutMs?: number) => Promise<string>
  /** Resolves when the process exits, with its code and the time of exit (performance.now()). */
  readonly exited: Promise<{ readonly code: number | null; readonly signal: string | null; readonly at: number }>
}

export const run = (
  file: string,
  args: ReadonlyArray<string> = [],
  cwd?: string,
  env?: Readonly<Record<string, string>>
): Running =>
  runCommand(process.execPath, [file, ...args], {
    cwd,
    env: env === undefined ? process.env : { ...process.env, ...env }
  })

/** Like {@link run}, for any command; `detached` gives the child its own process group (as a terminal job). */
export const runCommand = (
  command: string,
  args: ReadonlyArray<string>,
  options: { readonly cwd?: string | undefined; readonly env?: NodeJS.ProcessEnv; readonly detached?: boolean } = {}
): Running => {
  const child = spawn(command, args, {
    cwd: options.cwd,
    env: options.env ?? process.env,
    detached: options.detached ?? false,
    stdio: ["ignore", "pipe", "pipe"]
  })
  const lines: Array<string> = []
  const watchers = new Set<() => void>()
  const collect = (stream: NodeJS.ReadableStream) => {
    let buffer = ""
    stream.setEncoding("utf8")
    stream.on("data", (chunk: string) => {
      buffer += chunk
      const parts = buffer.split("\n")
      buffer = parts.pop() ?? ""
      lines.push(...parts)
      for (const watcher of [...watchers]) watcher()
    })
  }
  collect(child.stdout!)
  collect(child.stderr!)
  const exited = new Promise<{ code: number | null; signal: string | null; at: number }>((resolve) => {
    child.on("exit", (code, signal) => {
      const at = performance.now()
      // Let the last output arrive before reporting the exit.
      setImmediate(() => {
        for (const watcher of [...watchers]) watcher()
        resolve({ code, signal, at })
      })
    })
  })
  let done = false
  void exited.then(() => (done = true))
  const waitForLine = (pattern: RegExp, timeoutMs = 20_000) =>
    new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`no line matching ${pattern} within ${timeoutMs} ms`)), timeoutMs)
      const finish = (error?: Error, line?: string) => {
        clearTimeout(timer)
        watchers.delete(check)
        if (error) reject(new Error(`${error.message}\n--- output ---\n${lines.join("\n")}`))
        else resolve(line!)
      }
      const check = () => {
        const line = lines.find((l) => pattern.test(l))
        if (line !== undefined) finish(undefined, line)
        else if (done) finish(new Error(`process exited before a line matching ${pattern}`))
      }
      watchers.add(check)
      check()
    })
  return { child, lines, waitForLine, exited }
}

/** Waits for the exit, killing the process (and failing) if it takes longer than `timeoutMs`. */
export const exitWithin = async (running: Running, timeoutMs: number) => {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      running.child.kill("SIGKILL")
      reject(new Error(`process still running after ${timeoutMs} ms\n--- output ---\n${running.lines.join("\n")}`))
    }, timeoutMs)
  })
  try {
    return await Promise.race([running.exited, timeout])
  } finally {
    clearTimeout(timer)
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms))
