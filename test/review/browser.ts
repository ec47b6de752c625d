/**
 * For the review page's browser tests: Debian's Chromium driven by playwright-core (never
 * Playwright's own browser download), and the edge on a real loopback port, in process, over the
 * stand-in GPU node, with its own PGlite database and a clock the test can move.
 */
import { mkdir } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { serve } from "@hono/node-server";
import pino from "pino";
import { type Browser, chromium, type Page } from "playwright-core";
import { createApp } from "../../edge/app.ts";
import type { Clock } from "../../edge/deps.ts";
import { gpuClientFromSettings } from "../../edge/gpu-client.ts";
import { nodeAssets } from "../../edge/node-runtime/assets.ts";
import { parseEdgeSettings } from "../../edge/settings.ts";
import { createTestDatabase, type TestDatabase } from "../support/db.ts";
import { type StandInGpuNode, startStandInGpuNode } from "../support/stand-in-gpu-node.ts";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";

/** The flags that keep Chromium quiet on a closed network (facts.md). Playwright's launch()
 * gives every browser a fresh temporary --user-data-dir of its own. */
const QUIET_FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: QUIET_FLAGS });
}

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const SCREENSHOT_DIR = path.join(ROOT, "docs/screenshots");

/** A laptop-sized view of the page, kept for the README. */
export async function screenshot(page: Page, name: string): Promise<void> {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOT_DIR, `${name}.png`), fullPage: false });
}

/** A clock the test moves by hand (sessions and the login limiter read it). */
export class TestClock implements Clock {
  private offsetMs = 0;
  now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
  advance(ms: number): void {
    this.offsetMs += ms;
  }
}

export interface ReviewServer {
  url: string;
  db: TestDatabase;
  gpu: StandInGpuNode;
  clock: TestClock;
  /** A JSON POST to the API (with the key when one is set). */
  post(path: string, body: unknown): Promise<Response>;
  close(): Promise<void>;
}

export async function startReviewServer(env: Record<string, string> = {}): Promise<ReviewServer> {
  const db = await createTestDatabase("pglite");
  const gpu = await startStandInGpuNode({});
  const clock = new TestClock();
  const settings = parseEdgeSettings({ GPU_NODE_URL: gpu.url, LOG_LEVEL: "silent", ...env });
  const app = createApp({
    settings,
    db: db.db,
    databaseKind: db.kind,
    gpu: gpuClientFromSettings(settings),
    logger: pino({ level: "silent" }),
    clock,
    mirror: { appendLog() {}, appendFeedback() {} },
    version: "test",
    runtime: "node",
    assets: nodeAssets(),
  });
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s));
  });
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const key = settings.API_KEYS[0];
  return {
    url,
    db,
    gpu,
    clock,
    post: (p, body) =>
      fetch(`${url}${p}`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(key ? { authorization: `Bearer ${key}` } : {}),
        },
        body: JSON.stringify(body),
      }),
    close: async () => {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        (server as { closeAllConnections?: () => void }).closeAllConnections?.();
      });
      await gpu.close();
      await db.destroy();
    },
  };
}

/**
 * Every request the page makes that leaves `origin` is recorded and refused, so a test can say
 * "nothing left the machine" (and nothing could have).
 */
export async function blockOtherOrigins(page: Page, origin: string): Promise<string[]> {
  const outside: string[] = [];
  await page.route("**/*", (route) => {
    const url = route.request().url();
    if (url.startsWith(`${origin}/`) || url.startsWith("data:") || url.startsWith("blob:")) {
      return route.continue();
    }
    outside.push(url);
    return route.abort();
  });
  page.on("websocket", (ws) => outside.push(ws.url()));
  return outside;
}
