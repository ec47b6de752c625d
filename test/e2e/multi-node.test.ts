/**
 * One edge, three real GPU-node processes on the tiny models (GPU_NODE_URLS): load spreads over
 * them; one killed under load fails only what it had in flight (503), loses no acknowledged row;
 * restarted, it takes traffic again.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { writeTinyModels } from "../../gpu-node/models/tiny/cli.ts";
import { createEdgeHarness, type EdgeHarness } from "../support/edge.ts";
import { freePort, type Proc, startProcess, waitFor } from "../support/process.ts";

type NodeRow = { url: string; state: string; served: number; in_flight: number };

let dir: string;
let models: { hermes: string; phi3: string };
const ports: number[] = [];
const procs: (Proc | undefined)[] = [];
let edge: EdgeHarness;

function startNode(i: number): Proc {
  return startProcess(process.execPath, ["--import", "tsx", "gpu-node/main.ts"], {
    GPU_NODE_HOST: "127.0.0.1",
    GPU_NODE_PORT: String(ports[i]),
    GPU_NODE_TOKEN: "",
    HERMES_MODEL_PATH: models.hermes,
    PHI3_MODEL_DIR: models.phi3,
    HERMES_THREADS: "1",
    PHI3_THREADS: "1",
    HERMES_CTX: "512",
    LOG_LEVEL: "warn",
  });
}

async function nodeReady(i: number, proc: Proc): Promise<void> {
  await waitFor(
    async () => {
      const res = await fetch(`http://127.0.0.1:${ports[i]}/v1/health`);
      const body = (await res.json()) as { status?: string };
      return body.status === "ok";
    },
    `GPU node ${i} ready`,
    90_000,
    proc,
  );
}

async function gpuNodes(): Promise<NodeRow[]> {
  const res = await edge.request("/health");
  const body = (await res.json()) as { gpu_nodes?: NodeRow[] };
  return body.gpu_nodes ?? [];
}

const propose = (i: number) =>
  edge.post("/generate/phi3/", { prompt: `NVDA move ${i}: adjust my long?`, max_length: 40 });

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "multi-node-"));
  models = await writeTinyModels(path.join(dir, "models"), 5);
  for (let i = 0; i < 3; i++) ports.push(await freePort());
  for (let i = 0; i < 3; i++) procs.push(startNode(i));
  await Promise.all(procs.map((p, i) => nodeReady(i, p as Proc)));
  edge = await createEdgeHarness({
    env: {
      GPU_NODE_URLS: ports.map((p) => `http://127.0.0.1:${p}`).join(","),
      GPU_TIMEOUT_MS: "60000",
    },
  });
}, 240_000);

afterAll(async () => {
  await edge?.close();
  await Promise.all(procs.map((p) => p?.stop("SIGKILL")));
  rmSync(dir, { recursive: true, force: true });
});

describe("three GPU nodes behind one edge", () => {
  it("spreads, fails over, keeps every acknowledged row, and takes a restarted node back", async () => {
    const health = await edge.request("/health");
    expect(health.status, await health.text()).toBe(200);

    // Load spreads over all three.
    const first = await Promise.all(Array.from({ length: 9 }, (_, i) => propose(i)));
    expect(first.map((r) => r.status)).toEqual(Array(9).fill(200));
    const spread = await gpuNodes();
    for (const node of spread) expect(node.served, JSON.stringify(spread)).toBeGreaterThan(0);

    // Kill node 0 while it has work in flight.
    const wave = Array.from({ length: 12 }, (_, i) => propose(100 + i));
    await waitFor(
      async () => ((await gpuNodes())[0]?.in_flight ?? 0) > 0,
      "work on node 0",
      30_000,
    );
    await procs[0]?.stop("SIGKILL");
    const answers = await Promise.all(wave);
    const statuses = answers.map((r) => r.status);
    expect(
      statuses.every((s) => s === 200 || s === 503),
      statuses.join(","),
    ).toBe(true);
    for (const r of answers.filter((a) => a.status === 503)) {
      expect(((await r.json()) as { code: string }).code).toBe("gpu_node_unavailable");
    }
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThan(0);

    // Nothing acknowledged is lost.
    const acknowledged = [...first, ...answers]
      .filter((r) => r.status === 200)
      .map((r) => r.headers.get("x-transaction-id"));
    const exported = await (await edge.request("/feedback/phi3/export?kind=log")).text();
    const ids = new Set(
      exported
        .trim()
        .split("\n")
        .map((l) => (JSON.parse(l) as { transaction_id: string }).transaction_id),
    );
    for (const id of acknowledged) expect(ids.has(id as string), `${id} in the record`).toBe(true);

    // With node 0 gone, everything still succeeds on the other two.
    const during = await Promise.all(Array.from({ length: 4 }, (_, i) => propose(200 + i)));
    expect(during.map((r) => r.status)).toEqual(Array(4).fill(200));

    // Restarted on its port, node 0 is probed back and serves again.
    procs[0] = startNode(0);
    await nodeReady(0, procs[0]);
    const servedBefore = (await gpuNodes())[0]?.served ?? 0;
    await waitFor(
      async () => {
        await Promise.all(Array.from({ length: 3 }, (_, i) => propose(300 + i)));
        return ((await gpuNodes())[0]?.served ?? 0) > servedBefore;
      },
      "node 0 taking traffic again",
      60_000,
    );
  });
});
