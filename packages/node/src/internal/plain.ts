/**
 * The Schemas whose values cross a thread as they are: no encoding step, and a check that is a few `typeof`s.
 *
 * A Schema is *plain* when its AST has no checks (`Schema.Int`'s is one), no encoding (transformations, classes,
 * `Schema.Uint8Array` and other declarations) and is one of: `Number`, `String`, `Boolean`, `Null`,
 * `Undefined`, a `Literal`, a `Union` of plain members (so `Literals`), or a `Struct` of required plain
 * properties without index signatures. Its encoded value is the value itself, which structured clone copies as
 * is, so the sender checks it with the guard below and sends it, and the receiver takes it unchanged. A value
 * that fails the guard, and a Struct value with keys the Struct does not declare (decoding would strip them),
 * go through the full Schema path, which gives the same result and the issue text.
 *
 * @internal
 */
import type * as AST from "effect/SchemaAST"

/** A guard for a plain Schema's values, or `undefined` when the Schema is not plain. @internal */
export type PlainGuard = ((u: unknown) => boolean) | undefined

// `null`: not plain (one lookup per value on the hot path, whichever the answer)
const cache = new WeakMap<AST.AST, ((u: unknown) => boolean) | null>()

/** @internal */
export const plainGuard = (schema: { readonly ast: AST.AST }): PlainGuard => {
  const ast = schema.ast
  const cached = cache.get(ast)
  if (cached !== undefined) return cached ?? undefined
  const guard = compile(ast, 0)
  cache.set(ast, guard ?? null)
  return guard
}

const compile = (ast: AST.AST, depth: number): PlainGuard => {
  if (depth > 8 || ast.checks !== undefined || ast.encoding !== undefined) return undefined
  switch (ast._tag) {
    case "Number":
      return (u) => typeof u === "number"
    case "String":
      return (u) => typeof u === "string"
    case "Boolean":
      return (u) => typeof u === "boolean"
    case "Null":
      return (u) => u === null
    case "Undefined":
      return (u) => u === undefined
    case "Literal": {
      const literal = ast.literal
      return typeof literal === "bigint" ? undefined : (u) => u === literal
    }
    case "Union": {
      if (ast.encodingChecks !== undefined) return undefined
      const members: Array<(u: unknown) => boolean> = []
      for (const type of ast.types) {
        const member = compile(type, depth + 1)
        if (member === undefined) return undefined
        members.push(member)
      }
      return (u) => {
        for (const member of members) if (member(u)) return true
        return false
      }
    }
    case "Objects": {
      if (ast.indexSignatures.length > 0 || ast.encodingChecks !== undefined) return undefined
      const keys: Array<PropertyKey> = []
      const guards: Array<(u: unknown) => boolean> = []
      for (const property of ast.propertySignatures) {
        if (typeof property.name !== "string" || property.type.context?.isOptional === true) return undefined
        const guard = compile(property.type, depth + 1)
        if (guard === undefined) return undefined
        keys.push(property.name)
        guards.push(guard)
      }
      const size = keys.length
      return (u) => {
        if (typeof u !== "object" || u === null || Array.isArray(u)) return false
        const proto = Object.getPrototypeOf(u)
        if ((proto !== Object.prototype && proto !== null) || Object.keys(u).length !== size) return false
        for (let i = 0; i < size; i++) {
          if (!guards[i]((u as Record<PropertyKey, unknown>)[keys[i]])) return false
        }
        return true
      }
    }
    default:
      return undefined
  }
}
