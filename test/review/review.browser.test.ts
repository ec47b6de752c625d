/**
 * The review page in a real browser (Debian's Chromium through playwright-core) against the edge
 * on a real port (in process, stand-in GPU node, PGlite): the feedback loop end to end, the queue,
 * and /docs with nothing leaving the machine. Screenshots of each view go to docs/screenshots/.
 */
import { count, eq } from "drizzle-orm";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { feedbackItems } from "../../db/schema/feedback.ts";
import { proposals } from "../../db/schema/proposals.ts";
import {
  blockOtherOrigins,
  launchChromium,
  type ReviewServer,
  screenshot,
  startReviewServer,
} from "./browser.ts";

let browser: Browser;
beforeAll(async () => {
  browser = await launchChromium();
});
afterAll(async () => {
  await browser?.close();
});

async function newPage(): Promise<Page> {
  const context = await browser.newContext({ viewport: { width: 1366, height: 800 } });
  return context.newPage();
}

/** Form controls a screen reader could not name (no label, no aria-label). */
const unlabelled = (page: Page) =>
  page.evaluate(() =>
    [...document.querySelectorAll<HTMLInputElement>("input, select, textarea, button")]
      .filter((el) => el.type !== "hidden")
      .filter(
        (el) => !(el.labels?.length || el.getAttribute("aria-label") || el.textContent?.trim()),
      )
      .map((el) => el.outerHTML.slice(0, 80)),
  );

const feedbackCount = async (s: ReviewServer) =>
  Number((await s.db.db.select({ n: count() }).from(feedbackItems))[0]?.n ?? -1);

describe("the feedback loop in a browser (open on loopback, no API_KEYS)", () => {
  let s: ReviewServer;
  let page: Page;
  let firstTx: string;
  beforeAll(async () => {
    s = await startReviewServer();
    const res = await s.post("/propose_trade_adjustments/", {
      prompt: "AAPL broke below its 20-day moving average on heavy volume. Adjust my long?",
      max_length: 64,
    });
    expect(res.status).toBe(200);
    firstTx = ((await res.json()) as { transaction_id: string }).transaction_id;
    page = await newPage();
  });
  afterAll(async () => {
    await page?.context().close();
    await s?.close();
  });

  it("lists the proposal with its fields and feedback count", async () => {
    await page.goto(`${s.url}/review`);
    const row = page.locator("#rows tr").first();
    await expect.poll(() => row.locator("td").nth(1).textContent()).toBe("AAPL");
    expect(await row.locator("td").nth(2).textContent()).toBe("adjust");
    expect(await row.locator("td").nth(3).textContent()).toBe("LONG");
    expect(await row.locator("td").nth(4).textContent()).toBe("0.50");
    expect(await row.locator("td").nth(5).textContent()).toContain("Stand-in proposal for AAPL");
    expect(await row.locator("td").nth(6).textContent()).toBe("0");
    expect(await unlabelled(page)).toEqual([]);
  });

  it("refuses a confidence of 1.5 on the page: a message at the field, nothing sent or stored", async () => {
    await page.locator("#rows tr a").first().click();
    await page.waitForURL(`${s.url}/review/${firstTx}`);
    expect(await page.locator("#prompt").textContent()).toContain("20-day moving average");
    expect(await page.locator("#examples-used").textContent()).toContain("No worked examples");
    expect(await page.locator("#hermes-h + pre").textContent()).toContain("Echo:");
    // Prefilled from the proposal.
    expect(await page.inputValue("#f-ticker")).toBe("AAPL");
    expect(await page.inputValue("#f-action")).toBe("adjust");
    expect(await page.inputValue("#f-new_stop_pct")).toBe("5");
    expect(await page.inputValue("#f-new_target_pct")).toBe("");
    expect(await unlabelled(page)).toEqual([]);
    // Tab order follows the form: ticker, action, side, stop, target, confidence, rationale.
    await page.focus("#f-ticker");
    const order = [];
    for (let i = 0; i < 6; i++) {
      await page.keyboard.press("Tab");
      order.push(await page.evaluate(() => document.activeElement?.id));
    }
    expect(order).toEqual([
      "f-action",
      "f-side",
      "f-new_stop_pct",
      "f-new_target_pct",
      "f-confidence",
      "f-rationale",
    ]);
    await screenshot(page, "review-proposal");

    const posts: string[] = [];
    page.on("request", (r) => {
      if (r.method() === "POST") posts.push(r.url());
    });
    await page.fill("#f-confidence", "1.5");
    await page.fill("#f-rationale", "Too confident.");
    await page.click("form[data-proposal-form] button[type=submit]");
    await expect
      .poll(() => page.locator("#e-confidence").textContent())
      .toBe("Confidence must be between 0 and 1 (got 1.5).");
    expect(await page.getAttribute("#f-confidence", "aria-invalid")).toBe("true");
    // The focus moves to the field to fix.
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("f-confidence");
    expect(await page.locator("#form-error").textContent()).toContain("Nothing was sent");
    expect(page.url()).toBe(`${s.url}/review/${firstTx}`);
    expect(posts).toEqual([]);
    expect(await feedbackCount(s)).toBe(0);
    await screenshot(page, "review-refused");
  });

  it("the feedback service checks the schema again when the page's check is bypassed", async () => {
    // The same post without the page's script (a tampered or script-less client).
    const csrf = await page.inputValue("input[name=_csrf]");
    const res = await page.request.post(`${s.url}/review/${firstTx}/feedback`, {
      form: {
        _csrf: csrf,
        ticker: "AAPL",
        action: "adjust",
        side: "LONG",
        new_stop_pct: "5",
        new_target_pct: "",
        confidence: "1.5",
        rationale: "x",
        return: "proposal",
      },
      maxRedirects: 0,
    });
    expect(res.status()).toBe(422);
    expect(await res.text()).toContain("Confidence must be between 0 and 1 (got 1.5).");
    expect(await feedbackCount(s)).toBe(0);
  });

  it("stores a valid correction and shows the stored item", async () => {
    await page.fill("#f-confidence", "0.8");
    await page.selectOption("#f-action", "pass");
    await page.selectOption("#f-side", "");
    await page.fill("#f-new_stop_pct", "");
    await page.fill("#f-rationale", "Wait for the close before acting on a single heavy day.");
    await page.check("input[name=rating][value='2']");
    await page.fill("#f-comment", "Too eager to adjust.");
    await page.click("form[data-proposal-form] button[type=submit]");
    await page.waitForURL(/\?stored=\d+/);
    const notice = page.locator("#stored-notice");
    expect(await notice.textContent()).toMatch(/Stored correction #\d+/);
    expect(await notice.locator("[data-field=action]").textContent()).toBe("pass");
    expect(await notice.locator("[data-field=side]").textContent()).toBe("—");
    expect(await notice.locator("[data-field=confidence]").textContent()).toBe("0.8");
    expect(await notice.textContent()).toContain("Rating: 2 / 5");
    expect(await notice.textContent()).toContain("Used as an example in 0 later proposals.");
    const [item] = await s.db.db.select().from(feedbackItems);
    expect(item?.feedbackType).toBe("correction");
    expect(item?.correctedProposal).toEqual({
      ticker: "AAPL",
      action: "pass",
      new_stop_pct: null,
      new_target_pct: null,
      confidence: 0.8,
      rationale: "Wait for the close before acting on a single heavy day.",
    });
    expect(item?.feedbackContent).toEqual({ rating: 2, comment: "Too eager to adjust." });
    await screenshot(page, "review-stored");
  });

  it("a new proposal appears in the open list without a reload", async () => {
    await page.goto(`${s.url}/review`);
    expect(await page.locator("#rows tr").count()).toBe(1);
    const marker = await page.evaluate(() => {
      (window as unknown as { marker: number }).marker = 42;
      return 42;
    });
    const res = await s.post("/propose_trade_adjustments/", {
      prompt: "AAPL gapped down at the open on heavy volume. Adjust my long?",
      max_length: 64,
    });
    expect(res.status).toBe(200);
    await page.locator("#rows tr").nth(1).waitFor({ timeout: 20_000 });
    // Same document: no reload happened.
    expect(await page.evaluate(() => (window as unknown as { marker: number }).marker)).toBe(
      marker,
    );
    expect(await page.locator("#live").textContent()).toBe("1 new proposal arrived.");
    const top = page.locator("#rows tr").first();
    expect(await top.getAttribute("class"), await page.locator("#rows").innerHTML()).toBe("fresh");
    expect(await top.locator("td").nth(6).textContent()).toBe("0");
    await screenshot(page, "review-list");
  });

  it("the next similar proposal used the correction as an example, and both pages say so", async () => {
    const [latest] = await s.db.db
      .select()
      .from(proposals)
      .where(eq(proposals.endpoint, "propose_trade_adjustments"))
      .orderBy(proposals.createdAt);
    expect(latest).toBeDefined();
    const [item] = await s.db.db.select().from(feedbackItems);
    await page.locator("#rows tr a").first().click();
    await page.waitForURL(/\/review\/[0-9a-f-]{36}$/);
    expect(page.url()).not.toContain(firstTx);
    expect(await page.locator("#examples-used").textContent()).toContain("1 worked example used");
    const link = page.locator("ol.examples a").first();
    expect(await link.textContent()).toContain(`Correction #${item?.id} (AAPL, pass)`);
    expect(await page.locator("#augmented-prompt").textContent()).toContain(
      "Wait for the close before acting",
    );
    await page.evaluate(() => document.querySelector("#aug-h")?.scrollIntoView());
    await screenshot(page, "review-proposal-with-example");
    await link.click();
    await page.waitForURL(`${s.url}/review/${firstTx}#feedback-${item?.id}`);
    expect(await page.locator(`#feedback-${item?.id} .used-in`).textContent()).toBe(
      "Used as an example in 1 later proposal.",
    );
  });

  it("filters the list by ticker and feedback", async () => {
    await page.goto(`${s.url}/review`);
    await page.selectOption("#feedback", "with");
    await page.click("form.filters button[type=submit]");
    await page.waitForURL(/feedback=with/);
    expect(await page.locator("#rows tr").count()).toBe(1);
    expect(await page.locator("#rows tr td").nth(6).textContent()).toBe("1");
    await page.goto(`${s.url}/review?ticker=MSFT`);
    expect(await page.locator("#rows tr").count()).toBe(0);
    expect(await page.locator("#empty").textContent()).toBe("No proposals match.");
  });
});

describe("the queue in a browser", () => {
  let s: ReviewServer;
  let page: Page;
  const tickers = ["NVDA", "TSLA", "AMZN"];
  beforeAll(async () => {
    s = await startReviewServer();
    for (const t of tickers) {
      const res = await s.post("/generate/phi3/", { prompt: `${t} ran up 8% this week. Trim?` });
      expect(res.status).toBe(200);
      s.clock.advance(1000);
    }
    page = await newPage();
  });
  afterAll(async () => {
    await page?.context().close();
    await s?.close();
  });

  const current = () => page.locator("#f-ticker").inputValue();

  /** Presses a shortcut that navigates, and waits for the new page (and its script). */
  const go = async (key: string) => {
    const loaded = page.waitForNavigation();
    await page.keyboard.press(key);
    await loaded;
  };

  it("shows proposals without feedback oldest first, moves with n and p", async () => {
    await page.goto(`${s.url}/review/queue`);
    expect(await current()).toBe("NVDA");
    expect(await page.locator("h1").textContent()).toContain("3 without feedback");
    await screenshot(page, "review-queue");
    await go("n");
    expect(await current()).toBe("TSLA");
    await go("n");
    expect(await current()).toBe("AMZN");
    expect(await page.locator("#queue-next").count()).toBe(0);
    await go("p");
    expect(await current()).toBe("TSLA");
    await go("p");
    expect(await current()).toBe("NVDA");
    expect(await page.locator("#queue-prev").count()).toBe(0);
  });

  it("rates with the keyboard, saves with Ctrl+Enter and moves on to the next", async () => {
    await page.keyboard.press("4");
    expect(await page.isChecked("input[name=rating][value='4']")).toBe(true);
    await page.keyboard.press("e");
    expect(await page.evaluate(() => document.activeElement?.id)).toBe("f-ticker");
    // Typing in a field does not trigger the shortcuts.
    await page.keyboard.press("Escape");
    await go("Control+Enter");
    expect(page.url()).toMatch(/stored=\d+/);
    expect(await page.locator("#stored-notice").textContent()).toContain("Stored rating");
    expect(await page.locator("#stored-notice").textContent()).toContain("Rating: 4 / 5");
    expect(await current()).toBe("TSLA");
    expect(await page.locator("h1").textContent()).toContain("2 without feedback");
    const [item] = await s.db.db.select().from(feedbackItems);
    expect(item?.feedbackType).toBe("rating");
    expect(item?.correctedProposal).toBeNull();
  });

  it("with nothing to change, rate or say, the form stores nothing and says why", async () => {
    await page.keyboard.press("Control+Enter");
    await expect
      .poll(() => page.locator("#form-error").textContent())
      .toContain("Nothing to store");
    expect(await feedbackCount(s)).toBe(1);
  });
});

describe("/docs in a browser", () => {
  let s: ReviewServer;
  beforeAll(async () => {
    s = await startReviewServer();
  });
  afterAll(async () => {
    await s?.close();
  });

  it("renders the API reference with no request leaving the machine", {
    timeout: 120_000,
  }, async () => {
    const page = await newPage();
    const outside = await blockOtherOrigins(page, s.url);
    const local: string[] = [];
    page.on("request", (r) => local.push(r.url()));
    await page.goto(`${s.url}/docs`);
    await page
      .getByText("A trade proposal from Phi-3 (schema-constrained JSON)")
      .first()
      .waitFor({ timeout: 60_000 });
    expect(local).toContain(`${s.url}/docs/assets/api-reference.js`);
    expect(local).toContain(`${s.url}/openapi.json`);
    await screenshot(page, "docs");
    expect(outside).toEqual([]);
    await page.context().close();
  });
});
