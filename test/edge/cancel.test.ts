/** Cancellation over real sockets: a client that goes away aborts the GPU node call. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type RunningEdge, startEdge } from "../../edge/node-runtime/server.ts";
import { type StandInGpuNode, startStandInGpuNode } from "../support/stand-in-gpu-node.ts";

let dir: string;
let gpu: StandInGpuNode;
let edge: RunningEdge;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "edge-cancel-"));
  gpu = await startStandInGpuNode({ delayMs: 30_000 });
  edge = await startEdge(
    { PORT: "0", DATA_DIR: dir, GPU_NODE_URL: gpu.url, JSONL_MIRROR: "false" },
    { logger: pino({ level: "silent" }) },
  );
});
afterAll(async () => {
  await edge?.close();
  await gpu?.close();
  rmSync(dir, { recursive: true, force: true });
});

it("aborts the GPU node call when the client disconnects", async () => {
  const client = new AbortController();
  const pending = fetch(`${edge.url}/generate/hermes/`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ prompt: "a long one" }),
    signal: client.signal,
  });
  await expect.poll(() => gpu.calls.length, { timeout: 10_000 }).toBe(1);
  client.abort();
  await expect(pending).rejects.toThrow();
  await expect.poll(() => gpu.aborted, { timeout: 10_000 }).toEqual(["/v1/hermes/generate"]);
});
