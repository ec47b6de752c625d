/** The router over several GPU nodes, against stand-in nodes over real HTTP. */
import { afterEach, describe, expect, it } from "vitest";
import { ApiError } from "../../edge/errors.ts";
import { createHttpGpuClient } from "../../edge/gpu-client.ts";
import { createGpuRouter } from "../../edge/gpu-router.ts";
import { freePort } from "../support/process.ts";
import {
  type StandInGpuNode,
  type StandInOptions,
  startStandInGpuNode,
} from "../support/stand-in-gpu-node.ts";

let nodes: StandInGpuNode[] = [];
afterEach(async () => {
  await Promise.all(nodes.map((n) => n.close()));
  nodes = [];
});

async function standIns(...options: StandInOptions[]) {
  nodes = await Promise.all(options.map((o) => startStandInGpuNode(o)));
  return nodes;
}

function router(urls: string[], refreshMs = 60_000) {
  return createGpuRouter(
    urls.map((url) => ({ url, client: createHttpGpuClient({ baseUrl: url, timeoutMs: 5_000 }) })),
    { refreshMs, downForMs: 60_000 },
  );
}

const phi3 = { prompt: "AAPL fell", max_tokens: 32 };
const calls = (n: StandInGpuNode, route: string) => n.calls.filter((c) => c.route === route).length;

describe("GPU router", () => {
  it("spreads concurrent calls over the nodes by load", async () => {
    const [a, b, c] = await standIns({ delayMs: 150 }, { delayMs: 150 }, { delayMs: 150 });
    const r = router([a, b, c].map((n) => (n as StandInGpuNode).url));
    await Promise.all(Array.from({ length: 9 }, () => r.phi3Generate(phi3)));
    expect([a, b, c].map((n) => calls(n as StandInGpuNode, "/v1/phi3/generate"))).toEqual([
      3, 3, 3,
    ]);
    expect(r.nodes().map((n) => n.served)).toEqual([3, 3, 3]);
  });

  it("retries a node that refuses the connection on another, at once, and marks it down", async () => {
    const [a] = await standIns({});
    const closed = `http://127.0.0.1:${await freePort()}`;
    const r = router([closed, (a as StandInGpuNode).url]);
    for (let i = 0; i < 4; i++) await r.hermesGenerate({ prompt: "hi", max_tokens: 4 });
    expect(calls(a as StandInGpuNode, "/v1/hermes/generate")).toBe(4);
    const [down, up] = r.nodes();
    expect(down).toMatchObject({ url: closed, state: "down", served: 0 });
    expect(up).toMatchObject({ state: "up", served: 4 });
  });

  it("sends a model's calls only to nodes that have it loaded", async () => {
    const [noPhi3, both] = await standIns({ phi3Loaded: false }, {});
    const r = router([(noPhi3 as StandInGpuNode).url, (both as StandInGpuNode).url]);
    for (let i = 0; i < 3; i++) await r.phi3Generate(phi3);
    expect(calls(noPhi3 as StandInGpuNode, "/v1/phi3/generate")).toBe(0);
    expect(calls(both as StandInGpuNode, "/v1/phi3/generate")).toBe(3);
    // Hermes is loaded on both: used on both.
    await Promise.all([1, 2].map(() => r.hermesGenerate({ prompt: "x", max_tokens: 2 })));
    expect(calls(noPhi3 as StandInGpuNode, "/v1/hermes/generate")).toBe(1);
  });

  it("moves on from a full queue, and gives the caller the last node's answer when all refuse", async () => {
    const [full, free] = await standIns({ queueFull: true }, {});
    const r = router([(full as StandInGpuNode).url, (free as StandInGpuNode).url]);
    await r.phi3Generate(phi3);
    expect(calls(free as StandInGpuNode, "/v1/phi3/generate")).toBe(1);
    (free as StandInGpuNode).options.queueFull = true;
    const error = await r.phi3Generate(phi3).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).code).toBe("queue_full");
    expect((error as ApiError).headers["Retry-After"]).toBe("3");
  });

  it("reports the seed's keys over all nodes: a model is loaded when some node has it", async () => {
    const [h, p] = await standIns({ phi3Loaded: false }, { hermesLoaded: false });
    const health = await router([(h as StandInGpuNode).url, (p as StandInGpuNode).url]).health();
    expect(health).toMatchObject({ status: "ok", hermes_loaded: true, phi3_loaded: true });
  });

  it("with every node gone, answers 503 gpu_node_unavailable", async () => {
    const r = router([
      `http://127.0.0.1:${await freePort()}`,
      `http://127.0.0.1:${await freePort()}`,
    ]);
    const error = await r.hermesGenerate({ prompt: "x", max_tokens: 2 }).catch((e: unknown) => e);
    expect((error as ApiError).code).toBe("gpu_node_unavailable");
    await expect(r.health()).rejects.toMatchObject({ code: "gpu_node_unavailable" });
  });
});
