import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Ajv2020 } from "ajv/dist/2020.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  GPU_ROUTES,
  GpuNodeHealth,
  HermesGenerateResponse,
  JsonGenerateResponse,
  Phi3GenerateResponse,
  TradeProposal,
} from "../../gpu-node/contract/index.ts";
import { StreamEvent } from "../../gpu-node/contract/stream.ts";
import { writeTinyHermes } from "../../gpu-node/models/tiny/hermes.ts";
import { writeTinyPhi3 } from "../../gpu-node/models/tiny/phi3.ts";
import { CALENDAR_EVENT, ORDER_TICKET, REASONING } from "../structured/schemas.ts";
import { type RunningNode, startGpuNode } from "../support/gpu-node-process.ts";

const TOKEN = "tiny-models-token";
let dir: string;
let node: RunningNode;

async function call(path: string, body?: unknown, signal?: AbortSignal) {
  return fetch(`${node.baseUrl}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { Authorization: `Bearer ${TOKEN}`, "Content-Type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    ...(signal ? { signal } : {}),
  });
}

/** Reads an NDJSON stream to its end, or until `stopAfter` text events (then cancels it). */
async function readStream(res: Response, stopAfter = Number.POSITIVE_INFINITY) {
  expect(res.status).toBe(200);
  const reader = res.body?.getReader();
  if (!reader) throw new Error("no body");
  const decoder = new TextDecoder();
  const events: StreamEvent[] = [];
  let buffered = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffered += decoder.decode(value, { stream: true });
    let newline = buffered.indexOf("\n");
    while (newline >= 0) {
      events.push(StreamEvent.parse(JSON.parse(buffered.slice(0, newline))));
      buffered = buffered.slice(newline + 1);
      newline = buffered.indexOf("\n");
    }
    if (events.filter((e) => e.type === "text").length >= stopAfter) {
      await reader.cancel();
      break;
    }
  }
  return events;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gpu-node-tiny-"));
  await writeTinyHermes(join(dir, "hermes", "tiny.gguf"), { seed: 1 });
  await writeTinyPhi3(join(dir, "phi3", "tiny"), { seed: 1 });
  node = await startGpuNode({
    GPU_NODE_TOKEN: TOKEN,
    MODELS_DIR: dir,
    HERMES_MODEL_PATH: join(dir, "hermes", "tiny.gguf"),
    HERMES_GPU: "cpu",
    HERMES_CTX: "1024",
    HERMES_THREADS: "1",
    HERMES_PARALLEL: "4",
    HERMES_QUEUE_MAX: "16",
    PHI3_MODEL_DIR: join(dir, "phi3", "tiny"),
    PHI3_DEVICE: "cpu",
    PHI3_THREADS: "1",
    LOG_LEVEL: "info",
  });
  // Wait for the background loading to finish (progress shows in the log meanwhile).
  for (let i = 0; i < 600; i++) {
    const health = GpuNodeHealth.parse(await (await call(GPU_ROUTES.health)).json());
    if (health.status !== "loading") return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
});

afterAll(async () => {
  await node?.stop("SIGKILL");
  await rm(dir, { recursive: true, force: true });
});

describe("the GPU node process with tiny real models", () => {
  it("loads both models and reports ok", async () => {
    const health = GpuNodeHealth.parse(await (await call(GPU_ROUTES.health)).json());
    expect(health, JSON.stringify(health.models)).toMatchObject({
      status: "ok",
      hermes_loaded: true,
      phi3_loaded: true,
      phi3_model_file_exists: true,
      device: "cpu",
    });
    expect(node.stdout()).toMatch(/loading Hermes: \d+%/);
  });

  it("POST /v1/hermes/generate", async () => {
    const res = await call(GPU_ROUTES.hermesGenerate, { prompt: "Hello", max_tokens: 8 });
    expect(res.status).toBe(200);
    const body = HermesGenerateResponse.parse(await res.json());
    expect(body.usage.completion_tokens).toBeLessThanOrEqual(8);
    expect(body.usage.prompt_tokens).toBeGreaterThan(0);
  });

  it("POST /v1/hermes/critique", async () => {
    const res = await call(GPU_ROUTES.hermesCritique, {
      proposal: { ticker: "MSFT", action: "pass", confidence: 0.4, rationale: "Flat." },
      max_length: 4,
    });
    expect(res.status).toBe(200);
    const body = HermesGenerateResponse.parse(await res.json());
    expect(body.usage.completion_tokens).toBeLessThanOrEqual(8);
  });

  it("POST /v1/phi3/generate returns a schema-valid proposal", async () => {
    const res = await call(GPU_ROUTES.phi3Generate, { prompt: "AAPL long", max_tokens: 64 });
    expect(res.status).toBe(200);
    const body = Phi3GenerateResponse.parse(await res.json());
    expect(TradeProposal.parse(JSON.parse(body.raw))).toEqual(body.proposal);
  });

  it("8 concurrent clients on HERMES_PARALLEL=4: no 5xx, every request answered", async () => {
    const statuses: number[] = [];
    await Promise.all(
      [0, 1, 2, 3, 4, 5, 6, 7].map(async (c) => {
        for (let r = 0; r < 3; r++) {
          const res = await call(GPU_ROUTES.hermesGenerate, {
            prompt: `client ${c}, request ${r}`,
            max_tokens: 8 + c,
          });
          statuses.push(res.status);
          if (res.status === 200) HermesGenerateResponse.parse(await res.json());
          else await res.body?.cancel();
        }
      }),
    );
    expect(statuses).toHaveLength(24);
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
    // Queue room is 16: nothing is refused either.
    expect(statuses.every((s) => s === 200)).toBe(true);
  });

  it("streams: pieces add up to the final text; a cancelled one of four leaves the other three", async () => {
    const body = (i: number) => ({ prompt: `stream ${i}`, max_tokens: 200 });
    const [cancelled, ...rest] = await Promise.all(
      [0, 1, 2, 3].map(async (i) => {
        const res = await call(GPU_ROUTES.hermesGenerateStream, body(i));
        return readStream(res, i === 0 ? 2 : Number.POSITIVE_INFINITY);
      }),
    );
    expect(cancelled?.every((e) => e.type === "text")).toBe(true);
    for (const events of rest) {
      const done = events.at(-1);
      expect(done?.type).toBe("done");
      const response = HermesGenerateResponse.parse(done?.type === "done" ? done.response : {});
      const text = events.flatMap((e) => (e.type === "text" ? [e.text] : [])).join("");
      expect(text).toBe(response.text);
      expect(response.usage.completion_tokens).toBe(200);
    }
    // The cancelled generation was stopped (logged), and its sequence serves again.
    const until = Date.now() + 10_000;
    while (!/Client disconnected; generation stopped/.test(node.stdout()) && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(node.stdout()).toMatch(/Client disconnected; generation stopped/);
    const health = GpuNodeHealth.parse(await (await call(GPU_ROUTES.health)).json());
    expect(health.models.hermes.queue).toMatchObject({ running: 0, waiting: 0 });
  });

  it("the Phi-3 stream's pieces add up to its raw JSON", async () => {
    const events = await readStream(
      await call(GPU_ROUTES.phi3GenerateStream, { prompt: "AAPL long", max_tokens: 64 }),
    );
    const done = events.at(-1);
    const response = Phi3GenerateResponse.parse(done?.type === "done" ? done.response : {});
    expect(events.flatMap((e) => (e.type === "text" ? [e.text] : [])).join("")).toBe(response.raw);
  });

  it("JSON for any schema on both models at once, streamed and not, sharing the pools with free text", async () => {
    const schemas = [ORDER_TICKET, CALENDAR_EVENT, REASONING];
    const ajv = new Ajv2020({ strict: false, allErrors: true });
    const validators = schemas.map((schema) => ajv.compile(structuredClone(schema)));
    const jobs = [GPU_ROUTES.hermesJson, GPU_ROUTES.phi3Json].flatMap((route) =>
      schemas.map(async (schema, i) => {
        const res = await call(route, {
          prompt: `json ${i}`,
          json_schema: schema,
          max_tokens: 120,
          sampling: { temperature: 0.8, seed: i },
        });
        expect(res.status).toBe(200);
        return { i, body: JsonGenerateResponse.parse(await res.json()) };
      }),
    );
    const streams = [GPU_ROUTES.hermesJsonStream, GPU_ROUTES.phi3JsonStream].flatMap((route) =>
      schemas.map(async (schema, i) => {
        const events = await readStream(
          await call(route, { prompt: `stream ${i}`, json_schema: schema, max_tokens: 120 }),
        );
        const done = events.at(-1);
        const body = JsonGenerateResponse.parse(done?.type === "done" ? done.response : {});
        expect(events.flatMap((e) => (e.type === "text" ? [e.text] : [])).join("")).toBe(body.raw);
        return { i, body };
      }),
    );
    const free = call(GPU_ROUTES.hermesGenerate, { prompt: "free", max_tokens: 40 });
    const answers = await Promise.all([...jobs, ...streams]);
    expect((await free).status).toBe(200);
    for (const { i, body } of answers) {
      expect(validators[i]?.(body.json)).toBe(true);
      expect(JSON.parse(body.raw)).toEqual(body.json);
      expect(body.usage.completion_tokens).toBeLessThanOrEqual(120);
    }
  });

  it("a cancelled JSON stream stops its sequence; the pool serves JSON again", async () => {
    const stopped = () =>
      node.stdout().match(/Client disconnected; generation stopped/g)?.length ?? 0;
    const before = stopped();
    // A long string: the value cannot end before a few hundred tokens, so the cancel (after the
    // second piece) reaches the node first, even on a loaded machine.
    const schema = { type: "string", minLength: 450, maxLength: 500 };
    for (const route of [GPU_ROUTES.hermesJsonStream, GPU_ROUTES.phi3JsonStream]) {
      const events = await readStream(
        await call(route, { prompt: "long", json_schema: schema, max_tokens: 700 }),
        2,
      );
      expect(events.every((e) => e.type === "text")).toBe(true);
    }
    const until = Date.now() + 10_000;
    while (stopped() < before + 2 && Date.now() < until) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(stopped()).toBe(before + 2);
    for (const route of [GPU_ROUTES.hermesJson, GPU_ROUTES.phi3Json]) {
      const res = await call(route, { prompt: "again", json_schema: schema, max_tokens: 700 });
      expect(res.status).toBe(200);
      const body = JsonGenerateResponse.parse(await res.json());
      expect(typeof body.json).toBe("string");
      expect([...(body.json as string)].length).toBeGreaterThanOrEqual(450);
    }
    const health = GpuNodeHealth.parse(await (await call(GPU_ROUTES.health)).json());
    expect(health.models.hermes.queue).toMatchObject({ running: 0, waiting: 0 });
    expect(health.models.phi3.queue).toMatchObject({ running: 0, waiting: 0 });
  });

  it("exits 0 on SIGTERM after disposing the models", async () => {
    const exit = await node.stop("SIGTERM");
    expect(exit).toEqual({ code: 0, signal: null });
    expect(node.stdout()).toContain('"msg":"stopped"');
  });
});
