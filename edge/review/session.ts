/**
 * Browser sessions for /review and /docs: a signed cookie (HMAC-SHA256 through Web Crypto, via
 * Hono's signed-cookie helper), HttpOnly, SameSite=Strict, Secure over HTTPS, with an expiry that
 * is checked on the server as well as by the browser. A CSRF token for form posts is derived from
 * the session's nonce. Nothing here is Node-only: the Worker uses it unchanged.
 *
 * Without API_KEYS (loopback only) the pages are open like the API; the cookie is then issued on
 * first visit, so form posts still carry a CSRF token.
 */
import type { Context } from "hono";
import { deleteCookie, getSignedCookie, setSignedCookie } from "hono/cookie";
import { timingSafeEqual } from "hono/utils/buffer";
import type { Clock } from "../deps.ts";

export const SESSION_COOKIE = "sidecar_session";

export interface Session {
  /** Expiry, ms since the epoch. */
  exp: number;
  nonce: string;
  /** Which key logged in (a hash prefix, never the key); "open" without API_KEYS. */
  keyTag: string;
}

export interface Sessions {
  /** True when no API keys are set: no login. */
  open: boolean;
  read(c: Context): Promise<Session | undefined>;
  issue(c: Context, keyTag: string): Promise<Session>;
  clear(c: Context): void;
  csrfToken(session: Session): Promise<string>;
  checkCsrf(session: Session, token: string | undefined): Promise<boolean>;
  /** The tag of a valid API key, or undefined. */
  verifyKey(given: string): Promise<string | undefined>;
}

const encoder = new TextEncoder();

function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function sha256Hex(text: string): Promise<string> {
  return hex(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

function randomHex(bytes: number): string {
  return hex(crypto.getRandomValues(new Uint8Array(bytes)).buffer);
}

export function isHttps(c: Context): boolean {
  return (
    new URL(c.req.url).protocol === "https:" ||
    (c.req.header("x-forwarded-proto") ?? "").split(",")[0]?.trim() === "https"
  );
}

export function createSessions(options: {
  keys: string[];
  secret?: string;
  ttlS: number;
  clock: Clock;
}): Sessions {
  const { keys, ttlS, clock } = options;
  const open = keys.length === 0;
  // Derived from the keys when unset, so every process and Worker isolate agrees without a
  // shared store; changing the keys ends every session. Random per process when open.
  const secret =
    options.secret ??
    (open ? randomHex(32) : `llm-sidecar review session\n${[...keys].sort().join("\n")}`);
  const tags = Promise.all(keys.map(async (k) => [k, (await sha256Hex(k)).slice(0, 16)] as const));
  const csrfKey = crypto.subtle.importKey(
    "raw",
    encoder.encode(`csrf\n${secret}`),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );

  const validTag = async (tag: string) =>
    open ? tag === "open" : (await tags).some(([, t]) => t === tag);

  return {
    open,
    async read(c) {
      const value = await getSignedCookie(c, secret, SESSION_COOKIE);
      if (!value) return undefined;
      const [exp, nonce, keyTag] = value.split(".");
      const session = { exp: Number(exp), nonce: nonce ?? "", keyTag: keyTag ?? "" };
      if (!Number.isFinite(session.exp) || session.exp <= clock.now().getTime()) return undefined;
      if (!session.nonce || !(await validTag(session.keyTag))) return undefined;
      return session;
    },
    async issue(c, keyTag) {
      const session = { exp: clock.now().getTime() + ttlS * 1000, nonce: randomHex(16), keyTag };
      await setSignedCookie(
        c,
        SESSION_COOKIE,
        `${session.exp}.${session.nonce}.${session.keyTag}`,
        secret,
        {
          path: "/",
          httpOnly: true,
          sameSite: "Strict",
          secure: isHttps(c),
          maxAge: ttlS,
          expires: new Date(session.exp),
        },
      );
      return session;
    },
    clear(c) {
      deleteCookie(c, SESSION_COOKIE, { path: "/", secure: isHttps(c) });
    },
    async csrfToken(session) {
      const mac = await crypto.subtle.sign("HMAC", await csrfKey, encoder.encode(session.nonce));
      return hex(mac);
    },
    async checkCsrf(session, token) {
      if (!token) return false;
      return timingSafeEqual(await this.csrfToken(session), token);
    },
    async verifyKey(given) {
      let found: string | undefined;
      // Compare against every key so timing does not reveal which one matched.
      for (const [key, tag] of await tags) if (await timingSafeEqual(key, given)) found = tag;
      return found;
    },
  };
}

/**
 * Wrong keys allowed per client in a sliding window (in memory: per process on Node, per isolate
 * on Workers). The client is Cloudflare's connecting IP on Workers (set by Cloudflare, not the
 * caller); on Node, where any caller could send that header, one shared count.
 */
export function createLoginLimiter(options: { max: number; windowMs: number; clock: Clock }) {
  const failures = new Map<string, number[]>();
  const recent = (client: string) => {
    const since = options.clock.now().getTime() - options.windowMs;
    const list = (failures.get(client) ?? []).filter((t) => t > since);
    if (list.length === 0) failures.delete(client);
    else failures.set(client, list);
    return list;
  };
  return {
    /** Seconds until the next attempt is allowed, or 0. */
    retryAfterS(client: string): number {
      const list = recent(client);
      if (list.length < options.max) return 0;
      const oldest = list[0] ?? 0;
      return Math.max(
        1,
        Math.ceil((oldest + options.windowMs - options.clock.now().getTime()) / 1000),
      );
    },
    fail(client: string): void {
      const list = recent(client);
      list.push(options.clock.now().getTime());
      failures.set(client, list);
      // Bounded: the oldest clients are forgotten first.
      if (failures.size > 10_000) failures.delete(failures.keys().next().value as string);
    },
  };
}

export function clientOf(c: Context, runtime: string): string {
  return (runtime === "workers" ? c.req.header("cf-connecting-ip") : undefined) ?? "any";
}
