/**
 * The GPU node's streaming routes and any-schema JSON routes, for the edge's /v1 surface.
 * Workers-safe: fetch, ReadableStream and TextDecoderStream only.
 *
 * A stream is opened with the request body of its non-streaming twin (gpu-node/contract/stream.ts):
 * the call resolves once the node has answered 200 (so queue_full, model_not_loaded, a schema the
 * node refuses... are ordinary errors with their status, before any byte goes to the client), then
 * yields the node's NDJSON events as they arrive: text pieces, and one `done` holding the response
 * parsed with the route's schema. The time limit is per wait, not per answer: `timeoutMs` bounds
 * the wait for the node's answer and each gap between two events, so a long answer that keeps
 * coming is never cut. No X-Deadline-Ms is sent on a stream for the same reason (the node's own
 * GPU_NODE_MAX_REQUEST_MS still caps it). `cancel()` (or the caller's signal) closes the
 * connection, which stops the node's sequence.
 */
import type { z } from "zod";
import {
  DEADLINE_HEADER,
  GPU_ROUTES,
  type HermesGenerateRequest,
  HermesGenerateResponse,
  type JsonGenerateRequest,
  JsonGenerateResponse,
  type Phi3GenerateRequest,
  Phi3GenerateResponse,
  REQUEST_ID_HEADER,
} from "../gpu-node/contract/index.ts";
import { StreamEvent } from "../gpu-node/contract/stream.ts";
import { ApiError } from "./errors.ts";
import {
  type CallOptions,
  type HttpGpuClientOptions,
  nodeError,
  readJsonBody,
  transportError,
} from "./gpu-client.ts";

export type GpuModel = "hermes" | "phi3";

/** What a stream yields: text pieces as produced, then the final response (exactly once). */
export type GpuStreamEvent<T> = { type: "text"; text: string } | { type: "done"; response: T };

export interface GpuEventStream<T> extends AsyncIterable<GpuStreamEvent<T>> {
  /** Closes the connection to the node (idempotent); the iteration ends. */
  cancel(): void;
}

export interface GpuStreaming {
  /** Structured output for any schema of the subset (GPU_ROUTES.hermesJson / phi3Json). */
  jsonGenerate(
    model: GpuModel,
    body: JsonGenerateRequest,
    options?: CallOptions,
  ): Promise<JsonGenerateResponse>;
  hermesGenerateStream(
    body: HermesGenerateRequest,
    options?: CallOptions,
  ): Promise<GpuEventStream<HermesGenerateResponse>>;
  phi3GenerateStream(
    body: Phi3GenerateRequest,
    options?: CallOptions,
  ): Promise<GpuEventStream<Phi3GenerateResponse>>;
  jsonGenerateStream(
    model: GpuModel,
    body: JsonGenerateRequest,
    options?: CallOptions,
  ): Promise<GpuEventStream<JsonGenerateResponse>>;
}

/** The node went quiet for longer than the wait allowed. */
class IdleTimeout extends Error {
  override name = "TimeoutError";
}

const JSON_ROUTES = { hermes: GPU_ROUTES.hermesJson, phi3: GPU_ROUTES.phi3Json } as const;
const JSON_STREAM_ROUTES = {
  hermes: GPU_ROUTES.hermesJsonStream,
  phi3: GPU_ROUTES.phi3JsonStream,
} as const;

export function createGpuStreaming(options: HttpGpuClientOptions): GpuStreaming {
  const base = options.baseUrl.replace(/\/+$/, "");
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));

  const headersFor = (call: CallOptions, deadlineMs?: number) => {
    const headers: Record<string, string> = { "content-type": "application/json" };
    if (deadlineMs !== undefined) headers[DEADLINE_HEADER] = String(deadlineMs);
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (call.requestId) headers[REQUEST_ID_HEADER] = call.requestId;
    return headers;
  };

  const outsideContract = (cause: unknown) =>
    new ApiError("gpu_node_error", "GPU node answered outside the contract.", {}, { cause });

  /** A non-2xx answer: the node's error envelope, passed through. */
  async function refused(res: Response, signal: AbortSignal, timeoutMs: number): Promise<never> {
    const payload = await readJsonBody(res, signal, timeoutMs);
    throw nodeError({ status: res.status, header: (name) => res.headers.get(name) }, payload);
  }

  async function postJson<T extends z.ZodType>(
    route: string,
    schema: T,
    body: unknown,
    call: CallOptions = {},
  ): Promise<z.output<T>> {
    const timeoutMs = call.timeoutMs ?? options.timeoutMs;
    const timeout = new AbortController();
    const timer = setTimeout(() => timeout.abort(new IdleTimeout()), timeoutMs);
    const signal = call.signal ? AbortSignal.any([call.signal, timeout.signal]) : timeout.signal;
    try {
      let res: Response;
      try {
        res = await doFetch(`${base}${route}`, {
          method: "POST",
          headers: headersFor(call, timeoutMs),
          body: JSON.stringify(body),
          signal,
        });
      } catch (err) {
        throw transportError(err, signal, timeoutMs);
      }
      if (!res.ok) return await refused(res, signal, timeoutMs);
      let payload: unknown;
      try {
        payload = await res.json();
      } catch (err) {
        if (signal.aborted) throw transportError(err, signal, timeoutMs);
        throw outsideContract(err);
      }
      const parsed = schema.safeParse(payload);
      if (!parsed.success) throw outsideContract(parsed.error);
      return parsed.data;
    } finally {
      clearTimeout(timer);
    }
  }

  async function open<T extends z.ZodType>(
    route: string,
    schema: T,
    body: unknown,
    call: CallOptions = {},
  ): Promise<GpuEventStream<z.output<T>>> {
    const waitMs = call.timeoutMs ?? options.timeoutMs;
    const local = new AbortController();
    const signal = call.signal ? AbortSignal.any([call.signal, local.signal]) : local.signal;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let reader: ReadableStreamDefaultReader<string> | undefined;
    // Aborting the fetch errors its body on most runtimes; cancelling the reader as well makes
    // a pending read return on all of them.
    const stop = (reason: unknown) => {
      if (!local.signal.aborted) local.abort(reason);
      reader?.cancel().catch(() => {});
    };
    call.signal?.addEventListener("abort", () => stop(call.signal?.reason), { once: true });
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => stop(new IdleTimeout()), waitMs);
    };
    const timedOut = () =>
      new ApiError(
        "gpu_node_timeout",
        `GPU node sent nothing for ${waitMs} ms.`,
        { timeout_ms: waitMs },
        { cause: signal.reason },
      );
    const failed = (err: unknown) =>
      err instanceof ApiError
        ? err
        : local.signal.reason instanceof IdleTimeout
          ? timedOut()
          : transportError(err, signal, waitMs);

    arm();
    let res: Response;
    try {
      res = await doFetch(`${base}${route}`, {
        method: "POST",
        headers: headersFor(call),
        body: JSON.stringify(body),
        signal,
      });
      if (!res.ok) await refused(res, signal, waitMs);
      if (!res.body) throw outsideContract(new Error("no body"));
    } catch (err) {
      clearTimeout(timer);
      throw failed(err);
    }
    const lines = res.body.pipeThrough(new TextDecoderStream()).getReader();
    reader = lines;
    let cancelled = false;
    const cancel = () => {
      if (cancelled) return;
      cancelled = true;
      clearTimeout(timer);
      stop(new Error("stream cancelled by the edge"));
    };

    async function* events(): AsyncGenerator<GpuStreamEvent<z.output<T>>> {
      let buffer = "";
      try {
        for (;;) {
          arm();
          let chunk: Awaited<ReturnType<typeof lines.read>>;
          try {
            chunk = await lines.read();
          } catch (err) {
            if (cancelled) return;
            throw failed(err);
          }
          if (chunk.done) {
            if (cancelled) return;
            if (signal.aborted) throw failed(signal.reason);
            break;
          }
          buffer += chunk.value;
          let newline = buffer.indexOf("\n");
          while (newline >= 0) {
            const line = buffer.slice(0, newline).trim();
            buffer = buffer.slice(newline + 1);
            newline = buffer.indexOf("\n");
            if (!line) continue;
            const event = parseEvent(line);
            if (event.type === "text") {
              yield event;
            } else if (event.type === "error") {
              const { error, code, request_id: _nodeRequestId, type: _type, ...details } = event;
              throw new ApiError(code, error, details);
            } else {
              const parsed = schema.safeParse(event.response);
              if (!parsed.success) throw outsideContract(parsed.error);
              yield { type: "done", response: parsed.data };
              return;
            }
          }
        }
        if (cancelled) return;
        throw new ApiError("gpu_node_error", "GPU node's stream ended before its final event.");
      } finally {
        cancel();
      }
    }

    const iterable = events();
    return { [Symbol.asyncIterator]: () => iterable, cancel };
  }

  function parseEvent(line: string): StreamEvent {
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (err) {
      throw outsideContract(err);
    }
    const parsed = StreamEvent.safeParse(value);
    if (!parsed.success) throw outsideContract(parsed.error);
    return parsed.data;
  }

  return {
    jsonGenerate: (model, body, o) => postJson(JSON_ROUTES[model], JsonGenerateResponse, body, o),
    hermesGenerateStream: (body, o) =>
      open(GPU_ROUTES.hermesGenerateStream, HermesGenerateResponse, body, o),
    phi3GenerateStream: (body, o) =>
      open(GPU_ROUTES.phi3GenerateStream, Phi3GenerateResponse, body, o),
    jsonGenerateStream: (model, body, o) =>
      open(JSON_STREAM_ROUTES[model], JsonGenerateResponse, body, o),
  };
}
