/**
 * The GPU client's streaming calls against hand-made NDJSON bodies (an injected fetch): line
 * splitting across chunks, the done event parsed by the route's schema, error events, a stream
 * cut short, the per-gap time limit, and cancellation reaching the body.
 */
import { describe, expect, it } from "vitest";
import { ApiError } from "../../edge/errors.ts";
import { createGpuStreaming } from "../../edge/gpu-stream.ts";
import { GPU_ROUTES, type HermesGenerateResponse } from "../../gpu-node/contract/index.ts";

const done: HermesGenerateResponse = {
  text: "Hello world",
  model: "m",
  finish_reason: "stop",
  usage: { prompt_tokens: 1, completion_tokens: 2 },
  timings: { queue_ms: 0, prompt_ms: 0, generate_ms: 0, total_ms: 0 },
};

interface Script {
  /** Pieces of the body, each sent after waiting its delay (ms). */
  chunks: [number, string][];
  status?: number;
  cancelled?: boolean;
  requests: { url: string; headers: Headers; body: unknown }[];
}

function scripted(script: Omit<Script, "requests">) {
  const s: Script = { ...script, requests: [] };
  const encoder = new TextEncoder();
  const fetchFn = (async (url: string, init: RequestInit) => {
    s.requests.push({
      url,
      headers: new Headers(init.headers),
      body: JSON.parse(String(init.body)),
    });
    let i = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        const next = s.chunks[i++];
        if (!next) return controller.close();
        await new Promise((r) => setTimeout(r, next[0]));
        controller.enqueue(encoder.encode(next[1]));
      },
      cancel() {
        s.cancelled = true;
      },
    });
    init.signal?.addEventListener("abort", () => {
      s.cancelled = true;
    });
    return new Response(s.status && s.status >= 400 ? s.chunks[0]?.[1] : body, {
      status: s.status ?? 200,
      headers: { "content-type": "application/x-ndjson" },
    });
  }) as unknown as typeof fetch;
  return {
    script: s,
    client: createGpuStreaming({
      baseUrl: "http://node/",
      timeoutMs: 1000,
      fetch: fetchFn,
      token: "t",
    }),
  };
}

const line = (v: unknown) => `${JSON.stringify(v)}\n`;

async function collect<T>(stream: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const e of stream) out.push(e);
  return out;
}

async function failure(p: Promise<unknown>): Promise<ApiError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ApiError);
  return err as ApiError;
}

describe("GPU streaming client", () => {
  it("splits lines across chunk boundaries, yields text then the parsed done event", async () => {
    const body =
      line({ type: "text", text: "Hello" }) +
      line({ type: "text", text: " world" }) +
      line({ type: "done", response: done });
    // Cut the body at awkward places: inside a line, between \n and the next line.
    const cuts = [3, 17, 18, 40, body.length - 2];
    const chunks: [number, string][] = [];
    let from = 0;
    for (const to of [...cuts, body.length]) {
      chunks.push([0, body.slice(from, to)]);
      from = to;
    }
    const { script, client } = scripted({ chunks });
    const stream = await client.hermesGenerateStream(
      { prompt: "x", max_tokens: 4 },
      { requestId: "rid-1" },
    );
    expect(await collect(stream)).toEqual([
      { type: "text", text: "Hello" },
      { type: "text", text: " world" },
      { type: "done", response: done },
    ]);
    const req = script.requests[0];
    expect(req?.url).toBe(`http://node${GPU_ROUTES.hermesGenerateStream}`);
    expect(req?.headers.get("authorization")).toBe("Bearer t");
    expect(req?.headers.get("x-request-id")).toBe("rid-1");
    // A stream's limit is per gap, so no total deadline is sent.
    expect(req?.headers.get("x-deadline-ms")).toBeNull();
    expect(req?.body).toEqual({ prompt: "x", max_tokens: 4 });
  });

  it("an error event becomes the node's ApiError (code and status from the table)", async () => {
    const { client } = scripted({
      chunks: [
        [0, line({ type: "text", text: "a" })],
        [0, line({ type: "error", error: "queue gone", code: "shutting_down", request_id: "n" })],
      ],
    });
    const stream = await client.hermesGenerateStream({ prompt: "x", max_tokens: 4 });
    const err = await failure(collect(stream));
    expect(err.code).toBe("shutting_down");
    expect(err.status).toBe(503);
    expect(err.message).toBe("queue gone");
  });

  it("a refusal before streaming is thrown by the open call, with Retry-After", async () => {
    const { client } = scripted({
      status: 429,
      chunks: [[0, JSON.stringify({ error: "busy", code: "queue_full", request_id: "n" })]],
    });
    const err = await failure(client.hermesGenerateStream({ prompt: "x", max_tokens: 4 }));
    expect(err.code).toBe("queue_full");
    expect(err.status).toBe(429);
  });

  it("a stream that ends without done, a garbage line, or a done outside the contract is a gpu_node_error", async () => {
    for (const chunks of [
      [[0, line({ type: "text", text: "a" })]],
      [[0, "not json\n"]],
      [[0, line({ type: "done", response: { text: 1 } })]],
    ] as [number, string][][]) {
      const { client } = scripted({ chunks });
      const stream = await client.hermesGenerateStream({ prompt: "x", max_tokens: 4 });
      expect((await failure(collect(stream))).code).toBe("gpu_node_error");
    }
  });

  it("the time limit is per gap: a slow but steady stream completes, a long silence is a 504", async () => {
    // timeoutMs is 1000: eight 300 ms gaps take 2.4 s in all.
    const steady: [number, string][] = Array.from({ length: 8 }, () => [
      300,
      line({ type: "text", text: "." }),
    ]);
    steady.push([0, line({ type: "done", response: done })]);
    const a = scripted({ chunks: steady });
    const events = await collect(
      await a.client.hermesGenerateStream({ prompt: "x", max_tokens: 9 }),
    );
    expect(events).toHaveLength(9);

    const b = scripted({
      chunks: [
        [0, line({ type: "text", text: "a" })],
        [3000, line({ type: "done", response: done })],
      ],
    });
    const stream = await b.client.hermesGenerateStream({ prompt: "x", max_tokens: 9 });
    const err = await failure(collect(stream));
    expect(err.code).toBe("gpu_node_timeout");
    expect(err.status).toBe(504);
    expect(b.script.cancelled).toBe(true);
  });

  it("cancel() and the caller's signal close the node's body", async () => {
    const chunks: [number, string][] = Array.from({ length: 50 }, () => [
      50,
      line({ type: "text", text: "." }),
    ]);
    const a = scripted({ chunks });
    const stream = await a.client.hermesGenerateStream({ prompt: "x", max_tokens: 9 });
    const it = stream[Symbol.asyncIterator]();
    await it.next();
    stream.cancel();
    expect((await it.next()).done).toBe(true);
    expect(a.script.cancelled).toBe(true);

    const b = scripted({ chunks });
    const client = new AbortController();
    const s2 = await b.client.hermesGenerateStream(
      { prompt: "x", max_tokens: 9 },
      { signal: client.signal },
    );
    const it2 = s2[Symbol.asyncIterator]();
    await it2.next();
    client.abort();
    expect((await failure(it2.next())).code).toBe("request_aborted");
    expect(b.script.cancelled).toBe(true);
  });
});
