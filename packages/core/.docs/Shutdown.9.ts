import { Shutdown } from "@fiberpool/core"
import { Effect } from "effect"

const program = Effect.map(Shutdown.CurrentController.asEffect(), (c) => c?.phase ?? "no controller")
console.log(await Effect.runPromise(program)) // => no controller
