import { Schema } from "effect"

/** Cases per property: 200 in `npm test`; `FIBERPOOL_PROPERTY_RUNS=10000` for a long run. */
export const runs = Number(process.env.FIBERPOOL_PROPERTY_RUNS ?? 200)

/**
 * Options of every property test: the number of cases, a size that lets arrays reach their maximum length
 * (the default keeps early cases tiny), and a timeout that grows with the cases.
 */
export const propertyOptions = { timeout: Math.max(30_000, runs * 150), arbitrary: { runs, size: 100 } }

/** The unit of time of the generated scripts, in milliseconds of the TestClock. */
export const Step = 10

/** An integer in [minimum, maximum]. */
export const between = (minimum: number, maximum: number) => Schema.Int.check(Schema.isBetween({ minimum, maximum }))
