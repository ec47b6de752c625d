/**
 * HTTP client of the internal GPU-node contract (gpu-node/contract/). Workers-safe: fetch only.
 *
 * Every failure becomes an ApiError: unreachable -> 503 gpu_node_unavailable, out of time ->
 * 504 gpu_node_timeout, the node's own errors (model not loaded, queue full, prompt too long...)
 * pass through with their status, code, message and Retry-After.
 */
import type { z } from "zod";
import {
  DEADLINE_HEADER,
  ErrorBody,
  GPU_ROUTES,
  GpuNodeHealth,
  type HermesCritiqueRequest,
  type HermesGenerateRequest,
  HermesGenerateResponse,
  type Phi3GenerateRequest,
  Phi3GenerateResponse,
  REQUEST_ID_HEADER,
} from "../gpu-node/contract/index.ts";
import type { Logger } from "./deps.ts";
import { ApiError } from "./errors.ts";
import { createGpuRouter } from "./gpu-router.ts";
import { createGpuStreaming, type GpuStreaming } from "./gpu-stream.ts";
import { type EdgeSettings, gpuNodeUrls } from "./settings.ts";

export interface CallOptions {
  /** The client's signal: aborted when the public request goes away. */
  signal?: AbortSignal;
  requestId?: string;
  /** Overrides the client's default timeout. */
  timeoutMs?: number;
  /** The public request's deadline (epoch ms): the call's timeout is cut to what is left. */
  deadline?: number;
}

/** What a JSON call to the GPU node needs from the transport underneath. */
export interface TransportRequest {
  method: "GET" | "POST";
  url: string;
  headers: Record<string, string>;
  body?: string;
  signal: AbortSignal;
}

export interface TransportResponse {
  status: number;
  header(name: string): string | null;
  /** The body parsed as JSON; rejects when it is not JSON. */
  json(): Promise<unknown>;
}

/**
 * Sends one JSON request. The default is `fetch` (Workers and anywhere else); the Node entry
 * injects a keep-alive node:http transport (edge/node-runtime/gpu-transport.ts), which costs less CPU.
 */
export type GpuTransport = (request: TransportRequest) => Promise<TransportResponse>;

export function fetchTransport(doFetch: typeof fetch = (i, o) => fetch(i, o)): GpuTransport {
  return async ({ method, url, headers, body, signal }) => {
    const res = await doFetch(url, { method, headers, body, signal });
    return { status: res.status, header: (n) => res.headers.get(n), json: () => res.json() };
  };
}

/** The seed's calls, plus the /v1 surface's streaming and any-schema calls (gpu-stream.ts). */
export interface GpuClient extends GpuStreaming {
  health(options?: CallOptions): Promise<GpuNodeHealth>;
  hermesGenerate(
    body: HermesGenerateRequest,
    options?: CallOptions,
  ): Promise<HermesGenerateResponse>;
  hermesCritique(
    body: HermesCritiqueRequest,
    options?: CallOptions,
  ): Promise<HermesGenerateResponse>;
  phi3Generate(body: Phi3GenerateRequest, options?: CallOptions): Promise<Phi3GenerateResponse>;
}

export interface HttpGpuClientOptions {
  baseUrl: string;
  token?: string;
  timeoutMs: number;
  fetch?: typeof fetch;
  /** Overrides `fetch` for the JSON calls. */
  transport?: GpuTransport;
}

class TimeoutReason extends Error {
  override name = "TimeoutError";
}

export function createHttpGpuClient(options: HttpGpuClientOptions): GpuClient {
  const base = options.baseUrl.replace(/\/+$/, "");
  const send = options.transport ?? fetchTransport(options.fetch);

  async function call<T extends z.ZodType>(
    method: "GET" | "POST",
    route: string,
    schema: T,
    body: unknown,
    call: CallOptions = {},
  ): Promise<z.output<T>> {
    let timeoutMs = call.timeoutMs ?? options.timeoutMs;
    if (call.deadline !== undefined) {
      timeoutMs = Math.max(1, Math.min(timeoutMs, call.deadline - Date.now()));
    }
    // One controller and one timer per call; the client's signal is forwarded, not combined
    // (AbortSignal.any was a measurable share of the edge's CPU per request).
    const controller = new AbortController();
    const { signal } = controller;
    const timer = setTimeout(() => controller.abort(new TimeoutReason()), timeoutMs);
    const client = call.signal;
    const onClientAbort = () => controller.abort(client?.reason);
    if (client?.aborted) onClientAbort();
    else client?.addEventListener("abort", onClientAbort, { once: true });
    const headers: Record<string, string> = { [DEADLINE_HEADER]: String(timeoutMs) };
    if (options.token) headers.authorization = `Bearer ${options.token}`;
    if (call.requestId) headers[REQUEST_ID_HEADER] = call.requestId;
    if (body !== undefined) headers["content-type"] = "application/json";
    try {
      let res: TransportResponse;
      try {
        res = await send({
          method,
          url: `${base}${route}`,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal,
        });
      } catch (err) {
        throw transportError(err, signal, timeoutMs);
      }
      const payload = await readJsonBody(res, signal, timeoutMs);
      if (res.status < 200 || res.status > 299) throw nodeError(res, payload);
      const parsed = schema.safeParse(payload);
      if (!parsed.success) {
        throw new ApiError(
          "gpu_node_error",
          "GPU node answered outside the contract.",
          {},
          { cause: parsed.error },
        );
      }
      return parsed.data;
    } finally {
      clearTimeout(timer);
      client?.removeEventListener("abort", onClientAbort);
    }
  }

  return {
    health: (o) => call("GET", GPU_ROUTES.health, GpuNodeHealth, undefined, o),
    hermesGenerate: (b, o) => call("POST", GPU_ROUTES.hermesGenerate, HermesGenerateResponse, b, o),
    hermesCritique: (b, o) => call("POST", GPU_ROUTES.hermesCritique, HermesGenerateResponse, b, o),
    phi3Generate: (b, o) => call("POST", GPU_ROUTES.phi3Generate, Phi3GenerateResponse, b, o),
    ...createGpuStreaming(options),
  };
}

/** The client the settings describe (GPU_NODE_URL or GPU_NODE_URLS, GPU_NODE_TOKEN,
 * GPU_TIMEOUT_MS): one node's client, or a router over several (gpu-router.ts). */
export function gpuClientFromSettings(
  settings: Pick<
    EdgeSettings,
    "GPU_NODE_URL" | "GPU_NODE_URLS" | "GPU_NODE_TOKEN" | "GPU_TIMEOUT_MS" | "HEALTH_TIMEOUT_MS"
  >,
  runtime: { transport?: GpuTransport; logger?: Logger } = {},
): GpuClient {
  const client = (baseUrl: string) =>
    createHttpGpuClient({
      baseUrl,
      token: settings.GPU_NODE_TOKEN,
      timeoutMs: settings.GPU_TIMEOUT_MS,
      transport: runtime.transport,
    });
  const urls = gpuNodeUrls(settings);
  if (urls.length === 1) return client(urls[0] as string);
  return createGpuRouter(
    urls.map((url) => ({ url, client: client(url) })),
    {
      probeTimeoutMs: settings.HEALTH_TIMEOUT_MS,
      ...(runtime.logger ? { logger: runtime.logger } : {}),
    },
  );
}

export function transportError(err: unknown, signal: AbortSignal, timeoutMs: number): ApiError {
  if (signal.aborted) {
    // Ours or the public request's overall deadline (AbortSignal.timeout): both are timeouts.
    if ((signal.reason as { name?: string } | undefined)?.name === "TimeoutError") {
      return new ApiError(
        "gpu_node_timeout",
        `GPU node did not answer within ${timeoutMs} ms.`,
        { timeout_ms: timeoutMs },
        { cause: err },
      );
    }
    return new ApiError("request_aborted", "Request aborted by the client.", {}, { cause: err });
  }
  return new ApiError(
    "gpu_node_unavailable",
    "GPU node unavailable. Please check that it is running.",
    {},
    { cause: err },
  );
}

/** A GPU node answer's JSON body; a body that is not JSON is the node's failure (or, when the
 * call was aborted meanwhile, the abort's). */
export async function readJsonBody(
  res: { status: number; json(): Promise<unknown> },
  signal: AbortSignal,
  timeoutMs: number,
): Promise<unknown> {
  try {
    return await res.json();
  } catch (err) {
    if (signal.aborted) throw transportError(err, signal, timeoutMs);
    throw new ApiError(
      "gpu_node_error",
      `GPU node answered ${res.status} without a JSON body.`,
      {},
      { cause: err },
    );
  }
}

export function nodeError(
  res: Pick<TransportResponse, "status" | "header">,
  payload: unknown,
): ApiError {
  const parsed = ErrorBody.safeParse(payload);
  const headers: Record<string, string> = {};
  const retryAfter = res.header("retry-after");
  if (retryAfter) headers["Retry-After"] = retryAfter;
  if (!parsed.success) {
    return new ApiError("gpu_node_error", `GPU node answered ${res.status}.`, {}, { headers });
  }
  const { error, code, request_id: _nodeRequestId, ...details } = parsed.data;
  // Statuses pass through, except the node's own auth failure: for the public client that is
  // our misconfiguration, not theirs.
  if (code === "unauthorized") {
    return new ApiError(
      "gpu_node_error",
      "GPU node rejected the edge's token (check GPU_NODE_TOKEN on both sides).",
    );
  }
  // A crash on the node is the node's 500, not ours: the public API says the node failed.
  if (res.status >= 500 && res.status !== 503 && res.status !== 504) {
    return new ApiError("gpu_node_error", `GPU node failed: ${error}`, {}, { headers });
  }
  // The node's code carries its status: both services read it from the one table.
  return new ApiError(code, error, details, { headers });
}
