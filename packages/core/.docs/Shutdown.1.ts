import type { Shutdown } from "@fiberpool/core"

const mode: Shutdown.Mode = "cancel"
console.log(mode) // => cancel
