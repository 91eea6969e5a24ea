import { JobEvent } from "@fiberpool/core"
import assert from "node:assert"

assert.strictEqual(JobEvent.isTerminal({ _tag: "Started" }), false)
assert.strictEqual(JobEvent.isTerminal({ _tag: "Abandoned" }), true)
