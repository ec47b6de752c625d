/**
 * The /v1 (OpenAI-compatible) surface with the official `openai` SDK as the client, as cases run
 * on every target (test/edge: in-process Node on PGlite and Postgres; test/workers: the Worker in
 * workerd through Hyperdrive).
 */
import Ajv from "ajv";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GPU_ROUTES, TRADE_PROPOSAL_JSON_SCHEMA } from "../../../gpu-node/contract/index.ts";
import { createEdgeHarness, type EdgeHarness, type EdgeTarget } from "../edge.ts";

const validProposal = new Ajv().compile(TRADE_PROPOSAL_JSON_SCHEMA);
const UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
const COMPLETION_ID = new RegExp(`^chatcmpl-(${UUID})$`);

/** An SDK client of the harness's edge: no retries, so every status is seen as it is. */
export function sdkClient(h: EdgeHarness, apiKey = h.apiKey): OpenAI {
  return new OpenAI({
    apiKey,
    baseURL: `${h.baseUrl}/v1`,
    fetch: h.fetch,
    maxRetries: 0,
    timeout: 30_000,
  });
}

/** Reads a whole export as parsed lines. */
async function exported(h: EdgeHarness, kind: string): Promise<Record<string, unknown>[]> {
  const res = await h.request(`/feedback/phi3/export?kind=${kind}`);
  expect(res.status).toBe(200);
  return (await res.text())
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

const OTHER_SCHEMA = {
  type: "object",
  properties: {
    summary: { type: "string" },
    score: { type: "integer", minimum: 3 },
    mood: { type: "string", enum: ["calm", "nervous"] },
    optional: { type: "boolean" },
  },
  required: ["summary", "score", "mood"],
  additionalProperties: false,
};

export function openAiHappyCases(target: EdgeTarget): void {
  describe(`/v1 with the openai SDK, happy paths (${target.label})`, () => {
    let h: EdgeHarness;
    let client: OpenAI;
    beforeAll(async () => {
      h = await createEdgeHarness({ target });
      client = sdkClient(h);
    });
    afterAll(async () => {
      await h?.close();
    });

    it("models.list: hermes and phi3 with owner, created time, context length and state", async () => {
      const list = [];
      for await (const model of client.models.list()) list.push(model);
      expect(list).toEqual([
        {
          id: "hermes",
          object: "model",
          created: Date.UTC(2024, 7, 15) / 1000,
          owned_by: "NousResearch",
          context_length: 6144,
          state: "ready",
          ready: true,
        },
        {
          id: "phi3",
          object: "model",
          created: Date.UTC(2024, 3, 23) / 1000,
          owned_by: "microsoft",
          context_length: 4096,
          state: "ready",
          ready: true,
        },
      ]);
    });

    it("models.list keeps a model that is not loaded, with its state", async () => {
      h.gpu.options.phi3Loaded = false;
      try {
        const page = await client.models.list();
        const phi3 = page.data.find((m) => m.id === "phi3") as unknown as Record<string, unknown>;
        expect(phi3).toMatchObject({ state: "error", ready: false });
      } finally {
        h.gpu.options.phi3Loaded = true;
      }
    });

    it("chat.completions.create (hermes): a chat.completion with usage, recorded as a generation", async () => {
      const { data, response } = await client.chat.completions
        .create({
          model: "hermes",
          messages: [
            { role: "system", content: "Be brief." },
            { role: "user", content: [{ type: "text", text: "Say hello" }] },
          ],
          max_tokens: 3,
          temperature: 0.5,
          seed: 7,
          user: "alice",
          metadata: { team: "risk" },
        })
        .withResponse();
      expect(data.object).toBe("chat.completion");
      expect(data.id).toMatch(COMPLETION_ID);
      expect(data.model).toBe("hermes");
      expect(data.choices).toHaveLength(1);
      expect(data.choices[0]?.message).toMatchObject({
        role: "assistant",
        content: "Echo: Say hello",
      });
      expect(data.choices[0]?.finish_reason).toBe("length");
      expect(data.usage).toEqual({ prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 });
      const call = h.gpu.calls.at(-1);
      expect(call?.route).toBe(GPU_ROUTES.hermesGenerate);
      expect(call?.body).toEqual({
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "Say hello" },
        ],
        max_tokens: 3,
        sampling: { temperature: 0.5, seed: 7 },
      });
      expect(call?.headers["x-request-id"]).toBe(response.headers.get("x-request-id"));
      const line = (await exported(h, "generations")).at(-1);
      expect(line).toMatchObject({
        id: data.id,
        model: "hermes",
        node_model: "stand-in-hermes",
        messages: [
          { role: "system", content: "Be brief." },
          { role: "user", content: "Say hello" },
        ],
        output: "Echo: Say hello",
        finish_reason: "length",
        usage: { prompt_tokens: 2, completion_tokens: 3, total_tokens: 5 },
        params: { max_tokens: 3, temperature: 0.5, seed: 7 },
        stream: false,
        request_id: response.headers.get("x-request-id"),
      });
      const timings = line?.timings as Record<string, number> | undefined;
      expect(timings?.edge_total_ms).toBeGreaterThanOrEqual(0);
    });

    it("stream: chat.completion.chunk pieces join to the whole answer, then a usage chunk", async () => {
      const messages = [{ role: "user" as const, content: "Tell me about the long weekend" }];
      const whole = await client.chat.completions.create({ model: "hermes", messages });
      const stream = await client.chat.completions.create({
        model: "hermes",
        messages,
        stream: true,
        stream_options: { include_usage: true },
      });
      const chunks = [];
      for await (const chunk of stream) chunks.push(chunk);
      expect(h.gpu.calls.at(-1)?.route).toBe(GPU_ROUTES.hermesGenerateStream);
      const ids = new Set(chunks.map((c) => c.id));
      expect(ids.size).toBe(1);
      expect([...ids][0]).toMatch(COMPLETION_ID);
      expect(chunks.every((c) => c.object === "chat.completion.chunk")).toBe(true);
      expect(chunks[0]?.choices[0]?.delta.role).toBe("assistant");
      const pieces = chunks.flatMap((c) => c.choices.map((x) => x.delta.content ?? ""));
      expect(pieces.filter(Boolean).length).toBeGreaterThan(2);
      expect(pieces.join("")).toBe(whole.choices[0]?.message.content);
      const withFinish = chunks.filter((c) => c.choices[0]?.finish_reason);
      expect(withFinish.map((c) => c.choices[0]?.finish_reason)).toEqual(["stop"]);
      const last = chunks.at(-1);
      expect(last?.choices).toEqual([]);
      expect(last?.usage).toEqual(whole.usage);
      const line = (await exported(h, "generations")).at(-1);
      expect(line).toMatchObject({ id: last?.id, stream: true, output: pieces.join("") });
    });

    it("stream on the wire: text/event-stream, data: lines, data: [DONE] last, no usage unless asked", async () => {
      const res = await h.post("/v1/chat/completions", {
        model: "hermes",
        messages: [{ role: "user", content: "one two three" }],
        stream: true,
      });
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
      expect(res.headers.get("x-request-id")).toMatch(new RegExp(`^${UUID}$`));
      // The same request id on the GPU node's side.
      expect(h.gpu.calls.at(-1)?.headers["x-request-id"]).toBe(res.headers.get("x-request-id"));
      const events = (await res.text()).split("\n\n").filter(Boolean);
      expect(events.every((e) => e.startsWith("data: "))).toBe(true);
      expect(events.at(-1)).toBe("data: [DONE]");
      const chunks = events.slice(0, -1).map((e) => JSON.parse(e.slice(6)));
      expect(chunks.every((c) => !("usage" in c))).toBe(true);
      expect(chunks.at(-1).choices[0].finish_reason).toBe("stop");
    });

    it("stop sequences reach the node and cut the answer", async () => {
      const done = await client.chat.completions.create({
        model: "hermes",
        messages: [{ role: "user", content: "alpha beta gamma delta" }],
        stop: " gamma",
      });
      expect(h.gpu.calls.at(-1)?.body).toMatchObject({ stop: [" gamma"] });
      expect(done.choices[0]?.message.content).toBe("Echo: alpha beta");
      expect(done.choices[0]?.finish_reason).toBe("stop");
    });

    it("phi3 answers a recorded trade proposal by default: chatcmpl-<transaction_id>, feedback works", async () => {
      const { data, response } = await client.chat.completions
        .create({
          model: "phi3",
          messages: [
            { role: "system", content: "You manage risk." },
            { role: "user", content: "Earlier question" },
            { role: "assistant", content: "Earlier answer" },
            { role: "user", content: "Trim the stop on MSFT?" },
          ],
          max_tokens: 64,
        })
        .withResponse();
      const tx = response.headers.get("x-transaction-id");
      expect(data.id).toBe(`chatcmpl-${tx}`);
      const proposal = JSON.parse(data.choices[0]?.message.content ?? "");
      expect(validProposal(proposal)).toBe(true);
      expect(proposal.ticker).toBe("MSFT");
      const call = h.gpu.calls.at(-1);
      expect(call?.route).toBe(GPU_ROUTES.phi3Generate);
      expect(call?.body).toMatchObject({ prompt: "Trim the stop on MSFT?", max_tokens: 64 });
      const line = (await h.recorded()).log.at(-1);
      expect(line).toMatchObject({
        transaction_id: tx,
        phi3_proposal: proposal,
        prompt: "Trim the stop on MSFT?",
        endpoint: "v1_chat_completions",
        max_length: 64,
      });
      const fb = await h.post("/feedback/phi3/", {
        transaction_id: tx,
        feedback_type: "rating",
        feedback_content: 5,
      });
      expect(fb.status).toBe(200);
    });

    it("phi3 with response_format json_schema = the trade schema, streamed: pieces parse when joined, recorded, augmented", async () => {
      // A correction first, so the next similar prompt is augmented with it.
      const first = await client.chat.completions
        .create({
          model: "phi3",
          messages: [{ role: "user", content: "NVDA fell 6% on earnings" }],
        })
        .withResponse();
      const corrected = {
        ticker: "NVDA",
        action: "pass",
        confidence: 0.7,
        rationale: "Earnings drop is noise.",
      };
      const fb = await h.post("/feedback/phi3/", {
        transaction_id: first.response.headers.get("x-transaction-id"),
        feedback_type: "correction",
        feedback_content: "hold",
        corrected_proposal: corrected,
      });
      expect(fb.status).toBe(200);

      const { data: stream, response } = await client.chat.completions
        .create({
          model: "phi3",
          messages: [{ role: "user", content: "NVDA fell again on earnings, adjust?" }],
          response_format: {
            type: "json_schema",
            json_schema: { name: "trade", schema: { ...TRADE_PROPOSAL_JSON_SCHEMA }, strict: true },
          },
          stream: true,
        })
        .withResponse();
      const tx = response.headers.get("x-transaction-id");
      expect(tx).toMatch(new RegExp(`^${UUID}$`));
      const pieces: string[] = [];
      for await (const chunk of stream) {
        expect(chunk.id).toBe(`chatcmpl-${tx}`);
        pieces.push(chunk.choices[0]?.delta.content ?? "");
      }
      expect(pieces.filter(Boolean).length).toBeGreaterThan(3);
      const proposal = JSON.parse(pieces.join(""));
      expect(validProposal(proposal)).toBe(true);
      const sent = h.gpu.calls.at(-1);
      expect(sent?.route).toBe(GPU_ROUTES.phi3GenerateStream);
      const sentBody = sent?.body as { prompt: string } | undefined;
      expect(sentBody?.prompt).toContain(JSON.stringify(corrected));
      const line = (await h.recorded()).log.at(-1);
      expect(line).toMatchObject({
        transaction_id: tx,
        phi3_proposal: proposal,
        endpoint: "v1_chat_completions",
      });
      expect(line?.example_ids).toHaveLength(1);
      const again = await h.post("/feedback/phi3/", {
        transaction_id: tx,
        feedback_type: "qualitative_comment",
        feedback_content: "good",
      });
      expect(again.status).toBe(200);
    });

    it("json_object on phi3 is the proposal path too", async () => {
      const { data, response } = await client.chat.completions
        .create({
          model: "phi3",
          messages: [{ role: "user", content: "AAPL?" }],
          response_format: { type: "json_object" },
        })
        .withResponse();
      expect(data.id).toBe(`chatcmpl-${response.headers.get("x-transaction-id")}`);
      expect(validProposal(JSON.parse(data.choices[0]?.message.content ?? ""))).toBe(true);
    });

    it.each([
      ["hermes", GPU_ROUTES.hermesJson, GPU_ROUTES.hermesJsonStream],
      ["phi3", GPU_ROUTES.phi3Json, GPU_ROUTES.phi3JsonStream],
    ] as const)(
      "%s with another json_schema: the node's any-schema route, valid JSON, recorded as a generation",
      async (model, route, streamRoute) => {
        const validOther = new Ajv().compile(OTHER_SCHEMA);
        const response_format = {
          type: "json_schema" as const,
          json_schema: { name: "summary", schema: OTHER_SCHEMA },
        };
        const messages = [{ role: "user" as const, content: "Summarise my day" }];
        const { data, response } = await client.chat.completions
          .create({ model, messages, response_format })
          .withResponse();
        expect(response.headers.get("x-transaction-id")).toBeNull();
        const content = data.choices[0]?.message.content ?? "";
        expect(validOther(JSON.parse(content))).toBe(true);
        expect(h.gpu.calls.at(-1)).toMatchObject({
          route,
          // Phi-3's JSON route takes the last user message as its prompt, Hermes the conversation.
          body: {
            ...(model === "phi3" ? { prompt: "Summarise my day" } : { messages }),
            json_schema: OTHER_SCHEMA,
            max_tokens: 256,
          },
        });
        const line = (await exported(h, "generations")).at(-1);
        expect(line).toMatchObject({ id: data.id, model, output: content, response_format });

        const stream = await client.chat.completions.create({
          model,
          messages,
          response_format,
          stream: true,
        });
        let joined = "";
        for await (const chunk of stream) joined += chunk.choices[0]?.delta.content ?? "";
        expect(h.gpu.calls.at(-1)?.route).toBe(streamRoute);
        expect(joined).toBe(content);
      },
    );

    it("json_object on hermes asks the node for any JSON object", async () => {
      const done = await client.chat.completions.create({
        model: "hermes",
        messages: [{ role: "user", content: "as JSON" }],
        response_format: { type: "json_object" },
      });
      expect(h.gpu.calls.at(-1)).toMatchObject({
        route: GPU_ROUTES.hermesJson,
        body: { json_schema: { type: "object" } },
      });
      expect(JSON.parse(done.choices[0]?.message.content ?? "")).toEqual({});
    });

    it("abort mid-stream: the client's disconnect reaches the GPU node, which stops; the next request runs", async () => {
      const route = GPU_ROUTES.hermesGenerateStream;
      const count = (list: string[]) => list.filter((r) => r === route).length;
      const abortedBefore = count(h.gpu.aborted);
      const completedBefore = count(h.gpu.streamsCompleted);
      h.gpu.options.streamDelayMs = 200;
      try {
        const controller = new AbortController();
        const stream = await client.chat.completions.create(
          {
            model: "hermes",
            messages: [{ role: "user", content: "word ".repeat(200) }],
            max_tokens: 200,
            stream: true,
          },
          { signal: controller.signal },
        );
        let seen = 0;
        // The SDK ends the iteration quietly after an abort, or throws an abort error.
        await (async () => {
          for await (const chunk of stream) {
            if (chunk.choices[0]?.delta.content) seen++;
            if (seen === 2) controller.abort();
          }
        })().catch((err: unknown) => expect(String(err)).toMatch(/abort/i));
        expect(seen).toBe(2);
        await expect.poll(() => count(h.gpu.aborted), { timeout: 10_000 }).toBe(abortedBefore + 1);
        // 200 pieces at 200 ms would take 40 s: the node's stream never reached its end.
        expect(count(h.gpu.streamsCompleted)).toBe(completedBefore);
      } finally {
        h.gpu.options.streamDelayMs = 0;
      }
      const next = await client.chat.completions.create({
        model: "hermes",
        messages: [{ role: "user", content: "next" }],
        stream: true,
      });
      let text = "";
      for await (const chunk of next) text += chunk.choices[0]?.delta.content ?? "";
      expect(text).toBe("Echo: next");
    });

    it("/openapi.json describes /v1", async () => {
      const res = await h.request("/openapi.json");
      const doc = (await res.json()) as {
        paths: Record<string, Record<string, { responses: Record<string, unknown> }>>;
        components: { schemas: Record<string, unknown> };
      };
      expect(Object.keys(doc.paths["/v1/chat/completions"] ?? {})).toEqual(["post"]);
      expect(Object.keys(doc.paths["/v1/models"] ?? {})).toEqual(["get"]);
      const post = doc.paths["/v1/chat/completions"]?.post;
      expect(Object.keys(post?.responses ?? {})).toEqual(
        expect.arrayContaining(["200", "400", "401", "404", "413", "429", "503", "504"]),
      );
      for (const name of [
        "ChatCompletionRequest",
        "ChatCompletion",
        "ChatCompletionChunk",
        "OpenAIError",
      ]) {
        expect(doc.components.schemas).toHaveProperty(name);
      }
    });
  });
}
