// What @fiberpool/durable keeps to itself is not in its types (its declarations are built with `stripInternal`):
// a queue's store, and the helpers the package's modules share. Checked against the packed package only (the
// repository's own check sees the sources, where they are visible): each line is an error there, as expected.
import type { DurableQueue } from "@fiberpool/durable"

// @ts-expect-error a queue's store is internal
export type NoStore = DurableQueue.DurableQueue["store"]
// @ts-expect-error the package's helpers are internal
export type NoHelper = typeof DurableQueue.makeQueue
