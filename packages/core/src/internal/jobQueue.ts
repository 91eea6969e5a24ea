/**
 * The queue of accepted jobs that have not started.
 *
 * Two representations:
 * - FIFO (a linked list), used while no job has a priority or a key: O(1) everything, the hot path.
 * - ordered (a binary heap on (score, sequence)), switched to for good by the first job with a priority or a
 *   key. A job's score is its priority, plus its age when aging is on: with linear aging the order of two
 *   queued jobs never changes, so `priority - submittedAt / agingInterval` is a static key.
 *
 * Jobs whose key is at its concurrency or rate limit are parked on their key, in score order, so that they
 * never block other keys; they come back to the heap (keeping their score) when their key frees up.
 */

/** What the queue needs of a job. */
export interface Node {
  prev: Node | undefined
  next: Node | undefined
  score: number
  seq: number
  heapIndex: number
  where: Where
  readonly key: string | undefined
  readonly priority: number
}

/** Where a queued job sits. */
export const Where = {
  None: 0,
  List: 1,
  Heap: 2,
  Parked: 3
} as const
export type Where = typeof Where[keyof typeof Where]

/** A doubly linked list threaded through the nodes' `prev`/`next` fields. */
export class NodeList<N extends Node> {
  head: N | undefined = undefined
  tail: N | undefined = undefined
  size = 0
  push(node: N): void {
    node.prev = this.tail
    node.next = undefined
    if (this.tail === undefined) this.head = node
    else this.tail.next = node
    this.tail = node
    this.size++
  }
  remove(node: N): void {
    if (node.prev === undefined) this.head = node.next as N | undefined
    else node.prev.next = node.next
    if (node.next === undefined) this.tail = node.prev as N | undefined
    else node.next.prev = node.prev
    node.prev = node.next = undefined
    this.size--
  }
  toArray(): Array<N> {
    const out: Array<N> = []
    for (let node = this.head; node !== undefined; node = node.next as N | undefined) out.push(node)
    return out
  }
}

/** Whether `a` starts before `b`. */
const before = (a: Node, b: Node): boolean => a.score > b.score || (a.score === b.score && a.seq < b.seq)

/** The limit of starts in any window of `intervalMillis`: a ring of the last `limit` start times. */
export class SlidingLog {
  readonly limit: number
  readonly intervalMillis: number
  readonly times: Array<number>
  count = 0
  index = 0
  constructor(limit: number, intervalMillis: number) {
    this.limit = limit
    this.intervalMillis = intervalMillis
    // grows to `limit` entries, then is used as a ring: a huge limit never allocates a sparse array
    this.times = []
  }
  /** When a start is next allowed (at or before `now` means now). */
  nextAt(): number {
    return this.count < this.limit ? Number.NEGATIVE_INFINITY : this.times[this.index] + this.intervalMillis
  }
  allows(now: number): boolean {
    return this.count < this.limit || this.times[this.index] + this.intervalMillis <= now
  }
  /** When the last start leaves the window: from then on the log limits nothing. */
  idleAt(): number {
    if (this.count === 0) return Number.NEGATIVE_INFINITY
    return this.times[(this.index + this.limit - 1) % this.limit] + this.intervalMillis
  }
  record(now: number): void {
    if (this.times.length < this.limit) this.times.push(now)
    else this.times[this.index] = now
    this.index = (this.index + 1) % this.limit
    if (this.count < this.limit) this.count++
  }
}

/** The state of one key: how many of its jobs run, its parked jobs, its rate limiter. */
export class KeyState<N extends Node> {
  readonly key: string
  running = 0
  readonly parked = new NodeList<N>()
  readonly limiter: SlidingLog | undefined
  constructor(key: string, limiter: SlidingLog | undefined) {
    this.key = key
    this.limiter = limiter
  }
}

export class JobQueue<N extends Node> {
  readonly list = new NodeList<N>()
  readonly heap: Array<N> = []
  ordered = false
  /** Every queued job: ready (list or heap) and parked. */
  size = 0
  parked = 0

  get ready(): number {
    return this.size - this.parked
  }

  /** Switches to the ordered representation, keeping the current order. */
  makeOrdered(): void {
    if (this.ordered) return
    this.ordered = true
    for (let node = this.list.head; node !== undefined; node = this.list.head) {
      this.list.remove(node)
      this.heapPush(node)
    }
  }

  push(node: N): void {
    this.size++
    if (this.ordered) this.heapPush(node)
    else {
      node.where = Where.List
      this.list.push(node)
    }
  }

  /** The ready job that starts next. */
  peek(): N | undefined {
    return this.ordered ? this.heap[0] : this.list.head
  }

  /** Removes a queued job, wherever it is. */
  remove(node: N, keyState?: KeyState<N>): void {
    switch (node.where) {
      case Where.List:
        this.list.remove(node)
        break
      case Where.Heap:
        this.heapRemove(node)
        break
      case Where.Parked:
        keyState!.parked.remove(node)
        this.parked--
        break
      default:
        return
    }
    node.where = Where.None
    this.size--
  }

  park(node: N, keyState: KeyState<N>): void {
    this.heapRemove(node)
    node.where = Where.Parked
    keyState.parked.push(node)
    this.parked++
  }

  unparkHead(keyState: KeyState<N>): boolean {
    const node = keyState.parked.head
    if (node === undefined) return false
    keyState.parked.remove(node)
    this.parked--
    this.heapPush(node)
    return true
  }

  /**
   * The job a full `"sliding"` queue pushes out: the oldest among the lowest base priority (in FIFO mode,
   * simply the oldest).
   */
  victim(): N | undefined {
    if (!this.ordered) return this.list.head
    let victim: N | undefined
    const consider = (node: N) => {
      if (
        victim === undefined || node.priority < victim.priority ||
        (node.priority === victim.priority && node.seq < victim.seq)
      ) victim = node
    }
    for (const node of this.heap) consider(node)
    return victim
  }

  /**
   * In FIFO mode, takes the whole queue out at once as its chain of nodes (O(1): the nodes keep their
   * `next` links, and each is marked out of the queue by the caller as it walks them). Undefined in ordered
   * mode, where `drain` is the way.
   */
  takeChain(): { readonly head: N | undefined; readonly size: number } | undefined {
    if (this.ordered) return undefined
    const chain = { head: this.list.head, size: this.list.size }
    this.list.head = this.list.tail = undefined
    this.list.size = 0
    this.size = 0
    return chain
  }

  /** Takes every queued job out at once (in start order, then the parked ones): the queue is empty after. */
  drain(parkedIterable: Iterable<KeyState<N>>): Array<N> {
    const parkedLists = [...parkedIterable]
    const all = this.toArray(parkedLists)
    for (let i = 0; i < all.length; i++) {
      const node = all[i]
      node.where = Where.None
      node.prev = node.next = undefined
      node.heapIndex = -1
    }
    this.list.head = this.list.tail = undefined
    this.list.size = 0
    this.heap.length = 0
    for (const keyState of parkedLists) {
      keyState.parked.head = keyState.parked.tail = undefined
      keyState.parked.size = 0
    }
    this.size = 0
    this.parked = 0
    return all
  }

  toArray(parkedLists: Iterable<KeyState<N>>): Array<N> {
    const ready = this.ordered ? [...this.heap].sort((a, b) => (before(a, b) ? -1 : 1)) : this.list.toArray()
    for (const keyState of parkedLists) ready.push(...keyState.parked.toArray())
    return ready
  }

  // ---- binary heap ----

  heapPush(node: N): void {
    node.where = Where.Heap
    node.heapIndex = this.heap.length
    this.heap.push(node)
    this.siftUp(node.heapIndex)
  }

  heapRemove(node: N): void {
    const index = node.heapIndex
    const last = this.heap.pop()!
    if (index < this.heap.length) {
      this.heap[index] = last
      last.heapIndex = index
      this.siftUp(index)
      this.siftDown(last.heapIndex)
    }
    node.heapIndex = -1
  }

  siftUp(index: number): void {
    const heap = this.heap
    const node = heap[index]
    while (index > 0) {
      const parentIndex = (index - 1) >> 1
      const parent = heap[parentIndex]
      if (!before(node, parent)) break
      heap[index] = parent
      parent.heapIndex = index
      index = parentIndex
    }
    heap[index] = node
    node.heapIndex = index
  }

  siftDown(index: number): void {
    const heap = this.heap
    const length = heap.length
    const node = heap[index]
    while (true) {
      const left = 2 * index + 1
      if (left >= length) break
      const right = left + 1
      const child = right < length && before(heap[right], heap[left]) ? right : left
      if (!before(heap[child], node)) break
      heap[index] = heap[child]
      heap[index].heapIndex = index
      index = child
    }
    heap[index] = node
    node.heapIndex = index
  }
}
