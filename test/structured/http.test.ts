/**
 * The GPU node's JSON routes in-process (app.request), on the real tiny models: 200 with a value
 * ajv accepts, and each way to be refused (400 unsupported_schema naming the keyword, 400
 * invalid_schema, 422 budget_too_small with the minimum, 422 messages on Phi-3, 405), and the
 * NDJSON streaming twins (pieces of the JSON text, then done with the same answer).
 */
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createGpuNodeApp } from "../../gpu-node/app.ts";
import { GPU_ROUTES, JsonGenerateResponse } from "../../gpu-node/contract/index.ts";
import { STREAM_CONTENT_TYPE, StreamEvent } from "../../gpu-node/contract/stream.ts";
import { createModelRegistry } from "../../gpu-node/lifecycle/registry.ts";
import { loadTinyModels, type TinyModels, validatorFor } from "./helpers.ts";
import { ORDER_TICKET } from "./schemas.ts";

let models: TinyModels;
let app: ReturnType<typeof createGpuNodeApp>;

beforeAll(async () => {
  models = await loadTinyModels(31);
  const registry = createModelRegistry({
    hermesPath: "/models/hermes.gguf",
    phi3Path: "/models/phi3",
    hermesQueueMax: 4,
    phi3QueueMax: 4,
  });
  registry.hermes.setFileExists(true);
  registry.hermes.markReady(models.hermes);
  registry.phi3.setFileExists(true);
  registry.phi3.markReady(models.phi3);
  app = createGpuNodeApp({
    settings: {
      token: undefined,
      maxRequestMs: 60_000,
      hermes: { systemPrompt: "Answer in JSON." },
    },
    logger: pino({ level: "silent" }),
    registry,
  });
});
afterAll(() => models?.dispose());

const post = (path: string, body: unknown) =>
  app.request(`http://gpu-node.test${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });

const ROUTES = [
  ["hermes", GPU_ROUTES.hermesJson],
  ["phi3", GPU_ROUTES.phi3Json],
] as const;

describe.each(ROUTES)("POST %s json", (model, route) => {
  it("answers 200 with a value ajv accepts, the raw text, usage and timings", async () => {
    const res = await post(route, {
      prompt: "Buy 10 AAPL at market",
      json_schema: ORDER_TICKET,
      max_tokens: 80,
      sampling: { temperature: 0.8, seed: 3 },
    });
    expect(res.status).toBe(200);
    const body = JsonGenerateResponse.parse((await res.json()) as Record<string, unknown>);
    expect(validatorFor(ORDER_TICKET)(body.json)).toBe(true);
    expect(JSON.parse(body.raw)).toEqual(body.json);
    expect(body.usage.completion_tokens).toBeLessThanOrEqual(80);
    expect(body.model).toBeTruthy();
    expect(body.timings.total_ms).toBeGreaterThanOrEqual(0);
  });

  it("400 unsupported_schema names the keyword outside the subset", async () => {
    const res = await post(route, {
      prompt: "x",
      json_schema: { type: "object", properties: { a: { type: "string", pattern: "^a" } } },
      max_tokens: 50,
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      code: "unsupported_schema",
      keyword: "pattern",
      path: "#/properties/a",
    });
    expect(body.error).toContain('"pattern"');
    expect(body.request_id).toBeTruthy();
  });

  it("400 invalid_schema for a schema that is not JSON Schema", async () => {
    const res = await post(route, { prompt: "x", json_schema: { type: "strin" }, max_tokens: 50 });
    expect(res.status).toBe(400);
    expect(((await res.json()) as Record<string, unknown>).code).toBe("invalid_schema");
  });

  it("422 budget_too_small with the minimum, which then succeeds", async () => {
    const res = await post(route, { prompt: "x", json_schema: ORDER_TICKET, max_tokens: 3 });
    expect(res.status).toBe(422);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body.code).toBe("budget_too_small");
    const min = body.min_max_length as number;
    expect(min).toBeGreaterThan(3);
    const ok = await post(route, { prompt: "x", json_schema: ORDER_TICKET, max_tokens: min });
    expect(ok.status).toBe(200);
    const value = JsonGenerateResponse.parse((await ok.json()) as Record<string, unknown>);
    expect(validatorFor(ORDER_TICKET)(value.json)).toBe(true);
    expect(value.usage.completion_tokens).toBeLessThanOrEqual(min);
  });

  it("422 invalid_request for a body without json_schema, 405 for GET", async () => {
    const res = await post(route, { prompt: "x", max_tokens: 50 });
    expect(res.status).toBe(422);
    expect(((await res.json()) as Record<string, unknown>).code).toBe("invalid_request");
    const get = await app.request(`http://gpu-node.test${route}`);
    expect(get.status).toBe(405);
    expect(get.headers.get("Allow")).toBe("POST");
  });

  it(model === "hermes" ? "takes messages" : "refuses messages (422)", async () => {
    const res = await post(route, {
      messages: [
        { role: "system", content: "JSON only." },
        { role: "user", content: "A boolean please." },
      ],
      json_schema: { type: "boolean" },
      max_tokens: 10,
    });
    if (model === "hermes") {
      expect(res.status).toBe(200);
      expect(typeof ((await res.json()) as Record<string, unknown>).json).toBe("boolean");
    } else {
      expect(res.status).toBe(422);
      expect(((await res.json()) as Record<string, unknown>).code).toBe("invalid_request");
    }
  });
});

const STREAM_ROUTES = [
  ["hermes", GPU_ROUTES.hermesJsonStream],
  ["phi3", GPU_ROUTES.phi3JsonStream],
] as const;

async function streamEvents(res: Response): Promise<StreamEvent[]> {
  expect(res.status).toBe(200);
  expect(res.headers.get("Content-Type")).toBe(STREAM_CONTENT_TYPE);
  const text = await res.text();
  expect(text.endsWith("\n")).toBe(true);
  return text
    .trimEnd()
    .split("\n")
    .map((line) => StreamEvent.parse(JSON.parse(line)));
}

describe.each(STREAM_ROUTES)("POST %s json/stream", (_model, route) => {
  it("streams pieces of the JSON text that join to raw, then done with an ajv-valid json", async () => {
    const res = await post(route, {
      prompt: "Buy 10 AAPL at market",
      json_schema: ORDER_TICKET,
      max_tokens: 80,
      sampling: { temperature: 0.8, seed: 7 },
    });
    const events = await streamEvents(res);
    const last = events.at(-1);
    expect(last?.type).toBe("done");
    const pieces = events.slice(0, -1).map((e) => (e.type === "text" ? e.text : undefined));
    expect(pieces.every((p) => typeof p === "string" && p.length > 0)).toBe(true);
    // Token by token, not the whole text in one piece at the end.
    expect(pieces.length).toBeGreaterThan(1);
    const body = JsonGenerateResponse.parse(last?.type === "done" ? last.response : {});
    expect(pieces.join("")).toBe(body.raw);
    expect(validatorFor(ORDER_TICKET)(body.json)).toBe(true);
    expect(JSON.parse(body.raw)).toEqual(body.json);
    expect(body.usage.completion_tokens).toBeLessThanOrEqual(80);
  });

  it("closes within the smallest budget, streamed; refusals stay JSON errors", async () => {
    const refused = await post(route, {
      prompt: "x",
      json_schema: { type: "string", format: "email" },
      max_tokens: 20,
    });
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as Record<string, unknown>).code).toBe("unsupported_schema");
    const small = await post(route, { prompt: "x", json_schema: ORDER_TICKET, max_tokens: 3 });
    expect(small.status).toBe(422);
    const min = ((await small.json()) as Record<string, unknown>).min_max_length as number;
    const events = await streamEvents(
      await post(route, { prompt: "x", json_schema: ORDER_TICKET, max_tokens: min }),
    );
    const last = events.at(-1);
    const body = JsonGenerateResponse.parse(last?.type === "done" ? last.response : {});
    const text = events.flatMap((e) => (e.type === "text" ? [e.text] : [])).join("");
    expect(text).toBe(body.raw);
    expect(validatorFor(ORDER_TICKET)(body.json)).toBe(true);
    expect(body.usage.completion_tokens).toBeLessThanOrEqual(min);
  });
});
