import type { Job } from "@fiberpool/core"

const final: Job.TerminalStatus = "succeeded"
console.log(final) // => succeeded
