import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { pino } from "pino";
import { afterEach, describe, expect, it } from "vitest";
import { ErrorBody, GPU_ROUTES, HermesGenerateResponse } from "../../gpu-node/contract/index.ts";
import { shutdownGracefully } from "../../gpu-node/lifecycle/shutdown.ts";
import { createHarness } from "./harness.ts";
import { hermesResult } from "./scripted-runtime.ts";

type Served = ReturnType<typeof serve>;
let server: Served | undefined;

afterEach(() => {
  if (server?.listening) server.close();
  if (server && "closeAllConnections" in server) server.closeAllConnections();
  server = undefined;
});

async function listen(h: ReturnType<typeof createHarness>) {
  const started = new Promise<number>((resolve) => {
    server = serve({ fetch: h.app.fetch, hostname: "127.0.0.1", port: 0 }, (info) =>
      resolve(info.port),
    );
  });
  const port = await started;
  return `http://127.0.0.1:${port}`;
}

function shutdown(h: ReturnType<typeof createHarness>, graceMs: number) {
  const s = server as import("node:http").Server;
  return shutdownGracefully({
    server: s,
    lifecycle: h.lifecycle,
    registry: h.registry,
    logger: pino({ level: "silent" }),
    graceMs,
    settleMs: 500,
  });
}

const generate = (base: string) =>
  fetch(`${base}${GPU_ROUTES.hermesGenerate}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ prompt: "x", max_tokens: 5 }),
  });

describe("graceful shutdown over a real server", () => {
  it("lets in-flight work finish within the grace period, then frees the models", async () => {
    const h = createHarness();
    const base = await listen(h);
    // A finished request leaves an idle keep-alive connection behind; it must not hold the exit.
    h.hermes.script.autoReply = () => hermesResult("warm-up");
    const warm = await generate(base);
    expect(warm.status).toBe(200);
    await warm.text();
    h.hermes.script.autoReply = undefined;
    await h.hermes.script.nextCall(); // the warm-up's own call

    const inFlight = generate(base);
    const call = await h.hermes.script.nextCall();
    const stopped = shutdown(h, 10_000);
    expect(h.lifecycle.shuttingDown).toBe(true);
    expect((server?.address() as AddressInfo | null) ?? null).toBeNull();

    call.finish(hermesResult("finished during shutdown"));
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(res.headers.get("Connection")).toBe("close");
    expect(HermesGenerateResponse.parse(await res.json()).text).toBe("finished during shutdown");
    await stopped;
    expect(call.signal.aborted).toBe(false);
    expect(h.hermes.disposed && h.phi3.disposed).toBe(true);
  });

  it("aborts what is still running when the grace period is over", async () => {
    const h = createHarness();
    const base = await listen(h);
    const inFlight = generate(base);
    const call = await h.hermes.script.nextCall();
    const stopped = shutdown(h, 50);
    const res = await inFlight;
    expect(res.status).toBe(503);
    expect(ErrorBody.parse(await res.json()).code).toBe("shutting_down");
    expect(call.signal.aborted).toBe(true);
    await stopped;
    expect(h.hermes.disposed).toBe(true);
  });
});
