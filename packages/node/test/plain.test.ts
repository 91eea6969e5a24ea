import { assert, describe, it } from "@effect/vitest"
import { Exit, Schema } from "effect"
import { plainGuard } from "../src/internal/plain.ts"

const Point = Schema.Struct({ x: Schema.Number, y: Schema.Number, label: Schema.String })
const Mode = Schema.Literals(["fast", "slow"])
const Nested = Schema.Struct({ point: Point, mode: Mode, on: Schema.Boolean, none: Schema.Null })

// any value: primitives, and objects that may or may not have a Point's or a Nested's shape
const Anything = Schema.Union([
  Schema.Number,
  Schema.String,
  Schema.Boolean,
  Schema.Null,
  Mode,
  Point,
  Nested,
  Schema.Struct({ x: Schema.Number, y: Schema.String }),
  Schema.Struct({ x: Schema.Number, y: Schema.Number, label: Schema.String, extra: Schema.Number }),
  Schema.Array(Schema.Number)
])

describe("plain Schemas skip encoding, and their guard agrees with decoding", () => {
  const plain = { Number: Schema.Number, String: Schema.String, Mode, Point, Nested }
  for (const [name, schema] of Object.entries(plain)) {
    it.prop(`${name}: a value that passes the guard decodes to itself`, { u: Anything }, ({ u }) => {
      const guard = plainGuard(schema)
      assert.isDefined(guard)
      if (guard!(u)) {
        const decoded = Schema.decodeUnknownExit(schema as Schema.Codec<unknown>)(u)
        assert.isTrue(Exit.isSuccess(decoded))
        assert.deepStrictEqual((decoded as Exit.Success<unknown>).value, u)
      }
    })
  }

  it.prop("every value of Nested takes the fast path", { u: Nested }, ({ u }) => plainGuard(Nested)!(u))

  it("Schemas with checks, encodings, classes or optional keys are not plain", () => {
    class Tagged extends Schema.TaggedError<Tagged>()("Tagged", {}) {}
    for (
      const schema of [
        Schema.Int,
        Schema.Uint8Array,
        Schema.NumberFromString,
        Tagged,
        Schema.Struct({ a: Schema.optional(Schema.Number) }),
        Schema.Record(Schema.String, Schema.Number),
        Schema.Struct({ a: Schema.Int })
      ]
    ) {
      assert.isUndefined(plainGuard(schema))
    }
  })

  it("a Struct value with keys the Struct does not declare goes through the Schema (which strips them)", () => {
    assert.isFalse(plainGuard(Point)!({ x: 1, y: 2, label: "a", extra: 3 }))
    assert.isTrue(plainGuard(Point)!({ x: 1, y: 2, label: "a" }))
  })
})
