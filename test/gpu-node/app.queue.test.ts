import { describe, expect, it } from "vitest";
import {
  DEADLINE_HEADER,
  ErrorBody,
  GPU_ROUTES,
  GpuNodeHealth,
  HermesGenerateResponse,
} from "../../gpu-node/contract/index.ts";
import { RequestAbortedError } from "../../gpu-node/lifecycle/request-signal.ts";
import { createHarness, settle } from "./harness.ts";
import { hermesResult, phi3Result } from "./scripted-runtime.ts";

const hermesBody = { prompt: "x", max_tokens: 5 };
const phi3Body = { prompt: "x", max_tokens: 5 };

async function queueOf(h: ReturnType<typeof createHarness>, model: "hermes" | "phi3") {
  const health = GpuNodeHealth.parse(await (await h.get(GPU_ROUTES.health)).json());
  return health.models[model].queue;
}

describe("GPU node app: queueing, deadlines, aborts, shutdown", () => {
  it("runs HERMES_PARALLEL generations at once and queues the rest with their wait time", async () => {
    const h = createHarness({ hermesParallel: 2 });
    const first = h.post(GPU_ROUTES.hermesGenerate, hermesBody);
    const second = h.post(GPU_ROUTES.hermesGenerate, hermesBody);
    const third = h.post(GPU_ROUTES.hermesGenerate, hermesBody);
    const a = await h.hermes.script.nextCall();
    const b = await h.hermes.script.nextCall();
    await settle();
    expect(h.hermes.script.calls).toHaveLength(2);
    expect(await queueOf(h, "hermes")).toEqual({ running: 2, waiting: 1, capacity: 10 });

    h.clock.ms += 300;
    a.finish(hermesResult("a"));
    const c = await h.hermes.script.nextCall();
    b.finish(hermesResult("b"));
    c.finish(hermesResult("c"));
    const bodies = await Promise.all(
      [first, second, third].map(async (r) => HermesGenerateResponse.parse(await (await r).json())),
    );
    expect(bodies.map((body) => body.text)).toEqual(["a", "b", "c"]);
    expect(bodies[2]?.timings.queue_ms).toBe(300);
    expect(bodies[0]?.timings.queue_ms).toBe(0);
  });

  it("Phi-3 runs one generation at a time", async () => {
    const h = createHarness();
    const first = h.post(GPU_ROUTES.phi3Generate, phi3Body);
    const second = h.post(GPU_ROUTES.phi3Generate, phi3Body);
    const a = await h.phi3.script.nextCall();
    await settle();
    expect(h.phi3.script.calls).toHaveLength(1);
    a.finish(phi3Result());
    (await h.phi3.script.nextCall()).finish(phi3Result());
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);
  });

  it("429 queue_full with Retry-After when the queue is full", async () => {
    const h = createHarness({ hermesQueueMax: 1 });
    const running = h.post(GPU_ROUTES.hermesGenerate, hermesBody);
    const waiting = h.post(GPU_ROUTES.hermesGenerate, hermesBody);
    const call = await h.hermes.script.nextCall();
    await settle();

    const res = await h.post(GPU_ROUTES.hermesGenerate, hermesBody);
    expect(res.status).toBe(429);
    const retryAfter = Number(res.headers.get("Retry-After"));
    expect(Number.isInteger(retryAfter) && retryAfter >= 1).toBe(true);
    const error = ErrorBody.parse(await res.json());
    expect(error).toMatchObject({
      code: "queue_full",
      retry_after_s: retryAfter,
      queue: { running: 1, waiting: 1, capacity: 2 },
    });

    // The Phi-3 queue is separate.
    h.phi3.script.autoReply = () => phi3Result();
    expect((await h.post(GPU_ROUTES.phi3Generate, phi3Body)).status).toBe(200);

    call.finish(hermesResult());
    (await h.hermes.script.nextCall()).finish(hermesResult());
    expect((await running).status).toBe(200);
    expect((await waiting).status).toBe(200);
  });

  it("504 gpu_node_timeout when the caller's deadline passes while running; the slot is freed", async () => {
    const h = createHarness();
    const pending = h.post(GPU_ROUTES.hermesGenerate, hermesBody, {
      headers: { [DEADLINE_HEADER]: "30" },
    });
    const call = await h.hermes.script.nextCall();
    const res = await pending;
    expect(res.status).toBe(504);
    expect(ErrorBody.parse(await res.json())).toMatchObject({
      code: "gpu_node_timeout",
      deadline_ms: 30,
    });
    expect(call.signal.aborted).toBe(true);
    expect(call.signal.reason).toBeInstanceOf(RequestAbortedError);
    expect(await queueOf(h, "hermes")).toMatchObject({ running: 0, waiting: 0 });

    h.hermes.script.autoReply = () => hermesResult("next");
    const next = await h.post(GPU_ROUTES.hermesGenerate, hermesBody);
    expect(HermesGenerateResponse.parse(await next.json()).text).toBe("next");
  });

  it("504 for a request whose deadline passes while it waits; it never reaches the model", async () => {
    const h = createHarness();
    const running = h.post(GPU_ROUTES.phi3Generate, phi3Body);
    const call = await h.phi3.script.nextCall();
    const res = await h.post(GPU_ROUTES.phi3Generate, phi3Body, {
      headers: { [DEADLINE_HEADER]: "20" },
    });
    expect(res.status).toBe(504);
    expect(h.phi3.script.calls).toHaveLength(1);
    expect(await queueOf(h, "phi3")).toMatchObject({ running: 1, waiting: 0 });
    call.finish(phi3Result());
    expect((await running).status).toBe(200);
  });

  it("the node's maximum caps any deadline", async () => {
    const h = createHarness({ maxRequestMs: 30 });
    const noHeader = h.post(GPU_ROUTES.hermesGenerate, hermesBody);
    await h.hermes.script.nextCall();
    expect((await noHeader).status).toBe(504);
    const longHeader = h.post(GPU_ROUTES.hermesGenerate, hermesBody, {
      headers: { [DEADLINE_HEADER]: "600000" },
    });
    await h.hermes.script.nextCall();
    const res = await longHeader;
    expect(res.status).toBe(504);
    expect(ErrorBody.parse(await res.json()).deadline_ms).toBe(30);
  });

  it("a client that disconnects while running aborts the generation and frees its slot", async () => {
    const h = createHarness({ hermesQueueMax: 0 });
    const client = new AbortController();
    const pending = h.post(GPU_ROUTES.hermesGenerate, hermesBody, { signal: client.signal });
    const call = await h.hermes.script.nextCall();
    // Full: one running, no waiting room.
    expect((await h.post(GPU_ROUTES.hermesGenerate, hermesBody)).status).toBe(429);

    client.abort();
    await Promise.resolve(pending).catch(() => undefined);
    await settle();
    expect(call.signal.aborted).toBe(true);
    expect((call.signal.reason as RequestAbortedError).kind).toBe("client");
    expect(h.logs.some((line) => /client disconnected/i.test(line.msg))).toBe(true);

    h.hermes.script.autoReply = () => hermesResult("after");
    const next = await h.post(GPU_ROUTES.hermesGenerate, hermesBody);
    expect(next.status).toBe(200);
  });

  it("a client that disconnects while waiting leaves the queue", async () => {
    const h = createHarness({ hermesQueueMax: 1 });
    const running = h.post(GPU_ROUTES.hermesGenerate, hermesBody);
    const call = await h.hermes.script.nextCall();
    const client = new AbortController();
    const waiting = h.post(GPU_ROUTES.hermesGenerate, hermesBody, { signal: client.signal });
    await settle();
    expect(await queueOf(h, "hermes")).toMatchObject({ running: 1, waiting: 1 });

    client.abort();
    await Promise.resolve(waiting).catch(() => undefined);
    await settle();
    expect(await queueOf(h, "hermes")).toMatchObject({ running: 1, waiting: 0 });
    // Its place is free again.
    const another = h.post(GPU_ROUTES.hermesGenerate, hermesBody);
    await settle();
    expect(await queueOf(h, "hermes")).toMatchObject({ running: 1, waiting: 1 });

    call.finish(hermesResult());
    (await h.hermes.script.nextCall()).finish(hermesResult());
    expect((await running).status).toBe(200);
    expect((await another).status).toBe(200);
    expect(h.hermes.script.calls).toHaveLength(2);
  });

  it("shutdown: new requests get 503 shutting_down, in-flight ones are aborted at the end of grace", async () => {
    const h = createHarness();
    const inFlight = h.post(GPU_ROUTES.phi3Generate, phi3Body);
    const call = await h.phi3.script.nextCall();

    h.lifecycle.beginShutdown();
    const refused = await h.post(GPU_ROUTES.hermesGenerate, hermesBody);
    expect(refused.status).toBe(503);
    expect(ErrorBody.parse(await refused.json()).code).toBe("shutting_down");
    expect((await h.get(GPU_ROUTES.health)).status).toBe(503);
    expect(call.signal.aborted).toBe(false);

    h.lifecycle.abortInFlight();
    const res = await inFlight;
    expect(res.status).toBe(503);
    expect(ErrorBody.parse(await res.json()).code).toBe("shutting_down");
    expect(call.signal.aborted).toBe(true);
  });

  it("in-flight work may still finish normally after shutdown began", async () => {
    const h = createHarness();
    const inFlight = h.post(GPU_ROUTES.hermesGenerate, hermesBody);
    const call = await h.hermes.script.nextCall();
    h.lifecycle.beginShutdown();
    call.finish(hermesResult("done"));
    const res = await inFlight;
    expect(res.status).toBe(200);
    expect(HermesGenerateResponse.parse(await res.json()).text).toBe("done");
    await h.registry.hermes.idle();
  });
});
