import type { Shutdown } from "@fiberpool/core"

const ready = (phase: Shutdown.Phase) => phase === "running"
console.log(ready("graceful")) // => false
