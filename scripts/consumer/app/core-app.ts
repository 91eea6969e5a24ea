// A consumer's first @fiberpool/core program: typed results, a typed job error, a timeout, invalid options.
// Type-checked without @types/node (core runs wherever Effect runs), then run on plain Node and bundled.
import { WorkerPool } from "@fiberpool/core"
import { Data, Effect } from "effect"

class Declined extends Data.TaggedError("Declined")<{ readonly why: string }> {}

const program = Effect.gen(function*() {
  const invalid = yield* Effect.flip(WorkerPool.make({ concurrency: 0 }))
  const pool = yield* WorkerPool.make({ name: "consumer", concurrency: 2, capacity: 4 })
  const handles = yield* Effect.forEach(
    ["a", "b", "c"],
    (id) => WorkerPool.submit(pool, Effect.succeed(id.toUpperCase()), { id })
  )
  const values: ReadonlyArray<string> = yield* Effect.forEach(handles, (handle) => handle.await)
  const declined = yield* Effect.flip(WorkerPool.run(pool, Effect.fail(new Declined({ why: "no" }))))
  const timedOut = yield* Effect.flip(WorkerPool.run(pool, Effect.never, { timeout: "20 millis" }))
  const report = yield* WorkerPool.shutdown(pool)
  return {
    invalid: `${invalid._tag} ${invalid.option}`,
    values,
    declined: declined._tag === "Declined" ? declined.why : declined._tag,
    timedOut: timedOut._tag === "JobError" ? timedOut.reason._tag : timedOut._tag,
    succeeded: report.totals.succeeded,
    timedOutTotal: report.totals.timedOut
  }
})

Effect.runPromise(Effect.scoped(program)).then((result) => console.log(JSON.stringify(result)))
