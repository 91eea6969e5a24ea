import { Shutdown } from "@fiberpool/core"

const controller = Shutdown.makeController()
controller.requestUnsafe("forced")
console.log(controller.phase) // => forced
