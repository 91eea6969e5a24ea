import { Job } from "@fiberpool/core"
import assert from "node:assert"

assert.strictEqual(Job.isTerminal("running"), false)
assert.strictEqual(Job.isTerminal("cancelled"), true)
