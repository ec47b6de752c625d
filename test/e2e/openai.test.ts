/**
 * /v1 end to end with real processes: the edge and the GPU node on the tiny models, the openai SDK
 * as the client. A Phi-3 trade proposal through /v1 is a recorded proposal that takes feedback.
 * (Hermes and streaming through the real node need its `messages` support and streaming routes,
 * which the stand-in covers in test/edge and test/workers until they land.)
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Ajv from "ajv";
import OpenAI from "openai";
import { afterAll, beforeAll, expect, it } from "vitest";
import { TRADE_PROPOSAL_JSON_SCHEMA } from "../../gpu-node/contract/index.ts";
import { writeTinyModels } from "../../gpu-node/models/tiny/cli.ts";
import { freePort, type Proc, startProcess, waitFor } from "../support/process.ts";

const validProposal = new Ajv().compile(TRADE_PROPOSAL_JSON_SCHEMA);

let dir: string;
let proc: Proc;
let base: string;
let client: OpenAI;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "e2e-v1-"));
  const models = await writeTinyModels(path.join(dir, "models"), 7);
  const ports = { edge: await freePort(), gpu: await freePort() };
  proc = startProcess("npm", ["start"], {
    PORT: String(ports.edge),
    GPU_NODE_PORT: String(ports.gpu),
    GPU_NODE_URL: `http://127.0.0.1:${ports.gpu}`,
    GPU_NODE_TOKEN: "e2e-secret",
    API_KEYS: "e2e-key",
    HERMES_MODEL_PATH: models.hermes,
    PHI3_MODEL_DIR: models.phi3,
    HERMES_THREADS: "1",
    PHI3_THREADS: "1",
    HERMES_CTX: "512",
    DATA_DIR: path.join(dir, "data"),
    DATABASE_URL: "",
  });
  base = `http://127.0.0.1:${ports.edge}`;
  await waitFor(
    async () =>
      (await fetch(`${base}/health`).catch(() => undefined))?.status === 200 ? true : undefined,
    "/health ok",
    90_000,
    proc,
  );
  client = new OpenAI({ apiKey: "e2e-key", baseURL: `${base}/v1`, maxRetries: 0 });
});
afterAll(async () => {
  await proc?.stop();
  rmSync(dir, { recursive: true, force: true });
});

it("models.list shows both models ready", async () => {
  const page = await client.models.list();
  expect(page.data.map((m) => [m.id, (m as unknown as { ready: boolean }).ready])).toEqual([
    ["hermes", true],
    ["phi3", true],
  ]);
});

it("a Phi-3 proposal through the SDK is schema-valid, recorded, and takes feedback", async () => {
  const { data, response } = await client.chat.completions
    .create({
      model: "phi3",
      messages: [{ role: "user", content: "AAPL gapped down 4% at the open. Adjust my long?" }],
      max_tokens: 80,
    })
    .withResponse();
  const tx = response.headers.get("x-transaction-id");
  expect(data.id).toBe(`chatcmpl-${tx}`);
  expect(data.choices[0]?.finish_reason).toMatch(/^(stop|length)$/);
  expect(data.usage?.completion_tokens).toBeGreaterThan(0);
  const proposal = JSON.parse(data.choices[0]?.message.content ?? "");
  expect(validProposal(proposal)).toBe(true);

  const fb = await fetch(`${base}/feedback/phi3/`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: "Bearer e2e-key" },
    body: JSON.stringify({ transaction_id: tx, feedback_type: "rating", feedback_content: 4 }),
  });
  expect(fb.status).toBe(200);
  const log = await fetch(`${base}/feedback/phi3/export?kind=log`, {
    headers: { authorization: "Bearer e2e-key" },
  });
  const lines = (await log.text())
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l));
  expect(lines).toEqual([
    expect.objectContaining({
      transaction_id: tx,
      endpoint: "v1_chat_completions",
      phi3_proposal: proposal,
    }),
  ]);
});
