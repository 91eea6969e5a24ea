/**
 * The state of a running shutdown, and the report's lists of what became of each job live when it began.
 */
import type * as Deferred from "effect/Deferred"
import type * as Shutdown from "../Shutdown.ts"
import { JobEntry } from "./entry.ts"
import { type Fate, fates as fateNames } from "./outcome.ts"

/** @internal */
export type FateName = Fate

/**
 * Each fate's jobs: single jobs, and whole queues cancelled at once, kept as they were taken out (an array,
 * or the FIFO queue's chain of entries linked by `next`).
 */
export type Fates = Record<FateName, Array<JobEntry | ReadonlyArray<JobEntry> | Chain>>

/** A FIFO queue taken out whole: its first entry, the rest linked by `next`. */
export interface Chain {
  readonly head: JobEntry | undefined
  readonly size: number
}

/**
 * The report's `jobs`: each list of ids is made when first read, so that a shutdown that cancels a million
 * queued jobs does not build a million id strings nobody may look at.
 */
export const fatesReport = (fates: Fates): Shutdown.JobFates => {
  const report = {} as Record<FateName, ReadonlyArray<string>>
  for (const name of fateNames) {
    let ids: Array<string> | undefined
    Object.defineProperty(report, name, {
      enumerable: true,
      get: () => {
        if (ids !== undefined) return ids
        ids = []
        for (const item of fates[name]) {
          if (item instanceof JobEntry) ids.push(item.id)
          else if ("head" in item) {
            for (let entry = item.head; entry !== undefined; entry = entry.next) ids.push(entry.id)
          } else for (let i = 0; i < item.length; i++) ids.push(item[i].id)
        }
        return ids
      }
    })
  }
  return report
}

export const emptyFates = (): Fates => {
  const fates = {} as Fates
  for (const name of fateNames) fates[name] = []
  return fates
}

export interface ShutdownState {
  readonly startedAt: number
  /** Becomes `"cancel"` when a later call (a second signal) escalates a drain. */
  mode: Shutdown.Mode
  /** The jobs live when shutdown began, by how they ended (no job is accepted after): the report's `jobs`. */
  readonly fates: Fates
  readonly force: Deferred.Deferred<void>
  readonly report: Deferred.Deferred<Shutdown.Report>
  interruptTimeoutMillis: number
  shorten: Deferred.Deferred<void> | undefined
  /** The running jobs have been interrupted (at once, when there was no grace period). */
  interrupted: boolean
}

/**
 * The pool's lifecycle: open; draining (shutdown has begun: intake is closed, the report is being made); closed
 * (the report is done).
 * @internal
 */
export type Lifecycle =
  | { readonly _tag: "Open" }
  | { readonly _tag: "Draining"; readonly shutdown: ShutdownState }
  | { readonly _tag: "Closed"; readonly shutdown: ShutdownState; readonly report: Shutdown.Report }

/** @internal */
export const open: Lifecycle = { _tag: "Open" }
