/** fiberpool's worker file for the NodeWorkerPool benchmark. */
import { Effect } from "effect"
import { serve } from "../src/NodeThreadRunner.ts"
import { Echo, Work } from "./thread-bench-tasks.ts"
import { work } from "./thread-work.ts"

serve([Work, Echo], {
  work: ({ iterations, seed }) => Effect.sync(() => work(seed, iterations)),
  echo: (n) => Effect.succeed(n)
}).pipe(Effect.runFork)
