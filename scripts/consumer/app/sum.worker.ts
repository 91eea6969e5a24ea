// The thread side of node-app.ts: serves the Sum task.
import { NodeThreadRunner } from "@fiberpool/node"
import { Effect } from "effect"
import { Sum } from "./sum.js"

NodeThreadRunner.serve([Sum], {
  sum: (numbers) => Effect.sync(() => numbers.reduce((total, n) => total + n, 0))
}).pipe(Effect.runFork)
