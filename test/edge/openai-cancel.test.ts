/**
 * Streaming over real sockets on the Node edge: a client that disconnects mid-stream closes the
 * edge's connection to the GPU node (the stand-in sees the disconnect before its stream ended),
 * and pieces reach the client as the node sends them, not once the answer is complete.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import OpenAI from "openai";
import pino from "pino";
import { afterAll, beforeAll, expect, it } from "vitest";
import { type RunningEdge, startEdge } from "../../edge/node-runtime/server.ts";
import { GPU_ROUTES } from "../../gpu-node/contract/index.ts";
import { type StandInGpuNode, startStandInGpuNode } from "../support/stand-in-gpu-node.ts";

let dir: string;
let gpu: StandInGpuNode;
let edge: RunningEdge;
let client: OpenAI;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "edge-v1-cancel-"));
  gpu = await startStandInGpuNode({ streamDelayMs: 150 });
  edge = await startEdge(
    { PORT: "0", DATA_DIR: dir, GPU_NODE_URL: gpu.url, JSONL_MIRROR: "false" },
    { logger: pino({ level: "silent" }) },
  );
  client = new OpenAI({ apiKey: "unused", baseURL: `${edge.url}/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await edge?.close();
  await gpu?.close();
  rmSync(dir, { recursive: true, force: true });
});

const long = {
  model: "hermes",
  messages: [{ role: "user" as const, content: "w ".repeat(300) }],
  max_tokens: 300,
  stream: true as const,
};

it("pieces arrive while the node is still generating", async () => {
  const stream = await client.chat.completions.create({ ...long, max_tokens: 6 });
  let pieces = 0;
  for await (const chunk of stream) {
    if (chunk.choices[0]?.delta.content) {
      pieces++;
      // The node has not finished when the first piece is already here.
      if (pieces === 1) expect(gpu.streamsCompleted).toEqual([]);
    }
  }
  expect(pieces).toBe(6);
  expect(gpu.streamsCompleted).toEqual([GPU_ROUTES.hermesGenerateStream]);
});

it("a client that disconnects mid-stream stops the node's stream", async () => {
  const controller = new AbortController();
  const stream = await client.chat.completions.create(long, { signal: controller.signal });
  let pieces = 0;
  await (async () => {
    for await (const chunk of stream) {
      if (chunk.choices[0]?.delta.content) pieces++;
      if (pieces === 3) controller.abort();
    }
  })().catch((err: unknown) => expect(String(err)).toMatch(/abort/i));
  await expect
    .poll(() => gpu.aborted, { timeout: 10_000 })
    .toEqual([GPU_ROUTES.hermesGenerateStream]);
  expect(gpu.streamsCompleted).toHaveLength(1);
});
