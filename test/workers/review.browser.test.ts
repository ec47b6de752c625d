/**
 * The review pages and /docs served by the Worker in workerd (Postgres through Hyperdrive), in a
 * real browser: login with a key, the list, a proposal, a refused and a stored correction, the
 * queue, and /docs with nothing leaving the machine. Needs TEST_DATABASE_URL (like every Worker
 * suite; skipped locally without it).
 */
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { blockOtherOrigins, launchChromium, screenshot } from "../review/browser.ts";
import { TEST_DATABASE_URL } from "../support/db.ts";
import { createEdgeHarness, type EdgeHarness, WORKERS_TARGET } from "../support/edge.ts";

describe.skipIf(!TEST_DATABASE_URL)(
  "the review pages on the Worker (needs TEST_DATABASE_URL)",
  () => {
    let h: EdgeHarness;
    let browser: Browser;
    let page: Page;
    let base: string;
    let tx: string;
    let outside: string[];
    beforeAll(async () => {
      h = await createEdgeHarness({ target: WORKERS_TARGET });
      base = h.baseUrl;
      const res = await h.post("/propose_trade_adjustments/", {
        prompt: "NVDA fell 6% on earnings. Adjust my long?",
        max_length: 64,
      });
      expect(res.status).toBe(200);
      tx = ((await res.json()) as { transaction_id: string }).transaction_id;
      browser = await launchChromium();
      page = await (await browser.newContext({ viewport: { width: 1366, height: 800 } })).newPage();
      outside = await blockOtherOrigins(page, base);
    });
    afterAll(async () => {
      await browser?.close();
      await h?.close();
    });

    it("asks for a key, then lists the proposal", async () => {
      await page.goto(`${base}/review`);
      expect(new URL(page.url()).pathname).toBe("/review/login");
      await page.fill("#key", "worker-test-key");
      await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
      expect(new URL(page.url()).pathname).toBe("/review");
      const row = page.locator("#rows tr").first();
      expect(await row.locator("td").nth(1).textContent()).toBe("NVDA");
      await screenshot(page, "workers-review-list");
    });

    it("refuses confidence 1.5 on the page, stores a valid correction", async () => {
      await Promise.all([page.waitForNavigation(), page.locator("#rows tr a").first().click()]);
      expect(page.url()).toBe(`${base}/review/${tx}`);
      expect(await page.locator("#prompt").textContent()).toContain("NVDA fell 6%");
      await page.fill("#f-confidence", "1.5");
      await page.click("form[data-proposal-form] button[type=submit]");
      await expect
        .poll(() => page.locator("#e-confidence").textContent())
        .toBe("Confidence must be between 0 and 1 (got 1.5).");
      expect((await h.recorded()).feedback).toEqual([]);
      await page.fill("#f-confidence", "0.7");
      await page.selectOption("#f-action", "pass");
      await Promise.all([
        page.waitForURL(/stored=/),
        page.click("form[data-proposal-form] button[type=submit]"),
      ]);
      expect(await page.locator("#stored-notice").textContent()).toMatch(/Stored correction #\d+/);
      const [line] = (await h.recorded()).feedback;
      expect(line?.corrected_proposal).toMatchObject({
        ticker: "NVDA",
        action: "pass",
        confidence: 0.7,
      });
    });

    it("serves the queue", async () => {
      await page.goto(`${base}/review/queue`);
      expect(await page.locator("#queue-empty").textContent()).toContain("Nothing left");
    });

    it("renders /docs from the Worker's own bundle, nothing fetched from outside", {
      timeout: 120_000,
    }, async () => {
      await page.goto(`${base}/docs`);
      await page
        .getByText("A trade proposal from Phi-3 (schema-constrained JSON)")
        .first()
        .waitFor({ timeout: 60_000 });
      expect(outside).toEqual([]);
    });
  },
);
