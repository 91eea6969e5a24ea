/**
 * A running job's progress: what `Job.Info.progress` reported, kept on the job and sent to its listeners at
 * most once per interval (the last value held back is sent when the job ends).
 */
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import * as Option from "effect/Option"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import type * as Job from "../Job.ts"

/** @internal */
export class Progress {
  last: unknown = undefined
  reported = false
  /** The last value sent to listeners: where a new listener's stream starts. */
  sent: Option.Option<unknown> = Option.none()
  sentAt = Number.NEGATIVE_INFINITY
  /** A value was reported but not sent yet (inside the interval). */
  held = false
  ended = false
  readonly listeners = new Set<Queue.Queue<unknown, Cause.Done>>()

  get value(): Option.Option<unknown> {
    return this.reported ? Option.some(this.last) : Option.none()
  }

  /** Sends the last value to the handle's listeners. */
  send(): void {
    this.held = false
    this.sent = Option.some(this.last)
    for (const queue of this.listeners) Queue.offerUnsafe(queue, this.last)
  }

  /** The job has ended: listeners get the value held back, then their streams end. */
  end(): void {
    this.ended = true
    if (this.held) this.send()
    for (const queue of this.listeners) Queue.endUnsafe(queue)
    this.listeners.clear()
  }
}

/**
 * The stream of `handle.progressUpdates`: the last value sent so far (a value held back comes when it is
 * sent), then each one sent, until the job ends.
 */
export const updates = (progress: () => Progress): Stream.Stream<unknown> =>
  Stream.unwrap(Effect.map(
    Effect.acquireRelease(Queue.unbounded<unknown, Cause.Done>(), (queue) =>
      Effect.sync(() => {
        progress().listeners.delete(queue)
      })),
    (queue) => {
      const state = progress()
      if (state.sent._tag === "Some") Queue.offerUnsafe(queue, state.sent.value)
      if (state.ended) Queue.endUnsafe(queue)
      else state.listeners.add(queue)
      return Stream.fromQueue(queue)
    }
  ))

/** What `Job.Info` reads of a job (its entry) and where it reports progress (its pool). */
export interface InfoSource {
  readonly id: string
  readonly attemptCount: number
  readonly metadata: Readonly<Record<string, unknown>> | undefined
}

/** What a job sees of itself (`Job.Current`): read from its entry when asked. */
export class JobInfo<S extends InfoSource> implements Job.Info {
  readonly source: S
  readonly pool: string
  readonly deadline: number | undefined
  readonly owner: { reportProgress(source: S, value: unknown): void }
  constructor(source: S, pool: string, deadline: number | undefined, owner: JobInfo<S>["owner"]) {
    this.source = source
    this.pool = pool
    this.deadline = deadline
    this.owner = owner
  }
  get id(): string {
    return this.source.id
  }
  get attempt(): number {
    return this.source.attemptCount
  }
  get metadata(): Readonly<Record<string, unknown>> | undefined {
    return this.source.metadata
  }
  /** A function bound to the job, so that `const { progress } = yield* Job.Current` works; made when first read. */
  get progress(): (value: unknown) => Effect.Effect<void> {
    return this.report ??= (value) => Effect.sync(() => this.owner.reportProgress(this.source, value))
  }
  report: ((value: unknown) => Effect.Effect<void>) | undefined = undefined
}
