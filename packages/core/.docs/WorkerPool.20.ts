import { WorkerPool } from "@fiberpool/core"
import { ConfigProvider, Effect } from "effect"
import assert from "node:assert"

const provider = ConfigProvider.fromEnv({ env: { CONCURRENCY: "8", SHUTDOWN_GRACE_PERIOD: "5 seconds" } })
const options = await Effect.runPromise(WorkerPool.config({ concurrency: 2 }).parse(provider))
assert.strictEqual(options.concurrency, 8)
assert.strictEqual(options.capacity, undefined)
