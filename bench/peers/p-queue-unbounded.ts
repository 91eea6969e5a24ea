/** p-queue with its default unbounded queue. */
import { make } from "./p-queue.ts"

export const peer = make(false)
