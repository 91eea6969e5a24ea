// The dashboard in a real browser: headless Chromium (Debian's `chromium` package) loads the page of the running
// 08-dashboard example, sees the numbers change as jobs run, is refused a requeue without the token, requeues a
// dead letter with it and sees the job run, cancels a queued and a running pool job and a delayed durable job and
// sees them cancelled. Saves a screenshot (path printed). Fails, never skips, without
// Chromium.
import { assert, describe, it } from "@effect/vitest"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import { findChromium, launch } from "../../packages/node/test/utils/cdp.ts"
import { exitWithin, run } from "../../packages/node/test/utils/spawn.ts"

const root = fileURLToPath(new URL("../..", import.meta.url))
const example = fileURLToPath(new URL("../08-dashboard.ts", import.meta.url))
const screenshotPath = process.env.FIBERPOOL_DASHBOARD_SCREENSHOT ??
  Path.join(Os.tmpdir(), "fiberpool-dashboard", "dashboard.png")

const stat = (pool: string, key: string) =>
  `Number(document.querySelector('[data-pool="${pool}"] [data-stat="${key}"]')?.textContent ?? NaN)`

describe("NodeDashboard in headless Chromium", () => {
  it("shows live numbers, and a dead letter requeued from the page runs", { timeout: 90_000 }, async () => {
    const chromium = findChromium()
    assert.ok(chromium, "chromium is not installed: apt-get install -y chromium (or set CHROMIUM_PATH)")

    const token = "browser-test-token"
    const service = run(example, ["--serve"], root, { DASHBOARD_TOKEN: token })
    const browser = await launch(chromium)
    try {
      const url = (await service.waitForLine(/^dashboard: http:\/\/127\.0\.0\.1:\d+\/$/)).slice("dashboard: ".length)
      await service.waitForLine(/^mail server back up/)
      const { page } = browser
      await page.navigate(url)
      await page.waitFor(`document.querySelector("#status")?.textContent.startsWith("live")`, "the live badge")

      // The numbers move as jobs run.
      const first = await page.waitFor<number>(
        `${stat("orders", "succeeded")} >= 1 && ${stat("orders", "succeeded")}`,
        "a succeeded order"
      )
      await page.waitFor(`${stat("orders", "succeeded")} > ${first}`, "more succeeded orders")
      await page.waitFor(`${stat("orders", "failed")} >= 1`, "a failed order")
      await page.waitFor(`document.querySelector('[data-pool="orders"] [data-running] td')`, "a running job row")
      await page.waitFor(
        `document.querySelector('[data-pool="orders"] [data-failures]')?.textContent.includes("PaymentDeclined")`,
        "a failure with its cause"
      )
      await page.waitFor(`document.querySelectorAll('[data-pool="orders"] svg rect').length > 0`, "throughput bars")

      // Three dead letters with their reason.
      await page.waitFor(`document.querySelectorAll("[data-dead-letter]").length === 3`, "3 dead letters")
      assert.include(
        await page.evaluate<string>(`document.querySelector('[data-dead-letter="invoice-2"]').textContent`),
        "SMTP 421"
      )
      const sentBefore = await page.evaluate<number>(stat("invoices", "succeeded"))

      // Without the token the guard refuses, and the dead letter stays.
      await page.evaluate(`document.querySelector('[data-dead-letter="invoice-2"] button.requeue').click()`)
      await page.waitFor(
        `document.querySelector("#message").textContent.includes("401 Unauthorized")`,
        "the 401 message"
      )
      assert.strictEqual(await page.evaluate<number>(`document.querySelectorAll("[data-dead-letter]").length`), 3)

      // With it, the job is requeued, leaves the dead letters and runs.
      await page.evaluate(
        `(() => { const input = document.querySelector("#token"); input.value = ${JSON.stringify(token)};
        input.dispatchEvent(new Event("change")) })()`
      )
      await page.evaluate(`document.querySelector('[data-dead-letter="invoice-2"] button.requeue').click()`)
      await page.waitFor(
        `document.querySelector("#message").textContent === "requeue invoice-2: done"`,
        "the requeue answer"
      )
      await page.waitFor(
        `!document.querySelector('[data-dead-letter="invoice-2"]')`,
        "invoice-2 to leave the dead letters"
      )
      await service.waitForLine(/^sent invoice-2 to customer-2$/)
      await page.waitFor(`${stat("invoices", "succeeded")} > ${sentBefore}`, "the invoice worker's succeeded count")
      assert.strictEqual(await page.evaluate<number>(`document.querySelectorAll("[data-dead-letter]").length`), 2)

      // Cancel from the page: the queued export ends cancelled, the running one is interrupted, and a delayed
      // durable reminder is cancelled in the store (counted there, gone from the waiting jobs).
      const cancel = (scope: string, id: string) =>
        page.evaluate(`document.querySelector('${scope} [data-job="${id}"] button.cancel').click()`)
      const answered = (what: string) =>
        page.waitFor(`document.querySelector("#message").textContent === "cancel ${what}: done"`, `cancel ${what}`)
      await page.waitFor(
        `document.querySelector('[data-pool="exports"] [data-queued] [data-job="export-2"]')`,
        "export-2"
      )
      await cancel(`[data-pool="exports"] [data-queued]`, "export-2")
      await answered("export-2")
      await page.waitFor(`${stat("exports", "cancelled")} === 1`, "the exports pool's cancelled count")
      await page.waitFor(`!document.querySelector('[data-pool="exports"] [data-job="export-2"]')`, "export-2 to go")
      await cancel(`[data-pool="exports"] [data-running]`, "export-1")
      await answered("export-1")
      await page.waitFor(`${stat("exports", "interrupted")} === 1`, "the exports pool's interrupted count")
      await page.waitFor(`${stat("exports", "running")} === 0`, "no running export")
      const cancelledBefore = await page.evaluate<number>(
        `Number(document.querySelector('[data-queue="invoices"] [data-stat="count-cancelled"]').textContent)`
      )
      await cancel(`[data-queue="invoices"] [data-jobs]`, "reminder-1")
      await answered("reminder-1")
      await page.waitFor(
        `Number(document.querySelector('[data-queue="invoices"] [data-stat="count-cancelled"]').textContent) === ${
          cancelledBefore + 1
        }`,
        "the queue's cancelled count"
      )
      await page.waitFor(
        `!document.querySelector('[data-queue="invoices"] [data-job="reminder-1"]')`,
        "reminder-1 to go"
      )

      await page.screenshot(screenshotPath)
      console.log(`dashboard screenshot: ${screenshotPath}`)
    } finally {
      await browser.close()
      service.child.kill("SIGTERM")
      const { code } = await exitWithin(service, 20_000)
      assert.strictEqual(code, 0, service.lines.join("\n"))
    }
  })
})
