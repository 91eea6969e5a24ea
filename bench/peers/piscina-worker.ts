/** The piscina worker of the shutdown scenario: sleeps `ms`, then returns 1. */
import { setTimeout } from "node:timers/promises"

export default async ({ ms }: { readonly ms: number }): Promise<number> => {
  await setTimeout(ms)
  return 1
}
