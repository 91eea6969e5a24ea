// A task shared by node-app.ts and its worker thread.
import { NodeWorkerPool } from "@fiberpool/node"
import { Schema } from "effect"

export const Sum = NodeWorkerPool.defineTask({
  name: "sum",
  input: Schema.Array(Schema.Int),
  output: Schema.Int
})
