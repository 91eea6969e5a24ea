import { Shutdown } from "@fiberpool/core"
import { Effect } from "effect"

const controller = Shutdown.makeController()
await Effect.runPromise(Shutdown.requestGraceful(controller))
console.log(controller.phase) // => graceful
