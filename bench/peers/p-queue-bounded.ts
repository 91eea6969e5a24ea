/** p-queue bounded to 100 waiting jobs through `onSizeLessThan`. */
import { make } from "./p-queue.ts"

export const peer = make(true)
