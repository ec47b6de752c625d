/** The NDJSON streaming routes (contract/stream.ts) over scripted runtimes. */
import { describe, expect, it } from "vitest";
import { ServiceError } from "../../gpu-node/contract/errors.ts";
import {
  ErrorBody,
  GPU_ROUTES,
  HermesGenerateResponse,
  Phi3GenerateResponse,
} from "../../gpu-node/contract/index.ts";
import { STREAM_CONTENT_TYPE, StreamEvent } from "../../gpu-node/contract/stream.ts";
import type { RequestAbortedError } from "../../gpu-node/lifecycle/request-signal.ts";
import { createHarness, settle } from "./harness.ts";
import { hermesResult, phi3Result, SAMPLE_PROPOSAL } from "./scripted-runtime.ts";

const hermesBody = { prompt: "x", max_tokens: 5 };

async function events(res: Response) {
  expect(res.status).toBe(200);
  expect(res.headers.get("Content-Type")).toBe(STREAM_CONTENT_TYPE);
  const text = await res.text();
  expect(text.endsWith("\n")).toBe(true);
  return text
    .trimEnd()
    .split("\n")
    .map((line) => StreamEvent.parse(JSON.parse(line)));
}

describe("GPU node app: streaming routes", () => {
  it("Hermes: text events as they come, then done with the non-streaming answer", async () => {
    const h = createHarness();
    const pending = h.post(GPU_ROUTES.hermesGenerateStream, {
      messages: [{ role: "user", content: "hi" }],
      max_tokens: 5,
      stop: ["\n\n"],
    });
    const call = await h.hermes.script.nextCall();
    expect(call.input).toEqual({
      messages: [{ role: "user", content: "hi" }],
      systemPrompt: "SYSTEM PROMPT",
      maxTokens: 5,
      stop: ["\n\n"],
    });
    call.text("It looks ");
    const res = await pending;
    call.text("stretched.");
    h.clock.ms += 40;
    call.finish(hermesResult("It looks stretched."));
    const all = await events(res);
    expect(all.slice(0, 2)).toEqual([
      { type: "text", text: "It looks " },
      { type: "text", text: "stretched." },
    ]);
    expect(all).toHaveLength(3);
    const done = all[2];
    expect(done?.type).toBe("done");
    const response = HermesGenerateResponse.parse(done?.type === "done" ? done.response : {});
    expect(response).toEqual({
      text: "It looks stretched.",
      model: "scripted-hermes",
      finish_reason: "stop",
      usage: { prompt_tokens: 12, completion_tokens: 4 },
      timings: { queue_ms: 0, prompt_ms: 3, generate_ms: 7, total_ms: 40 },
    });
  });

  it("Phi-3: a runtime that does not stream yet sends its JSON text as one piece before done", async () => {
    const h = createHarness();
    h.phi3.script.autoReply = () => phi3Result();
    const all = await events(
      await h.post(GPU_ROUTES.phi3GenerateStream, { prompt: "AAPL", max_tokens: 64 }),
    );
    expect(all.map((e) => e.type)).toEqual(["text", "done"]);
    const pieces = all.flatMap((e) => (e.type === "text" ? [e.text] : []));
    const done = all[1];
    const response = Phi3GenerateResponse.parse(done?.type === "done" ? done.response : {});
    expect(pieces.join("")).toBe(response.raw);
    expect(response.proposal).toEqual(SAMPLE_PROPOSAL);
  });

  it("Phi-3: streamed pieces and the rest the runtime did not send add up to raw", async () => {
    const h = createHarness();
    const pending = h.post(GPU_ROUTES.phi3GenerateStream, { prompt: "AAPL", max_tokens: 64 });
    const call = await h.phi3.script.nextCall();
    const raw = JSON.stringify(SAMPLE_PROPOSAL);
    call.text(raw.slice(0, 10));
    call.finish(phi3Result());
    const all = await events(await pending);
    expect(all.flatMap((e) => (e.type === "text" ? [e.text] : [])).join("")).toBe(raw);
  });

  it("critique streams too", async () => {
    const h = createHarness();
    const pending = h.post(GPU_ROUTES.hermesCritiqueStream, {
      proposal: SAMPLE_PROPOSAL,
      max_length: 50,
    });
    const call = await h.hermes.script.nextCall();
    expect(call.input.maxTokens).toBe(100);
    call.text("Too tight.");
    call.finish(hermesResult("Too tight."));
    const all = await events(await pending);
    expect(all.map((e) => e.type)).toEqual(["text", "done"]);
  });

  it("failures before the first piece are ordinary JSON errors with their status", async () => {
    const h = createHarness({ hermesQueueMax: 0 });
    // Too long a prompt: the runtime refuses before generating.
    const refused = h.post(GPU_ROUTES.hermesGenerateStream, hermesBody);
    (await h.hermes.script.nextCall()).fail(
      new ServiceError("prompt_too_long", "The prompt does not fit.", { prompt_tokens: 9000 }),
    );
    const res = await refused;
    expect(res.status).toBe(400);
    expect(ErrorBody.parse(await res.json())).toMatchObject({
      code: "prompt_too_long",
      prompt_tokens: 9000,
    });

    // Queue full: 429 with Retry-After.
    const running = h.post(GPU_ROUTES.hermesGenerateStream, hermesBody);
    const call = await h.hermes.script.nextCall();
    const full = await h.post(GPU_ROUTES.hermesGenerateStream, hermesBody);
    expect(full.status).toBe(429);
    expect(Number(full.headers.get("Retry-After"))).toBeGreaterThanOrEqual(1);
    call.finish(hermesResult("ok"));
    expect((await events(await running)).at(-1)?.type).toBe("done");

    // Not loaded: 503 with the seed's message.
    const loading = createHarness({ ready: false });
    const notLoaded = await loading.post(GPU_ROUTES.phi3GenerateStream, hermesBody);
    expect(notLoaded.status).toBe(503);
    expect(ErrorBody.parse(await notLoaded.json()).code).toBe("model_not_loaded");
    // Validation as on the JSON route.
    const invalid = await h.post(GPU_ROUTES.hermesGenerateStream, { max_tokens: 5 });
    expect(invalid.status).toBe(422);
  });

  it("a failure after the first piece ends the stream with an error event", async () => {
    const h = createHarness();
    const pending = h.post(GPU_ROUTES.hermesGenerateStream, hermesBody);
    const call = await h.hermes.script.nextCall();
    call.text("partial");
    const res = await pending;
    call.fail(new TypeError("secret internals"));
    const all = await events(res);
    expect(all[0]).toEqual({ type: "text", text: "partial" });
    expect(all[1]).toMatchObject({ type: "error", code: "internal_error" });
    expect(JSON.stringify(all)).not.toContain("secret internals");
    expect(all[1]?.type === "error" && all[1].request_id).toBe(res.headers.get("X-Request-Id"));
  });

  it("a deadline that passes mid-stream ends it with gpu_node_timeout", async () => {
    const h = createHarness();
    const pending = h.post(GPU_ROUTES.hermesGenerateStream, hermesBody, {
      headers: { "X-Deadline-Ms": "40" },
    });
    const call = await h.hermes.script.nextCall();
    call.text("slow");
    const all = await events(await pending);
    expect(all.at(-1)).toMatchObject({ type: "error", code: "gpu_node_timeout", deadline_ms: 40 });
    expect(call.signal.aborted).toBe(true);
  });

  it("a client that closes the stream aborts its generation and frees its place", async () => {
    const h = createHarness({ hermesQueueMax: 0 });
    const res = await (async () => {
      const pending = h.post(GPU_ROUTES.hermesGenerateStream, hermesBody);
      const call = await h.hermes.script.nextCall();
      call.text("one");
      return { res: await pending, call };
    })();
    const reader = res.res.body?.getReader();
    expect(reader).toBeDefined();
    const first = await reader?.read();
    expect(new TextDecoder().decode(first?.value)).toContain('"one"');
    await reader?.cancel();
    await settle();
    expect(res.call.signal.aborted).toBe(true);
    expect((res.call.signal.reason as RequestAbortedError).kind).toBe("client");
    await settle();
    h.hermes.script.autoReply = () => hermesResult("next");
    expect((await h.post(GPU_ROUTES.hermesGenerate, hermesBody)).status).toBe(200);
  });
});
