/**
 * The Redis store of `@fiberpool/durable`, through effect's Redis `PersistedQueue` store and `NodeRedis` of
 * `@effect/platform-node` (optional peer dependencies, with the `redis` client: import this module only where
 * Redis is used: `@fiberpool/durable/DurableRedis`, not re-exported by the package's index). For many processes
 * on many machines sharing one Redis server.
 *
 * @since 0.1.0
 */
import * as NodeRedis from "@effect/platform-node/NodeRedis"
import { PoolError } from "@fiberpool/core"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as PersistedQueue from "effect/persistence/PersistedQueue"
import * as Redis from "effect/persistence/Redis"
import * as Redacted from "effect/Redacted"
import * as DurableQueue from "./DurableQueue.ts"
import * as FlowsRedis from "./internal/flowsRedis.ts"
import * as OutcomesRedis from "./internal/outcomesRedis.ts"
import * as SchedulesRedis from "./internal/schedulesRedis.ts"
import * as WakeupsRedis from "./internal/wakeupsRedis.ts"

/**
 * Options of {@link layerStore}: the queue's options plus the store's.
 *
 * - `prefix`: the start of every key the queue writes (default `"fiberpool:"`): effect's store keys
 *   (`<prefix><name>`, `<prefix><name>:pending`...) and the durable package's own (`<prefix><name>:fp:...`). Give
 *   each application its own prefix when several share one Redis database; several queues can share one prefix.
 *   1 to 200 characters.
 * - `lockExpiration`: the lease, as on the SQL stores (default 30 seconds, see `DurableQueue.SqlOptions`): a
 *   crashed process's jobs are delivered again once their lock key has expired. `lockRefreshInterval`: default
 *   `lockExpiration / 6` (at least 500 ms).
 * - `notify`: producers `PUBLISH` once a job is enqueued (in the background, one message for a burst of enqueues)
 *   and each worker subscribes, so an idle worker in any process starts a new job within milliseconds; polling
 *   (`pollInterval`) stays the fallback, and finds delayed jobs and retries. Default `true`; `false` polls only.
 *
 * @example
 * ```ts
 * import type * as DurableRedis from "@fiberpool/durable/DurableRedis"
 *
 * const options: DurableRedis.StoreOptions = { name: "mail", prefix: "shop:", lockExpiration: "1 minute" }
 * console.log(options.prefix) // => shop:
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface StoreOptions extends DurableQueue.Options {
  readonly prefix?: string | undefined
  readonly lockExpiration?: Duration.Input | undefined
  readonly lockRefreshInterval?: Duration.Input | undefined
  readonly notify?: boolean | undefined
}

/**
 * The `node-redis` client options of `NodeRedis.layer` (`socket`, `username`, `password`, `database`, TLS...),
 * with the pool of dedicated connections (`maxConnections`...).
 *
 * @example
 * ```ts
 * import type * as DurableRedis from "@fiberpool/durable/DurableRedis"
 *
 * const client: DurableRedis.ClientOptions = { database: 2, socket: { connectTimeout: 5_000 } }
 * console.log(client.database) // => 2
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export type ClientOptions = NonNullable<Parameters<typeof NodeRedis.layer>[0]>

/**
 * Options of {@link layer}: the store's options plus the connection.
 *
 * - `url`: `redis://[[user]:password@]host[:port][/database]` or `rediss://...` (TLS), e.g.
 *   `process.env.REDIS_URL`. Default: node-redis's, `localhost:6379`.
 * - `redis`: any other `node-redis` client option; it overrides `url`.
 *
 * @example
 * ```ts
 * import type * as DurableRedis from "@fiberpool/durable/DurableRedis"
 *
 * const options: DurableRedis.Options = { url: "redis://127.0.0.1:6379/0", name: "mail", prefix: "shop:" }
 * console.log(options.name) // => mail
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface Options extends StoreOptions {
  readonly url?: string | Redacted.Redacted | undefined
  readonly redis?: ClientOptions | undefined
}

/**
 * The default key prefix: `"fiberpool:"`.
 *
 * @example
 * ```ts
 * import * as DurableRedis from "@fiberpool/durable/DurableRedis"
 *
 * console.log(DurableRedis.defaultPrefix) // => fiberpool:
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const defaultPrefix: string = "fiberpool:"

/**
 * A queue in the Redis server of the current `Redis` service (effect's `effect/persistence/Redis`, e.g. from
 * `NodeRedis.layer`): effect's `PersistedQueue` Redis store for the jobs (a list, a sorted set of delayed jobs,
 * lock keys with a lease), and hashes and sorted sets of this package for results, dead letters and progress.
 * Closing the layer hands every job this process still holds back to the store at once.
 *
 * **Details**
 *
 * What differs from the SQL stores (see the README's Redis section): `stats` and `cancel` fail with
 * `StoreError`, a job of a type this worker does not run is dead-lettered (the `unknownTypes` policy needs a SQL
 * store), a dead letter keeps a copy of its payload (as on the memory store), and the queue gauges of
 * `DurableMetrics` are not sampled.
 *
 * @example
 * ```ts
 * import { NodeRedis } from "@effect/platform-node"
 * import { Layer } from "effect"
 * import * as DurableRedis from "@fiberpool/durable/DurableRedis"
 *
 * const Queue = DurableRedis.layerStore({ name: "mail" }).pipe(
 *   Layer.provide(NodeRedis.layer({ url: "redis://127.0.0.1:6379" }))
 * )
 * console.log(Layer.isLayer(Queue)) // => true
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layerStore = (
  options?: StoreOptions
): Layer.Layer<DurableQueue.Service, PoolError.InvalidOptions, Redis.Redis> =>
  Layer.effect(
    DurableQueue.Service,
    Effect.gen(function*() {
      const redis = yield* Redis.Redis
      const prefix = options?.prefix ?? defaultPrefix
      // not empty: effect's store cleanup scans `<prefix>*:ids`, which would be every such key of the database
      if (typeof prefix !== "string" || prefix.length === 0 || prefix.length > 200) {
        return yield* new PoolError.InvalidOptions({
          option: "prefix",
          value: JSON.stringify(prefix),
          expected: "a key prefix of 1 to 200 characters"
        })
      }
      const lockExpiration = yield* DurableQueue.durationOption(
        "lockExpiration",
        options?.lockExpiration,
        DurableQueue.defaultLockExpiration
      )
      if (!Duration.isPositive(lockExpiration) || !Duration.isFinite(lockExpiration)) {
        return yield* new PoolError.InvalidOptions({
          option: "lockExpiration",
          value: String(options?.lockExpiration),
          expected: "a finite duration > 0"
        })
      }
      const lockRefreshInterval = yield* DurableQueue.durationOption(
        "lockRefreshInterval",
        options?.lockRefreshInterval,
        Duration.max(Duration.divideUnsafe(lockExpiration, 6), Duration.millis(500))
      )
      const pollInterval = yield* DurableQueue.durationOption(
        "pollInterval",
        options?.pollInterval,
        DurableQueue.defaultPollInterval
      )
      const store = yield* PersistedQueue.makeStoreRedis({ prefix, pollInterval, lockExpiration, lockRefreshInterval })
      const wakeups = options?.notify === false
        ? undefined
        : yield* WakeupsRedis.make(redis, prefix, store, { reconnectAfter: Duration.seconds(1) })
      return yield* DurableQueue.makeQueue(options, {
        store,
        outcomes: OutcomesRedis.make(redis, prefix),
        wakeups,
        // a tick claimed and not enqueued within a lease is another firer's to enqueue, as a crashed job's lease;
        // the same for a flow's parent whose offer was decided and not done
        schedules: SchedulesRedis.make(redis, prefix, { claimLease: lockExpiration }),
        flows: FlowsRedis.make(redis, prefix, { markLease: lockExpiration })
      })
    })
  )

/**
 * A queue in Redis, with its own `node-redis` client (connected when the layer is built, closed with it). The
 * layer also provides its `Redis` and `NodeRedis` services, so handlers can use the same client.
 *
 * @example
 * ```ts
 * import { Effect, Layer, Schema } from "effect"
 * import { DurableQueue, JobType } from "@fiberpool/durable"
 * import * as DurableRedis from "@fiberpool/durable/DurableRedis"
 *
 * const Ping = JobType.make({ name: "ping", payload: Schema.String, handler: () => Effect.void })
 * const Queue: Layer.Layer<DurableQueue.Service, unknown> = DurableRedis.layer({
 *   url: process.env.REDIS_URL ?? "redis://127.0.0.1:6379",
 *   name: "pings"
 * })
 * const program = DurableQueue.enqueue(Ping, "hello").pipe(Effect.provide(Queue))
 * console.log(Effect.isEffect(program)) // => true
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (
  options: Options
): Layer.Layer<
  DurableQueue.Service | Redis.Redis | NodeRedis.NodeRedis,
  Redis.RedisError | PoolError.InvalidOptions
> =>
  Layer.unwrap(
    Effect.map(
      clientOptions(options),
      (client) => layerStore(options).pipe(Layer.provideMerge(NodeRedis.layer(client)))
    )
  )

// ---- Internal ----

const clientOptions = (options: Options): Effect.Effect<ClientOptions, PoolError.InvalidOptions> => {
  const url = options.url === undefined
    ? undefined
    : Redacted.isRedacted(options.url)
    ? Redacted.value(options.url)
    : options.url
  if (url !== undefined) {
    const parsed = typeof url === "string" && URL.canParse(url) ? new URL(url) : undefined
    if (parsed === undefined || (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:")) {
      return Effect.fail(
        new PoolError.InvalidOptions({
          option: "url",
          // the password stays out of the error
          value: parsed === undefined ? "<not a URL>" : `${parsed.protocol}//${parsed.host}`,
          expected: "a redis:// or rediss:// URL"
        })
      )
    }
  }
  return Effect.succeed({ ...(url === undefined ? {} : { url }), ...options.redis })
}
