/**
 * Group commit: many callers' writes become one statement. A write that arrives while no statement is running
 * starts one at once (no added latency when the store is idle); writes that arrive while one runs wait for it
 * and go together in the next, up to `maxSize` a statement. Under load, N concurrent acknowledgements cost one
 * round trip instead of N, which is how pg-boss completes its batches.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Scope from "effect/Scope"

/** @internal */
export interface GroupCommit<A, E> {
  /** Adds an item to the next statement; succeeds or fails with the statement that wrote it. */
  readonly write: (item: A) => Effect.Effect<void, E>
  /** Adds items to the next statement (more than one when they exceed `maxSize`); fails if any of those fails. */
  readonly writeAll: (items: ReadonlyArray<A>) => Effect.Effect<void, E>
  /**
   * Takes the next group no statement has started yet, for a statement of the caller's to write it (a claim that
   * completes the jobs settled since the last one, say): the caller then ends it (`end`, its writers see the exit)
   * or gives it back to be written as usual (`giveBack`). Undefined when no group waits.
   */
  readonly takeNext: () => Taken<A> | undefined
}

/** @internal A group taken by `takeNext`. */
export interface Taken<A> {
  readonly items: ReadonlyArray<A>
  readonly end: () => void
  readonly giveBack: Effect.Effect<void>
}

interface Group<A, E> {
  readonly items: Array<A>
  readonly done: Deferred.Deferred<void, E>
}

/**
 * `flush` writes one group of items in one statement (retrying as it sees fit); its failure fails every caller
 * of that group. The statements run one at a time, in a fiber of the given scope: closing the scope interrupts a
 * running one, whose callers then see the interruption.
 * @internal
 */
export const make = <A, E>(options: {
  readonly maxSize: number
  readonly flush: (items: ReadonlyArray<A>) => Effect.Effect<void, E>
}): Effect.Effect<GroupCommit<A, E>, never, Scope.Scope> =>
  Effect.gen(function*() {
    const scope = yield* Effect.scope
    const groups: Array<Group<A, E>> = []
    let running = false
    let closed = false

    // runs the groups one statement at a time until none is left
    const drain: Effect.Effect<void> = Effect.suspend(function loop(): Effect.Effect<void> {
      const group = groups.shift()
      if (group === undefined) {
        running = false
        return Effect.void
      }
      return options.flush(group.items).pipe(
        Effect.onExit((exit) => Effect.sync(() => Deferred.doneUnsafe(group.done, exit))),
        Effect.exit,
        Effect.flatMap(loop)
      )
    })

    // the group the item joins: the last one, unless it is full
    const add = (item: A): Group<A, E> => {
      let group = groups.at(-1)
      if (group === undefined || group.items.length >= options.maxSize) {
        group = { items: [], done: Deferred.makeUnsafe<void, E>() }
        groups.push(group)
      }
      group.items.push(item)
      return group
    }
    // the statements start on the scheduler's next turn, so that writes made in this same turn join the first
    // starts the statements unless they run
    const start = (): Effect.Effect<void> => {
      if (running) return Effect.void
      running = true
      return Effect.asVoid(Effect.forkIn(drain, scope))
    }
    const await_ = (done: Effect.Effect<void, E>): Effect.Effect<void, E> =>
      running ? done : Effect.andThen(start(), done)

    const write = (item: A): Effect.Effect<void, E> =>
      Effect.suspend(() => {
        // the scope is closed: no fiber could write this item
        if (closed) return Effect.interrupt
        return await_(Deferred.await(add(item).done))
      })

    const writeAll = (items: ReadonlyArray<A>): Effect.Effect<void, E> =>
      Effect.suspend(() => {
        if (closed) return Effect.interrupt
        if (items.length === 0) return Effect.void
        let last: Group<A, E> | undefined
        const earlier: Array<Deferred.Deferred<void, E>> = []
        for (let i = 0; i < items.length; i++) {
          const group = add(items[i])
          if (last !== undefined && group !== last) earlier.push(last.done)
          last = group
        }
        // the groups are written in order: the last one's end comes after the others'
        const done = earlier.length === 0
          ? Deferred.await(last!.done)
          : Effect.andThen(Effect.forEach(earlier, Deferred.await, { discard: true }), Deferred.await(last!.done))
        return await_(done)
      })

    const takeNext = (): Taken<A> | undefined => {
      if (closed) return undefined
      const group = groups.shift()
      if (group === undefined) return undefined
      return {
        items: group.items,
        end: () => Deferred.doneUnsafe(group.done, Exit.void),
        giveBack: Effect.suspend(() => {
          if (closed) {
            Deferred.doneUnsafe(group.done, Exit.interrupt())
            return Effect.void
          }
          groups.unshift(group)
          return start()
        })
      }
    }

    yield* Scope.addFinalizer(
      scope,
      Effect.sync(() => {
        closed = true
        for (const group of groups.splice(0)) Deferred.doneUnsafe(group.done, Exit.interrupt())
      })
    )
    return { write, writeAll, takeNext }
  })
