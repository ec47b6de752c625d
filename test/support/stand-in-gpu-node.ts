/**
 * A stand-in GPU node: the internal contract (gpu-node/contract/), answered deterministically
 * over real HTTP on a random loopback port. For edge tests and benchmarks; the real node with
 * tiny models is tested end to end elsewhere.
 */
import type { AddressInfo } from "node:net";
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import {
  type ErrorBody,
  GPU_ROUTES,
  type GpuNodeHealth,
  HermesCritiqueRequest,
  HermesGenerateRequest,
  type HermesGenerateResponse,
  MESSAGES,
  Phi3GenerateRequest,
  type Phi3GenerateResponse,
  REQUEST_ID_HEADER,
  type TradeProposal,
} from "../../gpu-node/contract/index.ts";
import { critiquePrompt } from "../../gpu-node/hermes/critique-prompt.ts";

export interface StandInOptions {
  token?: string;
  /** Milliseconds before each generation answers. */
  delayMs?: number;
  hermesLoaded?: boolean;
  phi3Loaded?: boolean;
  /** Answer generations with 429 queue_full. */
  queueFull?: boolean;
  /** The critique fails with a 503 (Hermes broke after Phi-3 succeeded). */
  critiqueFails?: boolean;
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
  close(): Promise<void>;
}

const words = (s: string) => s.split(/\s+/).filter(Boolean);

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

export function createStandInApp(options: StandInOptions, record: StandInGpuNode) {
  const app = new Hono();
  const timings = { queue_ms: 0, prompt_ms: 1, generate_ms: 2, total_ms: 3 };
  const fail = (status: 429 | 503, body: Omit<ErrorBody, "request_id">, extra?: Headers) =>
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
    const model = (loaded: boolean) => ({
      state: loaded ? ("ready" as const) : ("error" as const),
      loaded,
      path: "/stand-in",
      file_exists: true,
    });
    const n = Number(hermes) + Number(phi3);
    const body: GpuNodeHealth = {
      status: n === 2 ? "ok" : n === 1 ? "partial_error" : "error",
      hermes_loaded: hermes,
      phi3_loaded: phi3,
      phi3_model_file_exists: true,
      device: "cpu",
      models: { hermes: model(hermes), phi3: model(phi3) },
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
      text: out.join(" "),
      model: "stand-in-hermes",
      finish_reason: out.length >= maxTokens ? "length" : "stop",
      usage: { prompt_tokens: words(prompt).length, completion_tokens: out.length },
      timings,
    };
  };

  app.post(GPU_ROUTES.hermesGenerate, async (c) => {
    const body = HermesGenerateRequest.parse(await c.req.json());
    note(GPU_ROUTES.hermesGenerate, body, c.req.raw.headers);
    const refused = guard("hermes");
    if (refused) return refused;
    await wait(c.req.raw.signal, GPU_ROUTES.hermesGenerate);
    return c.json(
      hermesAnswer(body.prompt ?? body.messages?.at(-1)?.content ?? "", body.max_tokens),
    );
  });

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

  app.post(GPU_ROUTES.phi3Generate, async (c) => {
    const body = Phi3GenerateRequest.parse(await c.req.json());
    note(GPU_ROUTES.phi3Generate, body, c.req.raw.headers);
    const refused = guard("phi3");
    if (refused) return refused;
    await wait(c.req.raw.signal, GPU_ROUTES.phi3Generate);
    const proposal = standInProposal(body.prompt);
    const raw = JSON.stringify(proposal);
    const answer: Phi3GenerateResponse = {
      proposal,
      raw,
      model: "stand-in-phi3",
      finish_reason: "stop",
      usage: { prompt_tokens: words(body.prompt).length, completion_tokens: raw.length },
      timings,
    };
    c.header(REQUEST_ID_HEADER, c.req.header(REQUEST_ID_HEADER) ?? "");
    return c.json(answer);
  });
  return app;
}

export async function startStandInGpuNode(options: StandInOptions = {}): Promise<StandInGpuNode> {
  const record: StandInGpuNode = {
    url: "",
    options,
    calls: [],
    aborted: [],
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
