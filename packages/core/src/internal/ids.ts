/**
 * The ids of a pool's live (queued or running) jobs. Only custom ids are kept; a generated id
 * (`<pool>-<seq>`, made when first asked for) is unique by construction, and checked against custom ids of
 * the same form in the rare case there are any.
 */
import type { JobEntry } from "./entry.ts"

/** @internal */
export class LiveIds {
  readonly name: string
  /** Live jobs with a custom id. */
  readonly custom = new Map<string, JobEntry>()
  /** How many of those have the form of a generated id. */
  customOfGeneratedForm = 0
  /** The last sequence number handed out. */
  seq = 0
  /** Every live job, scanned only to check a custom id of the generated form. */
  readonly liveEntries: () => Iterable<JobEntry>
  constructor(name: string, liveEntries: () => Iterable<JobEntry>) {
    this.name = name
    this.liveEntries = liveEntries
  }

  /** Whether a live job has this id, custom or generated. */
  isLive(id: string): boolean {
    return this.custom.has(id) || this.isLiveGenerated(id)
  }

  /** Gives a job its sequence number; a job without a custom id skips the numbers live custom ids have taken. */
  number(entry: JobEntry): void {
    entry.seq = ++this.seq
    if (entry.options.id === undefined) this.skipTaken(entry)
  }

  /** Moves a job without a custom id past numbers that live custom ids took since it was numbered. */
  skipTaken(entry: JobEntry): void {
    if (this.customOfGeneratedForm === 0) return
    while (this.custom.has(`${this.name}-${entry.seq}`)) entry.seq = ++this.seq
  }

  keep(id: string, entry: JobEntry): void {
    if (this.custom.has(id)) return
    this.custom.set(id, entry)
    if (this.generatedSeq(id) > 0) this.customOfGeneratedForm++
  }

  /** The job that held `id` has ended (a job never accepted holds none, so it takes nothing away). */
  drop(id: string, entry: JobEntry): void {
    if (this.custom.get(id) !== entry) return
    this.custom.delete(id)
    if (this.generatedSeq(id) > 0) this.customOfGeneratedForm--
  }

  /** The sequence number a custom id would have as a generated id (`<pool>-<n>`), or -1. */
  generatedSeq(id: string): number {
    const name = this.name
    if (id.length <= name.length + 1 || !id.startsWith(name) || id.charCodeAt(name.length) !== 45) return -1
    const rest = id.slice(name.length + 1)
    return /^[1-9]\d*$/.test(rest) ? Number(rest) : -1
  }

  /** Whether a custom id is the generated id of a live job (a scan, for ids of that form only). */
  isLiveGenerated(id: string): boolean {
    const seq = this.generatedSeq(id)
    if (seq < 0 || seq > this.seq) return false
    for (const entry of this.liveEntries()) if (entry.seq === seq && entry.options.id === undefined) return true
    return false
  }
}
