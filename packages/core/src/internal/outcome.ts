/**
 * The table of a job's terminal outcomes: for each terminal status, its event, the lifetime counter it bumps,
 * whether it sends a dead letter, and the shutdown report's list it joins. The public lists (`Job.Status`,
 * `JobEvent.Kind`, `Shutdown.JobFates`, the counters of `Shutdown.Totals`) derive from it, and the pool reads
 * it where a job ends, so no list of terminal states is written out twice.
 *
 * A leaf module: it imports nothing, so the public modules can derive their types from it without a circle.
 */

/** @internal */
export const outcomes = {
  succeeded: { event: "Succeeded", counter: "succeeded", deadLetter: false, fate: "succeeded" },
  failed: { event: "Failed", counter: "failed", deadLetter: true, fate: "failed" },
  timedOut: { event: "TimedOut", counter: "timedOut", deadLetter: true, fate: "timedOut" },
  cancelled: { event: "Cancelled", counter: "cancelled", deadLetter: false, fate: "cancelled" },
  interrupted: { event: "Interrupted", counter: "interrupted", deadLetter: false, fate: "interrupted" },
  abandoned: { event: "Abandoned", counter: "abandoned", deadLetter: true, fate: "abandoned" },
  // never accepted: counted as a rejection, and not in a shutdown report (no job is accepted once it began)
  dropped: { event: "Dropped", counter: "dropped", deadLetter: false, fate: undefined }
} as const

/** @internal */
export type TerminalStatus = keyof typeof outcomes

/** @internal */
export type Outcome = (typeof outcomes)[TerminalStatus]

/** @internal */
export type TerminalEvent = Outcome["event"]

/** The report lists: every outcome of an accepted job. @internal */
export type Fate = Exclude<Outcome["fate"], undefined>

/** @internal */
export type DeadLetterStatus = { [S in TerminalStatus]: (typeof outcomes)[S]["deadLetter"] extends true ? S : never }[
  TerminalStatus
]

/** @internal */
export const terminalEvents: ReadonlySet<string> = new Set(Object.values(outcomes).map((outcome) => outcome.event))

/** @internal */
export const fates: ReadonlyArray<Fate> = Object.values(outcomes).flatMap((outcome) =>
  outcome.fate === undefined ? [] : [outcome.fate]
)
