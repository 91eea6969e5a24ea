/**
 * A small effect `SqlClient` over Node's built-in `node:sqlite` (Node 22.5+, no native addon): the embedded
 * store of `@fiberpool/durable`, and usable on its own wherever an effect `SqlClient` is expected.
 *
 * @since 0.1.0
 */
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Layer from "effect/Layer"
import * as Option from "effect/Option"
import * as Reactivity from "effect/reactivity/Reactivity"
import type * as Scope from "effect/Scope"
import * as Semaphore from "effect/Semaphore"
import * as SqlClient from "effect/sql/SqlClient"
import type * as SqlConnection from "effect/sql/SqlConnection"
import {
  AuthorizationError,
  ConnectionError,
  ConstraintError,
  LockTimeoutError,
  SqlError,
  SqlSyntaxError,
  UniqueViolation,
  UnknownError
} from "effect/sql/SqlError"
import * as Statement from "effect/sql/Statement"
import * as Stream from "effect/Stream"
import { DatabaseSync, type SQLInputValue, type StatementSync } from "node:sqlite"

/**
 * Options of a SQLite client.
 *
 * - `filename`: the database file, or `":memory:"`.
 * - `readonly`: open the file read-only. Default `false`.
 * - `busyTimeout`: how long a statement waits for another connection's (or process's) write lock before failing
 *   with `LockTimeoutError`. Default 5 seconds. SQLite waits synchronously: the event loop is blocked meanwhile.
 * - `wal`: use write-ahead logging, so readers never block the writer and several processes can share the file.
 *   Default `true` (ignored for `":memory:"`).
 * - `beginTransaction`: the statement that opens a transaction. Default `"BEGIN IMMEDIATE"`: it takes the write
 *   lock at once, so two processes never deadlock upgrading a read transaction to a write one.
 * - `transformResultNames` / `transformQueryNames`: rename columns of results and identifiers of queries (for
 *   example snake_case ↔ camelCase).
 *
 * @example
 * ```ts
 * import type { SqliteClient } from "@fiberpool/durable"
 *
 * const config: SqliteClient.SqliteClientConfig = { filename: "jobs.db", busyTimeout: "10 seconds" }
 * console.log(config.filename) // => jobs.db
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface SqliteClientConfig {
  readonly filename: string
  readonly readonly?: boolean | undefined
  readonly busyTimeout?: Duration.Input | undefined
  readonly wal?: boolean | undefined
  readonly beginTransaction?: string | undefined
  readonly spanAttributes?: Readonly<Record<string, unknown>> | undefined
  readonly transformResultNames?: ((str: string) => string) | undefined
  readonly transformQueryNames?: ((str: string) => string) | undefined
}

/**
 * A SQLite client: an effect `SqlClient` (driver `"sqlite"`) plus its configuration.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqliteClient } from "@fiberpool/durable"
 *
 * const program = Effect.gen(function*() {
 *   const sql: SqliteClient.SqliteClient = yield* SqliteClient.make({ filename: ":memory:" })
 *   console.log(sql.driver, sql.config.filename) // => sqlite :memory:
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category models
 * @since 0.1.0
 */
export interface SqliteClient extends SqlClient.SqlClient {
  readonly config: SqliteClientConfig
}

/**
 * The service key of a {@link SqliteClient}. {@link layer} provides it together with `SqlClient.SqlClient`.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqliteClient } from "@fiberpool/durable"
 *
 * const program = Effect.gen(function*() {
 *   const sql = yield* SqliteClient.SqliteClient
 *   return sql.config.filename
 * })
 * const filename = await Effect.runPromise(
 *   program.pipe(Effect.provide(SqliteClient.layer({ filename: ":memory:" })))
 * )
 * console.log(filename) // => :memory:
 * ```
 *
 * @category services
 * @since 0.1.0
 */
export const SqliteClient: Context.Service<SqliteClient, SqliteClient> = Context.Service<SqliteClient>(
  "@fiberpool/durable/SqliteClient"
)

/**
 * Opens a SQLite database and returns a client; the database is closed when the scope closes.
 *
 * **Details**
 *
 * One connection is shared through a semaphore: a transaction holds it until it ends, so statements from other
 * fibers wait instead of joining it. Prepared statements are cached per SQL text. Errors are `SqlError`s whose
 * `reason` tells what happened: `UniqueViolation`, `ConstraintError`, `SqlSyntaxError`, `LockTimeoutError`
 * (another connection held the write lock for longer than `busyTimeout`), `ConnectionError` (the file cannot be
 * opened), `AuthorizationError`, otherwise `UnknownError`.
 *
 * @example
 * ```ts
 * import assert from "node:assert"
 * import { Effect } from "effect"
 * import { SqliteClient } from "@fiberpool/durable"
 *
 * const program = Effect.gen(function*() {
 *   const sql = yield* SqliteClient.make({ filename: ":memory:" })
 *   yield* sql`CREATE TABLE jobs (id TEXT PRIMARY KEY, n INTEGER)`
 *   yield* sql`INSERT INTO jobs ${sql.insert({ id: "a", n: 1 })}`
 *   const rows = yield* sql<{ id: string; n: number }>`SELECT * FROM jobs WHERE n = ${1}`
 *   assert.deepStrictEqual(rows, [{ id: "a", n: 1 }])
 * })
 * await Effect.runPromise(Effect.scoped(program))
 * ```
 *
 * @category constructors
 * @since 0.1.0
 */
export const make = (
  config: SqliteClientConfig
): Effect.Effect<SqliteClient, SqlError, Scope.Scope> =>
  Effect.gen(function*() {
    // share the application's Reactivity when there is one (query invalidation), else use a private one
    const existing = yield* Effect.serviceOption(Reactivity.Reactivity)
    const reactivity = Option.isSome(existing) ? existing.value : yield* Reactivity.make
    const compiler = Statement.makeCompilerSqlite(config.transformQueryNames)
    const transformRows = config.transformResultNames === undefined
      ? undefined
      : Statement.defaultTransforms(config.transformResultNames).array

    const connection = yield* Effect.acquireRelease(
      Effect.try({
        try: () => openConnection(config),
        catch: (cause) => toSqlError(cause, "Failed to open the SQLite database", "open", true)
      }),
      (connection) => Effect.sync(() => connection.close())
    )

    const semaphore = yield* Semaphore.make(1)
    const acquirers = SqlClient.makeSqliteAcquirers({
      connection: Effect.succeed(connection),
      semaphore,
      isTransaction: (conn: SqliteConnection) => conn.db.isTransaction
    })

    const client = yield* SqlClient.make({
      acquirer: acquirers.acquirer,
      borrower: acquirers.borrower,
      transactionAcquirer: acquirers.transactionAcquirer,
      onCommitFailure: acquirers.onCommitFailure,
      isTransaction: acquirers.isTransaction,
      compiler,
      driver: "sqlite",
      beginTransaction: config.beginTransaction ?? "BEGIN IMMEDIATE",
      spanAttributes: [
        ...(config.spanAttributes ? Object.entries(config.spanAttributes) : []),
        ["db.system.name", "sqlite"]
      ],
      transformRows
    }).pipe(Effect.provideService(Reactivity.Reactivity, reactivity))

    return Object.assign(client, { config }) as SqliteClient
  })

/**
 * A layer providing {@link SqliteClient} and `SqlClient.SqlClient` (for example to `PersistedQueue.layerStoreSql`);
 * the database is closed when the layer's scope closes.
 *
 * @example
 * ```ts
 * import { Effect } from "effect"
 * import { SqlClient } from "effect/sql"
 * import { SqliteClient } from "@fiberpool/durable"
 *
 * const program = Effect.gen(function*() {
 *   const sql = yield* SqlClient.SqlClient
 *   const rows = yield* sql<{ answer: number }>`SELECT 6 * 7 AS answer`
 *   console.log(rows[0].answer) // => 42
 * })
 * await Effect.runPromise(program.pipe(Effect.provide(SqliteClient.layer({ filename: ":memory:" }))))
 * ```
 *
 * @category layers
 * @since 0.1.0
 */
export const layer = (config: SqliteClientConfig): Layer.Layer<SqliteClient | SqlClient.SqlClient, SqlError> =>
  Layer.effectContext(
    Effect.map(
      make(config),
      (client) => Context.make(SqliteClient, client).pipe(Context.add(SqlClient.SqlClient, client))
    )
  ).pipe(Layer.provide(Reactivity.layer))

// ---- Internal ----

type Row = Record<string, unknown>
type TransformRows = (<A extends object>(rows: ReadonlyArray<A>) => ReadonlyArray<A>) | undefined

class SqliteConnection implements SqlConnection.Connection {
  readonly db: DatabaseSync
  private readonly cache = new Map<string, StatementSync>()

  constructor(db: DatabaseSync) {
    this.db = db
  }

  close(): void {
    this.cache.clear()
    if (this.db.isOpen) this.db.close()
  }

  private prepare(sql: string, cached: boolean): StatementSync {
    if (!cached) return this.db.prepare(sql)
    let statement = this.cache.get(sql)
    if (statement === undefined) {
      statement = this.db.prepare(sql)
      // an unbounded cache would grow with every distinct statement text (literals inlined by callers)
      if (this.cache.size >= 256) this.cache.delete(this.cache.keys().next().value!)
      this.cache.set(sql, statement)
    }
    return statement
  }

  private run(sql: string, params: ReadonlyArray<unknown>, cached: boolean, arrays: boolean): Effect.Effect<
    ReadonlyArray<any>,
    SqlError
  > {
    return Effect.try({
      try: () => {
        const statement = this.prepare(sql, cached)
        const bound = params.map(toSqliteValue) as Array<SQLInputValue>
        if (statement.columns().length === 0) {
          statement.run(...bound)
          return []
        }
        statement.setReturnArrays(arrays)
        const rows = statement.all(...bound)
        // node:sqlite returns rows with a null prototype; give callers ordinary objects
        return arrays ? rows : rows.map((row) => ({ ...row }))
      },
      catch: (cause) => toSqlError(cause, "Failed to execute statement", "execute", false)
    })
  }

  execute(sql: string, params: ReadonlyArray<unknown>, transformRows: TransformRows) {
    const rows = this.run(sql, params, true, false)
    return transformRows ? Effect.map(rows, (rows) => transformRows(rows as ReadonlyArray<Row>)) : rows
  }
  executeRaw(sql: string, params: ReadonlyArray<unknown>) {
    return this.run(sql, params, true, false)
  }
  executeValues(sql: string, params: ReadonlyArray<unknown>) {
    return this.run(sql, params, true, true) as Effect.Effect<ReadonlyArray<ReadonlyArray<unknown>>, SqlError>
  }
  executeValuesUnprepared(sql: string, params: ReadonlyArray<unknown>) {
    return this.run(sql, params, false, true) as Effect.Effect<ReadonlyArray<ReadonlyArray<unknown>>, SqlError>
  }
  executeUnprepared(sql: string, params: ReadonlyArray<unknown>, transformRows: TransformRows) {
    const rows = this.run(sql, params, false, false)
    return transformRows ? Effect.map(rows, (rows) => transformRows(rows as ReadonlyArray<Row>)) : rows
  }
  executeStream(sql: string, params: ReadonlyArray<unknown>, transformRows: TransformRows) {
    return Stream.fromIterableEffect(this.execute(sql, params, transformRows))
  }
}

const openConnection = (config: SqliteClientConfig): SqliteConnection => {
  const db = new DatabaseSync(config.filename, { readOnly: config.readonly ?? false })
  const connection = new SqliteConnection(db)
  const busyMillis = Math.max(
    0,
    Math.round(Duration.toMillis(Duration.fromInputUnsafe(config.busyTimeout ?? "5 seconds")))
  )
  try {
    db.exec(`PRAGMA busy_timeout = ${busyMillis}`)
    if (config.wal !== false && config.filename !== ":memory:" && config.readonly !== true) {
      db.exec("PRAGMA journal_mode = WAL")
      // with WAL, NORMAL keeps every committed transaction durable across process crashes (not power loss)
      db.exec("PRAGMA synchronous = NORMAL")
    }
  } catch (error) {
    connection.close()
    throw error
  }
  return connection
}

const toSqliteValue = (value: unknown): unknown => {
  switch (typeof value) {
    case "boolean":
      return value ? 1 : 0
    case "undefined":
      return null
    case "object":
      if (value instanceof Date) return value.toISOString()
      return value
    default:
      return value
  }
}

const toSqlError = (cause: unknown, fallback: string, operation: string, opening: boolean): SqlError => {
  const error = cause as { readonly errcode?: number; readonly message?: string } | undefined
  const message = typeof error?.message === "string" ? error.message : fallback
  const code = typeof error?.errcode === "number" ? error.errcode : -1
  const fields = { cause, message, operation }
  switch (code & 0xff) {
    case 5: // SQLITE_BUSY
    case 6: // SQLITE_LOCKED
      return new SqlError({ reason: new LockTimeoutError(fields) })
    case 19: // SQLITE_CONSTRAINT
      return new SqlError({
        reason: code === 2067 || code === 1555 // _UNIQUE, _PRIMARYKEY
          ? new UniqueViolation({ ...fields, constraint: message.replace(/^.*constraint failed: /, "") })
          : new ConstraintError(fields)
      })
    case 23: // SQLITE_AUTH
      return new SqlError({ reason: new AuthorizationError(fields) })
    case 14: // SQLITE_CANTOPEN
    case 26: // SQLITE_NOTADB
      return new SqlError({ reason: new ConnectionError(fields) })
    case 1: // SQLITE_ERROR: syntax errors, unknown tables and columns
      if (/syntax error|no such (table|column)|incomplete input/.test(message)) {
        return new SqlError({ reason: new SqlSyntaxError(fields) })
      }
      return new SqlError({ reason: new UnknownError(fields) })
    default:
      return new SqlError({ reason: opening ? new ConnectionError(fields) : new UnknownError(fields) })
  }
}
