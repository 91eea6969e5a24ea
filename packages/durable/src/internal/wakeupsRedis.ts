/**
 * Wake-ups across processes on Redis, by pub/sub: the `Wakeups` of `wakeups.ts` (PostgreSQL's `LISTEN`/`NOTIFY`)
 * over Redis' `PUBLISH`/`SUBSCRIBE`.
 *
 * - `notify`: a producer that enqueued a job asks for a `PUBLISH <channel> <queue>`; a fiber of the queue's layer
 *   sends them, one per queue for all the requests made while it sends, then at most one every 2 ms: the enqueue
 *   does not wait for it. (`notifyOthers` publishes `{"q":queue,"skip":worker}`, as on PostgreSQL.)
 * - `listen`: a worker subscribes (node-redis gives the subscription its own connection, re-subscribed after a
 *   lost connection); a message for its queue wakes the local poller of effect's Redis store at once instead of at
 *   its next poll.
 *
 * effect's Redis store wakes its poller only when an `offer` through the same store succeeds. So a nudge is an
 * offer of the queue's wake id ({@link Wakeups.wakeId}) whose de-duplication entry the listener parks first
 * (`ZADD <prefix><queue>:ids NX +inf`, as the store parks a pending job's): the offer's script finds the id and
 * pushes nothing, one round trip. The entry is never claimed, and the store's cleanup only trims finite scores
 * (completed jobs). Should it be gone anyway (deleted by hand), the offer pushes a job of type
 * {@link Wakeups.wakeType}, which a worker completes without running anything; the next subscription parks the
 * entry again.
 *
 * Pub/sub is fire-and-forget: a message lost while a subscription comes back costs a poll interval, and every
 * (re)subscription is followed by one nudge, for what was enqueued while nobody listened.
 */
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as PersistedQueue from "effect/persistence/PersistedQueue"
import type * as Redis from "effect/persistence/Redis"
import type * as Scope from "effect/Scope"
import { StoreError } from "../DurableError.ts"
import { makeWith, wakeId, type Wakeups } from "./wakeups.ts"

/** The channel of a key prefix: Redis' pub/sub channels are shared by all its databases, so the prefix is in it. */
export const channelOf = (prefix: string): string => `${prefix}~fiberpool/wake`

export const make = (
  redis: Redis.Redis["Service"],
  prefix: string,
  store: PersistedQueue.PersistedQueueStore["Service"],
  options: { readonly reconnectAfter: Duration.Duration }
): Effect.Effect<Wakeups, never, Scope.Scope> =>
  Effect.gen(function*() {
    const channel = channelOf(prefix)
    const { listen, request, sender } = makeWith({
      store,
      reconnectAfter: options.reconnectAfter,
      publish: (queue) => redis.send("PUBLISH", channel, queue),
      subscribe: Effect.map(redis.subscribe(channel), (messages) => ({
        messages,
        payloadOf: (message: Redis.RedisMessage) => message.message
      })),
      ensureWake: (queue) => redis.send("ZADD", `${prefix}${queue}:ids`, "NX", "+inf", wakeId)
    })
    // forked from the layer, not from the first enqueue (whose span it would keep)
    yield* Effect.forkScoped(sender)
    return {
      channel,
      notify: request,
      notifyOthers: (queue, self) =>
        redis.send("PUBLISH", channel, JSON.stringify({ q: queue, skip: self })).pipe(
          Effect.asVoid,
          Effect.mapError((error) => new StoreError({ operation: "notify", cause: error.cause }))
        ),
      listen
    }
  })
