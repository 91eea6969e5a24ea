/** The tasks of the NodeWorkerPool benchmark (shared by the main thread and thread-bench-worker.ts). */
import { Schema } from "effect"
import * as NodeWorkerPool from "../src/NodeWorkerPool.ts"

export const Work = NodeWorkerPool.defineTask({
  name: "work",
  input: Schema.Struct({ seed: Schema.Number, iterations: Schema.Number }),
  output: Schema.Number
})

export const Echo = NodeWorkerPool.defineTask({ name: "echo", input: Schema.Number, output: Schema.Number })
