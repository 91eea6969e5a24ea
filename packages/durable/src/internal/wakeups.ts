/**
 * Wake-ups across processes on PostgreSQL, by `LISTEN`/`NOTIFY`.
 *
 * - `notify`: a producer that enqueued (or re-queued) a job asks for a `pg_notify(channel, queueName)` once the
 *   enqueue is committed (`afterCommit`: at once outside a transaction, never for a rolled back one). A fiber of
 *   the queue's layer sends them, one per queue for all the requests made while it sends: the enqueue does not
 *   wait for it, 1,000 enqueues in one transaction send one notification, and a stream of enqueues one every
 *   2 ms at most (measured: a notification per enqueue, awaited, made 1,000 sequential enqueues take 338 ms
 *   instead of 182).
 * - `listen`: a worker holds one connection in `LISTEN channel`; a notification for its queue wakes the local
 *   poller of effect's `PersistedQueue` store at once instead of at its next poll.
 *
 * effect 4.1's store exposes no wake-up: its poller sleeps `pollInterval` or until an `offer` *through the same
 * store* succeeds (it opens the queue's nudge latch after commit, at once outside a transaction). So a nudge
 * here is an offer of the queue's wake row, {@link wakeId}: a row in state `completed` that the listener creates,
 * so the offer's `INSERT ... ON CONFLICT DO NOTHING` inserts nothing, one round trip. The wake row is never
 * claimed, and retention and the counts leave it out. Should it be gone anyway (deleted by hand), the offer
 * inserts it as a pending job of type {@link wakeType}, which a worker completes without running anything: it is
 * the wake row again. Notifications that arrive while a nudge runs are folded into the next one.
 *
 * Polling stays the fallback: a lost connection is logged and listened to again after a second, followed by one
 * nudge (for what was enqueued while nobody listened), and the poll interval still bounds the wait meanwhile.
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Latch from "effect/Latch"
import * as Option from "effect/Option"
import type * as PersistedQueue from "effect/persistence/PersistedQueue"
import * as Queue from "effect/Queue"
import type * as Scope from "effect/Scope"
import type * as SqlClient from "effect/sql/SqlClient"
import type { SqlError } from "effect/sql/SqlError"
import { StoreError } from "../DurableError.ts"

export interface Wakeups {
  readonly channel: string
  readonly notify: (queue: string) => Effect.Effect<void>
  /**
   * Wakes the queue's workers except the worker `self`: sent by a worker when a job it released (of a type it
   * does not run) becomes claimable again, so that the other workers claim it first.
   */
  readonly notifyOthers: (queue: string, self: string) => Effect.Effect<void, StoreError>
  /** Runs until interrupted; `self` is the listening worker's id, for `notifyOthers`. */
  readonly listen: (queue: string, self: string) => Effect.Effect<never>
}

/** The id of a queue's wake row (reserved: a job enqueued with this id would be ignored). */
export const wakeId = "~fiberpool/wake"

/** The job type of the wake row, should a worker ever claim it: it completes it without running anything. */
export const wakeType = "~fiberpool/wake"

/** What `@effect/sql-pg`'s `PgClient` adds to a `SqlClient`, read structurally: this package does not import it. */
interface Listener {
  readonly listen: (
    channel: string
  ) => Effect.Effect<Queue.Dequeue<{ readonly payload: string }, SqlError>, SqlError, Scope.Scope>
}

const isListener = (client: SqlClient.SqlClient): client is SqlClient.SqlClient & Listener =>
  typeof (client as Partial<Listener>).listen === "function"

/** The least time between two notifications of a sender (a stream of enqueues: the workers are awake by then). */
export const notifyGap = Duration.millis(2)

/** The notification channel of a queue table: one per table, the payload names the queue. */
export const channelOf = (tableName: string): string => {
  const channel = `fiberpool_${tableName}`
  // PostgreSQL truncates identifiers to 63 bytes; table names are ASCII in practice
  return channel.length > 63 ? channel.slice(0, 63) : channel
}

/** undefined when the client cannot listen (not PostgreSQL through `@effect/sql-pg`). */
export const make = (
  client: SqlClient.SqlClient,
  tableName: string,
  store: PersistedQueue.PersistedQueueStore["Service"],
  options: { readonly reconnectAfter: Duration.Duration }
): Effect.Effect<Wakeups | undefined, never, Scope.Scope> =>
  Effect.suspend(() => {
    const isPg = client.onDialectOrElse({ pg: () => true, orElse: () => false })
    return isPg && isListener(client) ? makePg(client, tableName, store, options) : Effect.succeed(undefined)
  })

const makePg = (
  client: SqlClient.SqlClient & Listener,
  tableName: string,
  store: PersistedQueue.PersistedQueueStore["Service"],
  options: { readonly reconnectAfter: Duration.Duration }
): Effect.Effect<Wakeups, never, Scope.Scope> =>
  Effect.gen(function*() {
    const wakeups = makePgUnsafe(client, tableName, store, options)
    // forked from the layer, not from the first enqueue (whose span it would keep)
    yield* Effect.forkScoped(wakeups.sender)
    return wakeups
  })

const makePgUnsafe = (
  client: SqlClient.SqlClient & Listener,
  tableName: string,
  store: PersistedQueue.PersistedQueueStore["Service"],
  options: { readonly reconnectAfter: Duration.Duration }
): Wakeups & { readonly sender: Effect.Effect<never> } => {
  const sql = client.withoutTransforms()
  const table = sql(tableName)
  const channel = channelOf(tableName)
  const { listen, request, sender } = makeWith({
    store,
    reconnectAfter: options.reconnectAfter,
    publish: (queue) => sql`SELECT pg_notify(${channel}, ${queue})`,
    subscribe: Effect.map(client.listen(channel), (notifications) => ({
      messages: notifications,
      payloadOf: (notification: { readonly payload: string }) => notification.payload
    })),
    ensureWake: (queue) =>
      sql`
        INSERT INTO ${table} (id, queue_name, element, state, attempts, visible_at, created_at, updated_at)
        VALUES (${wakeId}, ${queue}, ${JSON.stringify(wakeElement)}, 'completed', 0, NOW(), NOW(), NOW())
        ON CONFLICT (id, queue_name) DO NOTHING
      `
  })
  return {
    channel,
    sender,
    notify: (queue) => sql.afterCommit(request(queue)),
    notifyOthers: (queue, self) =>
      sql`SELECT pg_notify(${channel}, ${JSON.stringify({ q: queue, skip: self })})`.pipe(
        Effect.asVoid,
        Effect.mapError((cause) => new StoreError({ operation: "notify", cause }))
      ),
    listen
  }
}

/** The wake row's element, as a job of {@link wakeType}. */
const wakeElement = { type: wakeType, id: wakeId, payload: null }

/**
 * What wake-ups are on any transport (PostgreSQL's `LISTEN`/`NOTIFY`, Redis' pub/sub): a sender of the due
 * notifications (one per queue for all the requests made while it sends, then one every {@link notifyGap} at
 * most), and a worker's listener, which subscribes, makes sure the queue's wake entry exists, nudges once (for
 * what was enqueued while nobody listened), wakes the poller for each message about its queue, and subscribes
 * again after `reconnectAfter` when the subscription fails.
 *
 * @internal
 */
export const makeWith = <M>(transport: {
  readonly store: PersistedQueue.PersistedQueueStore["Service"]
  readonly reconnectAfter: Duration.Duration
  readonly publish: (queue: string) => Effect.Effect<unknown, unknown>
  readonly subscribe: Effect.Effect<
    { readonly messages: Queue.Dequeue<M, unknown>; readonly payloadOf: (message: M) => string },
    unknown,
    Scope.Scope
  >
  readonly ensureWake: (queue: string) => Effect.Effect<unknown, unknown>
}): {
  readonly sender: Effect.Effect<never>
  readonly request: (queue: string) => Effect.Effect<void>
  readonly listen: (queue: string, self: string) => Effect.Effect<never>
} => {
  // the queues whose notification is due; the sender takes them all at each round
  const due = new Set<string>()
  const send = Latch.makeUnsafe(false)
  const sender = send.await.pipe(
    Effect.andThen(Effect.suspend(() => {
      send.closeUnsafe()
      const queues = [...due]
      due.clear()
      return Effect.forEach(queues, transport.publish, { discard: true })
    })),
    // a lost notification costs the workers one poll interval
    Effect.catchCause((cause) => Effect.logDebug("sending a notification failed", cause)),
    // the first enqueue after a quiet spell is notified at once; a stream of enqueues, every 2 ms at most (the
    // workers are awake by then)
    Effect.andThen(Effect.sleep(notifyGap)),
    Effect.forever
  )
  const request = (queue: string) =>
    Effect.sync(() => {
      due.add(queue)
      send.openUnsafe()
    })

  const nudge = (queue: string) =>
    transport.store.offer({ name: queue, id: wakeId, element: wakeElement, isCustomId: true })

  const listen = (queue: string, self: string): Effect.Effect<never> =>
    Effect.suspend(() => {
      const wake = Latch.makeUnsafe(false)
      const nudger = wake.await.pipe(
        Effect.andThen(Effect.sync(() => wake.closeUnsafe())),
        Effect.andThen(nudge(queue)),
        Effect.catchCause((cause) => Effect.logDebug("waking the queue's poller failed", cause)),
        Effect.forever
      )
      const session = Effect.scoped(Effect.gen(function*() {
        const { messages, payloadOf } = yield* transport.subscribe
        yield* transport.ensureWake(queue)
        // (re)connected: look once for what was enqueued while nobody listened
        wake.openUnsafe()
        while (true) {
          for (const message of yield* Queue.takeAll(messages)) {
            const payload = payloadOf(message)
            if (payload === queue) wake.openUnsafe()
            else if (payload.startsWith(othersPrefix)) {
              const target = readOthers(payload)
              if (target !== undefined && target.queue === queue && target.skip !== self) wake.openUnsafe()
            }
          }
        }
      }))
      const listener = session.pipe(
        Effect.catchCause((cause) =>
          Effect.logWarning(
            `listening for new jobs failed; polling meanwhile, listening again in ${
              Duration.format(transport.reconnectAfter)
            }`,
            cause
          )
        ),
        Effect.andThen(Effect.sleep(transport.reconnectAfter)),
        Effect.forever
      )
      return Effect.raceFirst(nudger, listener)
    })

  return { sender, request, listen }
}

/** `notifyOthers`' payload is JSON, `{"q":queue,"skip":worker}`; an enqueue's is the queue's name. */
export const othersPrefix = `{"q":`

export const readOthers = (payload: string): { readonly queue: string; readonly skip: string } | undefined => {
  const parsed = Option.getOrUndefined(parseOption(payload)) as { q?: unknown; skip?: unknown } | null | undefined
  return typeof parsed?.q === "string" && typeof parsed.skip === "string"
    ? { queue: parsed.q, skip: parsed.skip }
    : undefined
}

const parseOption = Option.liftThrowable((text: string): unknown => JSON.parse(text))
