/**
 * /v1 end to end with real processes: the edge and the GPU node on the tiny models, the openai SDK
 * as the client. A Phi-3 trade proposal through /v1 is a recorded proposal that takes feedback;
 * Hermes conversations stream as SSE from the node's NDJSON; another schema comes back valid for
 * both models, streamed too; a client that walks away mid-stream frees the node for the next one.
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

it("a Hermes conversation streams through the edge, and the pieces are the recorded output", async () => {
  const stream = await client.chat.completions.create({
    model: "hermes",
    messages: [
      { role: "system", content: "You are terse." },
      { role: "user", content: "Hello" },
      { role: "assistant", content: "Hi." },
      { role: "user", content: "Say more." },
    ],
    max_tokens: 24,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = "";
  let finish: string | null | undefined;
  let usage: { completion_tokens: number } | undefined;
  let chunks = 0;
  for await (const chunk of stream) {
    chunks++;
    text += chunk.choices[0]?.delta.content ?? "";
    finish = chunk.choices[0]?.finish_reason ?? finish;
    if (chunk.usage) usage = chunk.usage;
  }
  expect(chunks).toBeGreaterThan(2);
  expect(finish).toMatch(/^(stop|length)$/);
  expect(usage?.completion_tokens).toBeGreaterThan(0);
  const res = await fetch(`${base}/feedback/phi3/export?kind=generations`, {
    headers: { authorization: "Bearer e2e-key" },
  });
  const rows = (await res.text())
    .trim()
    .split("\n")
    .map((l) => JSON.parse(l) as { model: string; output: string; stream: boolean });
  expect(rows.at(-1)).toMatchObject({ model: "hermes", output: text, stream: true });
});

const ORDER = {
  type: "object",
  properties: {
    symbol: { type: "string", maxLength: 8 },
    side: { enum: ["buy", "sell"] },
    quantity: { type: "integer", minimum: 1, maximum: 1000 },
  },
  required: ["symbol", "side", "quantity"],
  additionalProperties: false,
};

it.each(["hermes", "phi3"])(
  "%s: another schema comes back valid, plain and streamed",
  async (model) => {
    const valid = new Ajv().compile(ORDER);
    const format = { type: "json_schema" as const, json_schema: { name: "order", schema: ORDER } };
    const messages = [{ role: "user" as const, content: "Buy some NVDA." }];
    const plain = await client.chat.completions.create({
      model,
      messages,
      max_tokens: 60,
      response_format: format,
    });
    expect(valid(JSON.parse(plain.choices[0]?.message.content ?? ""))).toBe(true);
    const stream = await client.chat.completions.create({
      model,
      messages,
      max_tokens: 60,
      response_format: format,
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(valid(JSON.parse(text))).toBe(true);
  },
);

it("a client that aborts mid-stream frees the node: the next request is served at once", async () => {
  const controller = new AbortController();
  // A long string the model must write (at least 250 characters): the abort comes first.
  const long = { type: "string", minLength: 250, maxLength: 300 };
  const stream = await client.chat.completions.create(
    {
      model: "hermes",
      messages: [{ role: "user", content: "Tell a long story." }],
      max_tokens: 300,
      stream: true,
      response_format: { type: "json_schema", json_schema: { name: "story", schema: long } },
    },
    { signal: controller.signal },
  );
  let pieces = 0;
  try {
    for await (const _chunk of stream) {
      if (++pieces === 3) {
        controller.abort();
        break;
      }
    }
  } catch {
    // the SDK may report the abort as an error
  }
  expect(pieces).toBe(3);
  // The node logs the stop; its one Hermes sequence (HERMES_PARALLEL=auto is 1 on CPU) is free.
  await waitFor(
    () => /Client disconnected; generation stopped/.test(proc.output()),
    "the node's stop",
    20_000,
  );
  const next = await client.chat.completions.create({
    model: "hermes",
    messages: [{ role: "user", content: "Hi" }],
    max_tokens: 8,
  });
  expect(next.choices[0]?.finish_reason).toMatch(/^(stop|length)$/);
});
