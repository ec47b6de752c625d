/**
 * Review sessions over HTTP in process (no browser): the login form's answers, the cookie's
 * attributes over HTTPS, a session that outlives its key, and the session opening /docs and
 * /openapi.json but not the API.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createEdgeHarness, type EdgeHarness } from "../support/edge.ts";

const form = (fields: Record<string, string>, headers: Record<string, string> = {}) => ({
  method: "POST",
  headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
  body: new URLSearchParams(fields).toString(),
  redirect: "manual" as const,
});

const cookieOf = (res: Response) => (res.headers.get("set-cookie") ?? "").split(";")[0] ?? "";

describe("review sessions", () => {
  let both: EdgeHarness;
  let onlyA: EdgeHarness;
  beforeAll(async () => {
    const env = { SESSION_SECRET: "a-shared-secret" };
    both = await createEdgeHarness({ kind: "pglite", env: { ...env, API_KEYS: "key-a,key-b" } });
    onlyA = await createEdgeHarness({ kind: "pglite", env: { ...env, API_KEYS: "key-a" } });
  });
  afterAll(async () => {
    await both?.close();
    await onlyA?.close();
  });

  it("a valid key answers 303 with the cookie; over HTTPS it is Secure", async () => {
    const res = await both.request(
      "/review/login",
      form({ key: "key-b", next: "/docs" }, { "x-forwarded-proto": "https" }),
    );
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/docs");
    const header = res.headers.get("set-cookie") ?? "";
    expect(header).toMatch(/^sidecar_session=/);
    for (const attr of ["HttpOnly", "SameSite=Strict", "Secure", "Path=/", "Max-Age=43200"]) {
      expect(header).toContain(attr);
    }
  });

  it("never redirects off the site after login", async () => {
    for (const next of ["https://evil.example/", "//evil.example/x", "/\\evil"]) {
      const res = await both.request("/review/login", form({ key: "key-a", next }));
      expect(res.headers.get("location"), next).toBe("/review");
    }
  });

  it("a wrong key is a 401 page that says so", async () => {
    const res = await both.request("/review/login", form({ key: "nope" }));
    expect(res.status).toBe(401);
    expect(await res.text()).toContain("That key is not valid.");
  });

  it("the session opens /docs and /openapi.json, not the API", async () => {
    const cookie = cookieOf(await both.request("/review/login", form({ key: "key-a" })));
    expect((await both.request("/openapi.json", { headers: { cookie } })).status).toBe(200);
    expect((await both.request("/docs", { headers: { cookie } })).status).toBe(200);
    const api = await both.request("/feedback/phi3/export?kind=log", { headers: { cookie } });
    expect(api.status).toBe(401);
    // Without it: /docs sends a browser to the login form, /openapi.json is a 401 envelope.
    const docs = await both.request("/docs", { redirect: "manual" });
    expect(docs.status).toBe(303);
    expect(docs.headers.get("location")).toBe("/review/login?next=/docs");
    expect((await both.request("/openapi.json")).status).toBe(401);
  });

  it("a session ends when its key is removed from API_KEYS", async () => {
    const cookieA = cookieOf(await both.request("/review/login", form({ key: "key-a" })));
    const cookieB = cookieOf(await both.request("/review/login", form({ key: "key-b" })));
    // Same secret, key-b gone: key-a's session still works, key-b's does not.
    expect((await onlyA.request("/review", { headers: { cookie: cookieA } })).status).toBe(200);
    const res = await onlyA.request("/review", {
      headers: { cookie: cookieB },
      redirect: "manual",
    });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/review/login?next=%2Freview");
  });

  it("a form post without a session is refused, and the JSON API still wants JSON", async () => {
    const res = await both.request(
      "/review/00000000-0000-4000-8000-000000000000/feedback",
      form({ rating: "3" }),
    );
    expect(res.status).toBe(401);
    const api = await both.request(
      "/feedback/phi3/",
      form({ x: "1" }, { authorization: "Bearer key-a" }),
    );
    expect(api.status).toBe(415);
  });

  it("on Node a CF-Connecting-IP header does not buy a fresh count of wrong keys", async () => {
    const h = await createEdgeHarness({ kind: "pglite", env: { API_KEYS: "key-a" } });
    try {
      for (let i = 0; i < 5; i++) {
        const res = await h.request(
          "/review/login",
          form({ key: `wrong-${i}` }, { "cf-connecting-ip": `203.0.113.${i}` }),
        );
        expect(res.status).toBe(401);
      }
      const res = await h.request(
        "/review/login",
        form({ key: "key-a" }, { "cf-connecting-ip": "203.0.113.99" }),
      );
      expect(res.status).toBe(429);
      expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
      expect(await res.text()).toContain("Too many wrong keys.");
    } finally {
      await h.close();
    }
  });
});
