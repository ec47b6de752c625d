/**
 * A stand-in GPU node: the internal contract (gpu-node/contract/), answered deterministically
 * over real HTTP on a random loopback port. For edge tests and benchmarks; the real node with
 * tiny models is tested end to end elsewhere.
 *
 * Streaming routes (contract/stream.ts) send the very answer of their non-streaming twin in
 * pieces: Hermes word by word, JSON in 8-character slices, then the `done` event. The any-schema
 * JSON routes answer the smallest value of the schema (required keys, first enum member, minimum
 * numbers), refuse a schema using `$ref` or `pattern` (400 unsupported_schema, standing in for the
 * node's subset check) and a budget below a quarter of the JSON's length (422 budget_too_small).
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { type Context, Hono } from "hono";
import {
  type ChatMessage,
  type ErrorBody,
  GPU_ROUTES,
  type GpuNodeHealth,
  HermesCritiqueRequest,
  HermesGenerateRequest,
  type HermesGenerateResponse,
  JsonGenerateRequest,
  type JsonGenerateResponse,
  MESSAGES,
  Phi3GenerateRequest,
  type Phi3GenerateResponse,
  REQUEST_ID_HEADER,
  type TradeProposal,
} from "../../gpu-node/contract/index.ts";
import { STREAM_CONTENT_TYPE } from "../../gpu-node/contract/stream.ts";
import { critiquePrompt } from "../../gpu-node/hermes/critique-prompt.ts";

export interface StandInOptions {
  token?: string;
  /** Milliseconds before each generation answers (a stream: before its first piece). */
  delayMs?: number;
  hermesLoaded?: boolean;
  phi3Loaded?: boolean;
  /** Answer generations with 429 queue_full. */
  queueFull?: boolean;
  /** The critique fails with a 503 (Hermes broke after Phi-3 succeeded). */
  critiqueFails?: boolean;
  /** What the models "generate": Hermes's text and the proposal's rationale. */
  outputText?: string;
  /** Milliseconds between two pieces of a streamed answer (none before the first). */
  streamDelayMs?: number;
  /** A stream sends this many pieces, then an error event (503 shutting_down) instead of done. */
  streamFailAfter?: number;
  /** Tokens in a context, reported in health (context_length). */
  contextLength?: { hermes?: number; phi3?: number };
}

export interface ReceivedCall {
  route: string;
  body: unknown;
  headers: Record<string, string>;
}

export interface StandInGpuNode {
  url: string;
  options: StandInOptions;
  calls: ReceivedCall[];
  /** Calls whose client went away before the answer. */
  aborted: string[];
  /** Streams sent to the end (the done or error event went out). */
  streamsCompleted: string[];
  close(): Promise<void>;
}

const words = (s: string) => s.split(/\s+/).filter(Boolean);
const lastContent = (messages: ChatMessage[] | undefined) => messages?.at(-1)?.content ?? "";

/** The proposal the stand-in derives from a prompt: ticker from its last request line. */
export function standInProposal(prompt: string): TradeProposal {
  const request = prompt.split("Request: ").at(-1) ?? prompt;
  const ticker = /\b([A-Z]{2,5})\b/.exec(request)?.[1] ?? "SPY";
  return {
    ticker,
    action: /abort/i.test(request) ? "abort" : "adjust",
    side: /short/i.test(request) ? "SHORT" : "LONG",
    new_stop_pct: 5,
    new_target_pct: null,
    confidence: 0.5,
    rationale: `Stand-in proposal for ${ticker}.`,
  };
}

/** The smallest value of a JSON Schema (for the stand-in's any-schema routes). */
export function standInJsonValue(schema: Record<string, unknown>): unknown {
  if (Array.isArray(schema.enum)) return schema.enum[0];
  if ("const" in schema) return schema.const;
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  const sub = (v: unknown) => (v && typeof v === "object" ? (v as Record<string, unknown>) : {});
  switch (type) {
    case "object": {
      const props = sub(schema.properties);
      const out: Record<string, unknown> = {};
      for (const key of (schema.required as string[] | undefined) ?? []) {
        out[key] = standInJsonValue(sub(props[key]));
      }
      return out;
    }
    case "array":
      return Array.from({ length: Number(schema.minItems ?? 0) }, () =>
        standInJsonValue(sub(schema.items)),
      );
    case "string":
      return "stand-in";
    case "number":
    case "integer":
      return Number(schema.minimum ?? 0);
    case "boolean":
      return false;
    default:
      return null;
  }
}

const usesUnsupported = (value: unknown): boolean =>
  value !== null &&
  typeof value === "object" &&
  Object.entries(value).some(([k, v]) => k === "$ref" || k === "pattern" || usesUnsupported(v));

export function createStandInApp(options: StandInOptions, record: StandInGpuNode) {
  const app = new Hono();
  const timings = { queue_ms: 0, prompt_ms: 1, generate_ms: 2, total_ms: 3 };
  const fail = (
    status: 400 | 422 | 429 | 503,
    body: Omit<ErrorBody, "request_id">,
    extra?: Headers,
  ) =>
    new Response(JSON.stringify({ ...body, request_id: "stand-in" }), {
      status,
      headers: { "content-type": "application/json", ...(extra ? Object.fromEntries(extra) : {}) },
    });
  app.use("*", async (c, next) => {
    if (options.token && c.req.header("authorization") !== `Bearer ${options.token}`) {
      return c.json({ error: "bad token", code: "unauthorized", request_id: "stand-in" }, 401);
    }
    await next();
  });
  const wait = async (signal: AbortSignal, route: string) => {
    if (!options.delayMs) return;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, options.delayMs);
      signal.addEventListener("abort", () => {
        clearTimeout(t);
        record.aborted.push(route);
        resolve();
      });
    });
  };
  const note = (route: string, body: unknown, headers: Headers) =>
    record.calls.push({ route, body, headers: Object.fromEntries(headers) });

  app.get(GPU_ROUTES.health, (c) => {
    const hermes = options.hermesLoaded ?? true;
    const phi3 = options.phi3Loaded ?? true;
    const model = (loaded: boolean, contextLength: number | undefined) => ({
      state: loaded ? ("ready" as const) : ("error" as const),
      loaded,
      path: "/stand-in",
      file_exists: true,
      ...(contextLength ? { context_length: contextLength } : {}),
    });
    const n = Number(hermes) + Number(phi3);
    const body: GpuNodeHealth = {
      status: n === 2 ? "ok" : n === 1 ? "partial_error" : "error",
      hermes_loaded: hermes,
      phi3_loaded: phi3,
      phi3_model_file_exists: true,
      device: "cpu",
      models: {
        hermes: model(hermes, options.contextLength?.hermes ?? 6144),
        phi3: model(phi3, options.contextLength?.phi3 ?? 4096),
      },
      version: "stand-in",
      uptime_s: 1,
    };
    return c.json(body);
  });

  const guard = (model: "hermes" | "phi3") => {
    if (options.queueFull) {
      return fail(
        429,
        { error: "queue full", code: "queue_full" },
        new Headers({ "Retry-After": "3" }),
      );
    }
    const loaded =
      model === "hermes" ? (options.hermesLoaded ?? true) : (options.phi3Loaded ?? true);
    if (!loaded) {
      return fail(503, {
        error: model === "hermes" ? MESSAGES.hermesNotLoaded : MESSAGES.phi3NotLoaded,
        code: "model_not_loaded",
      });
    }
    return undefined;
  };

  const hermesAnswer = (prompt: string, maxTokens: number): HermesGenerateResponse => {
    const out = words(`Echo: ${prompt}`).slice(0, maxTokens);
    return {
      text: options.outputText ?? out.join(" "),
      model: "stand-in-hermes",
      finish_reason: out.length >= maxTokens ? "length" : "stop",
      usage: { prompt_tokens: words(prompt).length, completion_tokens: out.length },
      timings,
    };
  };

  const hermesFor = (body: HermesGenerateRequest) => {
    const answer = hermesAnswer(body.prompt ?? lastContent(body.messages), body.max_tokens);
    for (const stop of body.stop ?? []) {
      const at = answer.text.indexOf(stop);
      if (at >= 0) {
        answer.text = answer.text.slice(0, at);
        answer.finish_reason = "stop";
      }
    }
    return answer;
  };

  /** Answers an NDJSON stream of `pieces`, then `done` with `response`; notes a disconnect. */
  const stream = (c: Context, route: string, pieces: string[], response: object) => {
    const encoder = new TextEncoder();
    const line = (v: unknown) => encoder.encode(`${JSON.stringify(v)}\n`);
    let sent = 0;
    let gone = false;
    const disconnected = () => {
      if (gone) return;
      gone = true;
      record.aborted.push(route);
    };
    c.req.raw.signal.addEventListener("abort", () => {
      if (sent <= pieces.length) disconnected();
    });
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (sent > 0 && options.streamDelayMs) {
          await new Promise((r) => setTimeout(r, options.streamDelayMs));
        }
        if (gone) return;
        if (options.streamFailAfter !== undefined && sent >= options.streamFailAfter) {
          controller.enqueue(
            line({
              type: "error",
              error: "GPU node shutting down.",
              code: "shutting_down",
              request_id: "stand-in",
            }),
          );
          sent = pieces.length + 1;
          record.streamsCompleted.push(route);
          controller.close();
          return;
        }
        const piece = pieces[sent];
        sent++;
        if (piece !== undefined) {
          controller.enqueue(line({ type: "text", text: piece }));
          return;
        }
        controller.enqueue(line({ type: "done", response }));
        record.streamsCompleted.push(route);
        controller.close();
      },
      cancel() {
        disconnected();
      },
    });
    return new Response(body, {
      headers: { "content-type": STREAM_CONTENT_TYPE },
    });
  };

  const wordPieces = (text: string) => text.split(/(?= )/).filter((p) => p !== "");
  const slices = (text: string) => text.match(/[\s\S]{1,8}/g) ?? [];

  app.post(GPU_ROUTES.hermesGenerate, async (c) => {
    const body = HermesGenerateRequest.parse(await c.req.json());
    note(GPU_ROUTES.hermesGenerate, body, c.req.raw.headers);
    const refused = guard("hermes");
    if (refused) return refused;
    await wait(c.req.raw.signal, GPU_ROUTES.hermesGenerate);
    return c.json(hermesFor(body));
  });

  app.post(GPU_ROUTES.hermesGenerateStream, async (c) => {
    const body = HermesGenerateRequest.parse(await c.req.json());
    note(GPU_ROUTES.hermesGenerateStream, body, c.req.raw.headers);
    const refused = guard("hermes");
    if (refused) return refused;
    await wait(c.req.raw.signal, GPU_ROUTES.hermesGenerateStream);
    const answer = hermesFor(body);
    return stream(c, GPU_ROUTES.hermesGenerateStream, wordPieces(answer.text), answer);
  });

  const jsonFor = (model: "hermes" | "phi3", body: JsonGenerateRequest) => {
    if (model === "phi3" && body.prompt === undefined) {
      return fail(422, { error: "Phi-3 takes a prompt, not messages.", code: "invalid_request" });
    }
    if (usesUnsupported(body.json_schema)) {
      return fail(400, {
        error: "json_schema uses a keyword outside the supported subset ($ref, pattern).",
        code: "unsupported_schema",
      });
    }
    const value = standInJsonValue(body.json_schema);
    const raw = JSON.stringify(value);
    const tokens = Math.ceil(raw.length / 4);
    if (body.max_tokens < tokens) {
      return fail(422, {
        error: `max_tokens ${body.max_tokens} is too small: the shortest valid value takes ${tokens} tokens.`,
        code: "budget_too_small",
      });
    }
    const prompt = body.prompt ?? lastContent(body.messages);
    const answer: JsonGenerateResponse = {
      json: value,
      raw,
      model: `stand-in-${model}`,
      finish_reason: "stop",
      usage: { prompt_tokens: words(prompt).length, completion_tokens: tokens },
      timings,
    };
    return answer;
  };

  for (const model of ["hermes", "phi3"] as const) {
    const route = model === "hermes" ? GPU_ROUTES.hermesJson : GPU_ROUTES.phi3Json;
    const streamRoute =
      model === "hermes" ? GPU_ROUTES.hermesJsonStream : GPU_ROUTES.phi3JsonStream;
    app.post(route, async (c) => {
      const body = JsonGenerateRequest.parse(await c.req.json());
      note(route, body, c.req.raw.headers);
      const refused = guard(model);
      if (refused) return refused;
      const answer = jsonFor(model, body);
      return answer instanceof Response ? answer : c.json(answer);
    });
    app.post(streamRoute, async (c) => {
      const body = JsonGenerateRequest.parse(await c.req.json());
      note(streamRoute, body, c.req.raw.headers);
      const refused = guard(model);
      if (refused) return refused;
      const answer = jsonFor(model, body);
      if (answer instanceof Response) return answer;
      return stream(c, streamRoute, slices(answer.raw), answer);
    });
  }

  app.post(GPU_ROUTES.hermesCritique, async (c) => {
    const body = HermesCritiqueRequest.parse(await c.req.json());
    note(GPU_ROUTES.hermesCritique, body, c.req.raw.headers);
    const refused = guard("hermes");
    if (refused) return refused;
    if (options.critiqueFails) {
      return fail(503, { error: MESSAGES.hermesNotLoaded, code: "model_not_loaded" });
    }
    await wait(c.req.raw.signal, GPU_ROUTES.hermesCritique);
    return c.json(hermesAnswer(critiquePrompt(body.proposal), body.max_length * 2));
  });

  const phi3For = (body: Phi3GenerateRequest): Phi3GenerateResponse => {
    const proposal = standInProposal(body.prompt);
    if (options.outputText !== undefined) proposal.rationale = options.outputText;
    const raw = JSON.stringify(proposal);
    return {
      proposal,
      raw,
      model: "stand-in-phi3",
      finish_reason: "stop",
      usage: { prompt_tokens: words(body.prompt).length, completion_tokens: raw.length },
      timings,
    };
  };

  app.post(GPU_ROUTES.phi3Generate, async (c) => {
    const body = Phi3GenerateRequest.parse(await c.req.json());
    note(GPU_ROUTES.phi3Generate, body, c.req.raw.headers);
    const refused = guard("phi3");
    if (refused) return refused;
    await wait(c.req.raw.signal, GPU_ROUTES.phi3Generate);
    c.header(REQUEST_ID_HEADER, c.req.header(REQUEST_ID_HEADER) ?? "");
    return c.json(phi3For(body));
  });

  app.post(GPU_ROUTES.phi3GenerateStream, async (c) => {
    const body = Phi3GenerateRequest.parse(await c.req.json());
    note(GPU_ROUTES.phi3GenerateStream, body, c.req.raw.headers);
    const refused = guard("phi3");
    if (refused) return refused;
    const answer = phi3For(body);
    return stream(c, GPU_ROUTES.phi3GenerateStream, slices(answer.raw), answer);
  });
  return app;
}

export async function startStandInGpuNode(options: StandInOptions = {}): Promise<StandInGpuNode> {
  const record: StandInGpuNode = {
    url: "",
    options,
    calls: [],
    aborted: [],
    streamsCompleted: [],
    close: async () => {},
  };
  const app = createStandInApp(options, record);
  const server = await new Promise<ReturnType<typeof serve>>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s));
  });
  const { port } = server.address() as AddressInfo;
  record.url = `http://127.0.0.1:${port}`;
  record.close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
      (server as { closeAllConnections?: () => void }).closeAllConnections?.();
    });
  return record;
}
