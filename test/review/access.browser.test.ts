/**
 * Access to the review pages and /docs with API_KEYS set, in a real browser: the login form, the
 * session cookie's attributes, a wrong key and the rate limit, CSRF refusal (a tampered token and
 * a forged form from another origin), logout, and an expired session.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { count } from "drizzle-orm";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { feedbackItems } from "../../db/schema/feedback.ts";
import { LOGIN_ATTEMPTS_PER_MINUTE } from "../../edge/review/routes.tsx";
import { launchChromium, type ReviewServer, screenshot, startReviewServer } from "./browser.ts";

const KEY = "review-test-key-1";
const TTL_S = 600;

let browser: Browser;
let s: ReviewServer;
let tx: string;
beforeAll(async () => {
  browser = await launchChromium();
  s = await startReviewServer({ API_KEYS: `${KEY},another-key`, SESSION_TTL_S: String(TTL_S) });
  const res = await s.post("/generate/phi3/", {
    prompt: "MSFT broke out above 450. Raise the stop?",
  });
  expect(res.status).toBe(200);
  tx = res.headers.get("x-transaction-id") ?? "";
});
afterAll(async () => {
  await browser?.close();
  await s?.close();
});

const feedbackCount = async () =>
  Number((await s.db.db.select({ n: count() }).from(feedbackItems))[0]?.n ?? -1);

async function logIn(page: Page, key = KEY) {
  await page.fill("#key", key);
  await Promise.all([page.waitForNavigation(), page.click("button[type=submit]")]);
}

describe("with API_KEYS: login, session cookie, logout, expiry", () => {
  let context: BrowserContext;
  let page: Page;
  beforeAll(async () => {
    context = await browser.newContext({ viewport: { width: 1366, height: 800 } });
    page = await context.newPage();
  });
  afterAll(async () => {
    await context?.close();
  });

  it("asks for a key, and the API itself still wants a bearer token", async () => {
    await page.goto(`${s.url}/review/${tx}`);
    expect(new URL(page.url()).pathname).toBe("/review/login");
    expect(await page.locator("label[for=key]").textContent()).toBe("API key");
    await screenshot(page, "review-login");
    const api = await fetch(`${s.url}/feedback/phi3/export?kind=log`);
    expect(api.status).toBe(401);
    // /docs without a session: to the login form; /openapi.json: 401.
    expect((await fetch(`${s.url}/docs`, { redirect: "manual" })).headers.get("location")).toBe(
      "/review/login?next=/docs",
    );
    expect((await fetch(`${s.url}/openapi.json`)).status).toBe(401);
  });

  it("a wrong key is a clear message, and nothing is set", async () => {
    await logIn(page, "not-the-key");
    expect(await page.locator("#login-error").textContent()).toBe(
      "That key is not valid. Check it and try again.",
    );
    expect(await context.cookies()).toEqual([]);
  });

  it("a valid key sets a signed HttpOnly SameSite=Strict cookie with an expiry and goes back", async () => {
    await logIn(page);
    expect(page.url()).toBe(`${s.url}/review/${tx}`);
    const [cookie] = await context.cookies();
    expect(cookie?.name).toBe("sidecar_session");
    expect(cookie?.httpOnly).toBe(true);
    expect(cookie?.sameSite).toBe("Strict");
    expect(cookie?.secure).toBe(false); // plain HTTP on loopback; Secure over HTTPS
    const ttl = (cookie?.expires ?? 0) - Date.now() / 1000;
    expect(ttl).toBeGreaterThan(TTL_S - 60);
    expect(ttl).toBeLessThanOrEqual(TTL_S + 1);
    expect(cookie?.value).not.toContain(KEY);
    // Scripts cannot read it.
    expect(await page.evaluate(() => document.cookie)).toBe("");
  });

  it("the session opens /docs and /openapi.json (a browser sends no bearer header)", {
    timeout: 120_000,
  }, async () => {
    const res = await page.goto(`${s.url}/openapi.json`);
    expect(res?.status()).toBe(200);
    expect(((await res?.json()) as { openapi?: string } | undefined)?.openapi).toBe("3.1.0");
    const docs = await page.goto(`${s.url}/docs`);
    expect(docs?.status()).toBe(200);
    await page
      .getByText("A trade proposal from Phi-3 (schema-constrained JSON)")
      .first()
      .waitFor({ timeout: 60_000 });
  });

  it("a tampered cookie is no session", async () => {
    const [cookie] = await context.cookies();
    const other = await browser.newContext();
    const [first, ...rest] = (cookie?.value ?? "").split(".");
    await other.addCookies([
      {
        ...(cookie as NonNullable<typeof cookie>),
        value: [String(Number(first) + 1_000_000), ...rest].join("."),
      },
    ]);
    const p = await other.newPage();
    await p.goto(`${s.url}/review`);
    expect(new URL(p.url()).pathname).toBe("/review/login");
    await other.close();
  });

  it("refuses a form post whose CSRF token is wrong, and stores nothing", async () => {
    await page.goto(`${s.url}/review/${tx}`);
    await page.evaluate(() => {
      const input = document.querySelector<HTMLInputElement>(
        "form[data-proposal-form] input[name=_csrf]",
      );
      if (input) input.value = "0".repeat(64);
    });
    await page.check("input[name=rating][value='5']");
    const [response] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === "POST"),
      page.click("form[data-proposal-form] button[type=submit]"),
    ]);
    expect(response.status()).toBe(403);
    expect(await page.locator(".problem").textContent()).toContain("CSRF check failed");
    expect(await feedbackCount()).toBe(0);
  });

  it("refuses a forged form posted from another origin, and stores nothing", async () => {
    // Another origin on the same machine: the browser still sends the (same-site) cookie, but the
    // forged form cannot know the token.
    const evil: Server = createServer((_req, res) => {
      res.setHeader("content-type", "text/html");
      res.end(
        `<form id="f" method="post" action="${s.url}/review/${tx}/feedback">` +
          `<input name="ticker" value="MSFT"><input name="action" value="abort">` +
          `<input name="confidence" value="1"><input name="rationale" value="forged">` +
          `</form><script>document.getElementById("f").submit()</script>`,
      );
    });
    await new Promise<void>((r) => evil.listen(0, "127.0.0.1", () => r()));
    try {
      const port = (evil.address() as AddressInfo).port;
      const [response] = await Promise.all([
        page.waitForResponse((r) => r.request().method() === "POST"),
        page.goto(`http://127.0.0.1:${port}/`),
      ]);
      expect(response.status()).toBe(403);
      expect(await feedbackCount()).toBe(0);
    } finally {
      await new Promise<void>((r) => evil.close(() => r()));
    }
  });

  it("a valid post with the session's token is stored", async () => {
    await page.goto(`${s.url}/review/${tx}`);
    await page.check("input[name=rating][value='5']");
    await Promise.all([
      page.waitForURL(/stored=/),
      page.click("form[data-proposal-form] button[type=submit]"),
    ]);
    expect(await feedbackCount()).toBe(1);
  });

  it("logout ends the session", async () => {
    await Promise.all([page.waitForNavigation(), page.click("header form button")]);
    expect(new URL(page.url()).pathname).toBe("/review/login");
    expect(await context.cookies()).toEqual([]);
    await page.goto(`${s.url}/review`);
    expect(new URL(page.url()).pathname).toBe("/review/login");
  });

  it("an expired session sends the browser back to the login form", async () => {
    await logIn(page);
    expect(new URL(page.url()).pathname).toBe("/review");
    // The server's clock passes the expiry; the browser still holds the cookie.
    s.clock.advance((TTL_S + 1) * 1000);
    expect(await context.cookies()).toHaveLength(1);
    await page.goto(`${s.url}/review/queue`);
    expect(new URL(page.url()).pathname).toBe("/review/login");
    expect(new URL(page.url()).searchParams.get("next")).toBe("/review/queue");
    // And a form post from a page opened before the expiry stores nothing.
    const res = await page.request.post(`${s.url}/review/${tx}/feedback`, {
      form: { _csrf: "x", rating: "3" },
      maxRedirects: 0,
    });
    expect(res.status()).toBe(401);
    expect(await feedbackCount()).toBe(1);
  });

  it(`rate-limits wrong keys (${LOGIN_ATTEMPTS_PER_MINUTE} a minute), with a clear message`, async () => {
    // (The browser still holds the cookie the server let expire.)
    await context.clearCookies();
    await page.goto(`${s.url}/review/login`);
    for (let i = 0; i < LOGIN_ATTEMPTS_PER_MINUTE; i++) await logIn(page, `wrong-${i}`);
    await logIn(page, KEY);
    expect(await page.locator("#login-error").textContent()).toMatch(
      /^Too many wrong keys\. Wait \d+ s before trying again\.$/,
    );
    expect(await context.cookies()).toEqual([]);
    s.clock.advance(61_000);
    await logIn(page, KEY);
    expect(new URL(page.url()).pathname).toBe("/review");
  });
});
