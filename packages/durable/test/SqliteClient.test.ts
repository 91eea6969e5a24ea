import { assert, describe, it } from "@effect/vitest"
import { SqliteClient } from "@fiberpool/durable"
import { Effect, Fiber, Schema } from "effect"
import { SqlClient } from "effect/sql"
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const tempFile = () => Path.join(Fs.mkdtempSync(Path.join(Os.tmpdir(), "fiberpool-sqlite-")), "test.db")

const withClient = <A, E>(f: (sql: SqliteClient.SqliteClient) => Effect.Effect<A, E>, filename = ":memory:") =>
  Effect.flatMap(SqliteClient.make({ filename }), f)

describe("SqliteClient", () => {
  it.effect("runs queries with parameters and returns typed rows", () =>
    withClient((sql) =>
      Effect.gen(function*() {
        assert.strictEqual(sql.driver, "sqlite")
        yield* sql`CREATE TABLE jobs (id TEXT PRIMARY KEY, n INTEGER NOT NULL, done BOOLEAN, payload BLOB)`
        yield* sql`INSERT INTO jobs ${sql.insert([{ id: "a", n: 1, done: true }, { id: "b", n: 2, done: false }])}`
        const rows = yield* sql<{ id: string; n: number; done: number }>`
          SELECT id, n, done FROM jobs WHERE n >= ${1} AND id IN ${sql.in(["a", "b"])} ORDER BY id`
        assert.deepStrictEqual(rows, [{ id: "a", n: 1, done: 1 }, { id: "b", n: 2, done: 0 }])
        assert.strictEqual(Object.getPrototypeOf(rows[0]), Object.prototype, "rows are ordinary objects")
        const values = yield* sql`SELECT id, n FROM jobs ORDER BY id`.values
        assert.deepStrictEqual(values, [["a", 1], ["b", 2]])
        const returned = yield* sql<
          { id: string; n: number }
        >`UPDATE jobs SET n = n + 10 WHERE id = ${"b"} RETURNING id, n`
        assert.deepStrictEqual(returned, [{ id: "b", n: 12 }])
        const bytes = new Uint8Array([1, 2, 3])
        yield* sql`UPDATE jobs SET payload = ${bytes} WHERE id = ${"a"}`
        const [blob] = yield* sql<{ payload: Uint8Array }>`SELECT payload FROM jobs WHERE id = 'a'`
        assert.deepStrictEqual([...blob.payload], [1, 2, 3])
      })
    ))

  it.effect("commits a transaction, and rolls it back on failure", () =>
    withClient((sql) =>
      Effect.gen(function*() {
        yield* sql`CREATE TABLE t (n INTEGER)`
        yield* sql.withTransaction(Effect.andThen(sql`INSERT INTO t VALUES (1)`, sql`INSERT INTO t VALUES (2)`))
        const failed = yield* Effect.flip(sql.withTransaction(
          Effect.andThen(sql`INSERT INTO t VALUES (3)`, Effect.fail("boom" as const))
        ))
        assert.strictEqual(failed, "boom")
        // a nested transaction is a savepoint: its rollback keeps the outer writes
        yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO t VALUES (4)`
          yield* Effect.exit(sql.withTransaction(Effect.andThen(sql`INSERT INTO t VALUES (5)`, Effect.fail("inner"))))
        }))
        const rows = yield* sql<{ n: number }>`SELECT n FROM t ORDER BY n`
        assert.deepStrictEqual(rows.map((r) => r.n), [1, 2, 4])
      })
    ))

  it.effect("a transaction holds the connection: other fibers' statements wait for it", () =>
    withClient((sql) =>
      Effect.gen(function*() {
        yield* sql`CREATE TABLE t (n INTEGER)`
        const outside = yield* Effect.forkChild(sql`INSERT INTO t VALUES (99)`, { startImmediately: true })
        const seen = yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql`INSERT INTO t VALUES (1)`
          yield* Effect.yieldNow
          return yield* sql<{ c: number }>`SELECT COUNT(*) AS c FROM t`
        }))
        yield* Fiber.join(outside)
        const after = yield* sql<{ c: number }>`SELECT COUNT(*) AS c FROM t`
        assert.strictEqual(after[0].c, 2)
        assert.oneOf(seen[0].c, [1, 2])
      })
    ))

  it.effect("errors are typed SqlError reasons", () =>
    withClient((sql) =>
      Effect.gen(function*() {
        yield* sql`CREATE TABLE u (id TEXT PRIMARY KEY, n INTEGER CHECK (n > 0))`
        yield* sql`INSERT INTO u VALUES ('x', 1)`
        const unique = yield* Effect.flip(sql`INSERT INTO u VALUES ('x', 2)`)
        assert.strictEqual(unique._tag, "SqlError")
        assert.strictEqual(unique.reason._tag, "UniqueViolation")
        const check = yield* Effect.flip(sql`INSERT INTO u VALUES ('y', -1)`)
        assert.strictEqual(check.reason._tag, "ConstraintError")
        const syntax = yield* Effect.flip(sql`SELEC 1`)
        assert.strictEqual(syntax.reason._tag, "SqlSyntaxError")
        const missing = yield* Effect.flip(sql`SELECT * FROM nope`)
        assert.strictEqual(missing.reason._tag, "SqlSyntaxError")
        assert.match(missing.message, /no such table: nope/)
      })
    ))

  it.effect("opening a file that cannot exist fails with ConnectionError", () =>
    Effect.gen(function*() {
      const error = yield* Effect.flip(SqliteClient.make({ filename: "/nonexistent-dir/x/y.db" }))
      assert.strictEqual(error.reason._tag, "ConnectionError")
    }))

  it.effect("two clients share one file in WAL mode; a held write lock surfaces as LockTimeoutError", () =>
    Effect.gen(function*() {
      const filename = tempFile()
      const a = yield* SqliteClient.make({ filename })
      const b = yield* SqliteClient.make({ filename, busyTimeout: "50 millis" })
      const [mode] = yield* a<{ journal_mode: string }>`PRAGMA journal_mode`
      assert.strictEqual(mode.journal_mode, "wal")
      yield* a`CREATE TABLE t (n INTEGER)`
      yield* b`INSERT INTO t VALUES (1)`
      assert.deepStrictEqual(yield* a<{ n: number }>`SELECT n FROM t`, [{ n: 1 }])
      // a holds the write lock (BEGIN IMMEDIATE) while b tries to write
      const blocked = yield* a.withTransaction(Effect.gen(function*() {
        yield* a`INSERT INTO t VALUES (2)`
        return yield* Effect.flip(b`INSERT INTO t VALUES (3)`)
      }))
      assert.strictEqual(blocked.reason._tag, "LockTimeoutError")
      // readers are not blocked by the writer in WAL mode
      assert.strictEqual((yield* b<{ c: number }>`SELECT COUNT(*) AS c FROM t`)[0].c, 2)
    }))

  it.effect("provides SqlClient through its layer, usable with SqlSchema-style decoding", () =>
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const rows = yield* sql<{ answer: number }>`SELECT 6 * 7 AS answer`
      const decoded = Schema.decodeUnknownSync(Schema.Array(Schema.Struct({ answer: Schema.Number })))(rows)
      assert.strictEqual(decoded[0].answer, 42)
    }).pipe(Effect.provide(SqliteClient.layer({ filename: ":memory:" }))))

  it.effect("transformResultNames renames columns", () =>
    Effect.gen(function*() {
      const sql = yield* SqliteClient.make({
        filename: ":memory:",
        transformResultNames: (s) => s.replace(/_(\w)/g, (_, c: string) => c.toUpperCase())
      })
      const rows = yield* sql<{ jobId: string }>`SELECT 'j' AS job_id`
      assert.deepStrictEqual(rows, [{ jobId: "j" }])
    }))
})
