/**
 * Several GPU nodes behind one GpuClient (GPU_NODE_URLS). Workers-safe: no timers outlive a
 * request, so the nodes' figures are refreshed lazily, in the background of the requests that
 * find them stale.
 *
 * - Each call goes to the least-loaded usable node that has the model loaded. A node's load is
 *   what this edge has in flight to it plus the model's queue (running + waiting) from the node's
 *   last health answer, which is refreshed every `refreshMs` and after every failure; equal loads
 *   take turns.
 * - A node that refuses the connection, is still loading that model, is shutting down or has a
 *   full queue has started nothing: the call is retried on the next node at once.
 * - A node that fails or times out once it has the request is marked down for `downForMs` and
 *   not retried for that call (the generation may have run); the next health refresh that
 *   succeeds brings it back.
 * - Streams and the any-schema calls are routed the same way until the node has started answering;
 *   then they stay on it.
 * - With every node down or without the model, the call still goes to the best of them, so the
 *   caller gets that node's own answer (503 gpu_node_unavailable, model_not_loaded...).
 */
import type {
  GpuNodeHealth,
  HermesCritiqueRequest,
  HermesGenerateRequest,
  HermesGenerateResponse,
  ModelHealth,
  Phi3GenerateRequest,
  Phi3GenerateResponse,
} from "../gpu-node/contract/index.ts";
import { overallStatus } from "../gpu-node/contract/index.ts";
import type { Logger } from "./deps.ts";
import { ApiError } from "./errors.ts";
import type { CallOptions, GpuClient } from "./gpu-client.ts";

export type ModelKey = "hermes" | "phi3";

export interface GpuRouterOptions {
  /** How old a node's health figures may get before a call refreshes them, ms. */
  refreshMs?: number;
  /** How long a failed node is skipped, ms (a successful health check ends it sooner). */
  downForMs?: number;
  /** Time given to each health probe, ms. */
  probeTimeoutMs?: number;
  now?: () => number;
  logger?: Logger;
}

/** One node as /health shows it to an authorised caller. */
export type GpuNodeStatus = {
  url: string;
  state: "up" | "down" | "unknown";
  hermes: ModelHealth["state"] | "unknown";
  phi3: ModelHealth["state"] | "unknown";
  in_flight: number;
  /** Calls answered by this node (any status) since the edge started. */
  served: number;
  failures: number;
  last_error?: string;
};

export interface GpuRouter extends GpuClient {
  nodes(): GpuNodeStatus[];
}

interface NodeState {
  url: string;
  client: GpuClient;
  health: GpuNodeHealth | undefined;
  checkedAt: number;
  refreshing: Promise<void> | undefined;
  downUntil: number;
  inFlight: number;
  served: number;
  failures: number;
  lastError: string | undefined;
  /** When this node was last picked (a sequence number): breaks ties round-robin. */
  pickedAt: number;
}

/** Answers that mean the node started nothing: another node may take the call. */
const NOTHING_STARTED = new Set(["model_not_loaded", "shutting_down", "queue_full"]);

function refusedConnection(error: ApiError): boolean {
  if (error.code !== "gpu_node_unavailable") return false;
  // undici: TypeError("fetch failed") caused by { code: "ECONNREFUSED" }; workerd says so in text.
  for (let e: unknown = error.cause, depth = 0; e && depth < 4; depth++) {
    const { code, message, cause } = e as { code?: string; message?: string; cause?: unknown };
    if (code === "ECONNREFUSED" || /ECONNREFUSED|connection refused/i.test(message ?? "")) {
      return true;
    }
    e = cause;
  }
  return false;
}

export function createGpuRouter(
  nodes: { url: string; client: GpuClient }[],
  options: GpuRouterOptions = {},
): GpuRouter {
  if (nodes.length === 0) throw new Error("createGpuRouter needs at least one node");
  const refreshMs = options.refreshMs ?? 2_000;
  const downForMs = options.downForMs ?? 5_000;
  const probeTimeoutMs = options.probeTimeoutMs ?? 2_000;
  const now = options.now ?? (() => Date.now());
  const states: NodeState[] = nodes.map((n) => ({
    ...n,
    health: undefined,
    checkedAt: Number.NEGATIVE_INFINITY,
    refreshing: undefined,
    downUntil: 0,
    inFlight: 0,
    served: 0,
    failures: 0,
    lastError: undefined,
    pickedAt: 0,
  }));
  let picks = 0;

  function markDown(node: NodeState, why: string): void {
    node.failures++;
    node.lastError = why;
    node.downUntil = now() + downForMs;
    // Its figures are stale now; the next call re-probes it.
    node.checkedAt = Number.NEGATIVE_INFINITY;
    options.logger?.warn({ gpu_node: node.url, reason: why }, "GPU node marked down");
  }

  function refresh(node: NodeState): Promise<void> {
    node.refreshing ??= node.client
      .health({ timeoutMs: probeTimeoutMs })
      .then(
        (health) => {
          if (node.downUntil > now()) {
            options.logger?.info({ gpu_node: node.url }, "GPU node back");
          }
          node.health = health;
          node.downUntil = 0;
        },
        (error: unknown) => {
          node.lastError = error instanceof ApiError ? error.message : "health check failed";
          // Refused: nobody listens there. A slow or failed probe alone proves less: the node
          // keeps its last figures, and a failing call marks it down.
          if (error instanceof ApiError && refusedConnection(error)) {
            node.health = undefined;
            node.downUntil = Math.max(node.downUntil, now() + refreshMs);
          }
        },
      )
      .finally(() => {
        node.checkedAt = now();
        node.refreshing = undefined;
      });
    return node.refreshing;
  }

  /** Starts refreshes of stale nodes; waits only when no node has ever answered. */
  async function freshen(): Promise<void> {
    const stale = states.filter((n) => now() - n.checkedAt >= refreshMs);
    const pending = stale.map(refresh);
    if (states.every((n) => n.health === undefined && n.checkedAt === Number.NEGATIVE_INFINITY)) {
      await Promise.all(pending);
    }
  }

  function load(node: NodeState, model: ModelKey): number {
    const queue = node.health?.models[model].queue;
    return node.inFlight + (queue ? queue.running + queue.waiting : 0);
  }

  function usable(node: NodeState, model: ModelKey): boolean {
    if (node.downUntil > now()) return false;
    // Unknown figures (never probed, or refresh pending) do not exclude a node.
    return node.health === undefined || node.health.models[model].loaded;
  }

  /** Nodes in the order to try: usable ones by load, then the rest (their answers explain). */
  function candidates(model: ModelKey): NodeState[] {
    const byLoad = (a: NodeState, b: NodeState) =>
      load(a, model) - load(b, model) || a.pickedAt - b.pickedAt;
    const good = states.filter((n) => usable(n, model)).sort(byLoad);
    const rest = states.filter((n) => !good.includes(n)).sort(byLoad);
    return [...good, ...rest];
  }

  async function route<T>(
    model: ModelKey,
    call: (client: GpuClient) => Promise<T>,
    signal?: AbortSignal,
  ): Promise<T> {
    await freshen();
    let lastError: ApiError | undefined;
    for (const node of candidates(model)) {
      if (signal?.aborted) break;
      node.inFlight++;
      node.pickedAt = ++picks;
      try {
        const value = await call(node.client);
        node.served++;
        return value;
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        if (error.code === "request_aborted") throw error;
        if (refusedConnection(error)) {
          markDown(node, "connection refused");
          lastError = error;
          continue;
        }
        node.served++;
        if (NOTHING_STARTED.has(error.code)) {
          // Its figures are wrong (it does not have the model, or is full): refresh them.
          node.checkedAt = Number.NEGATIVE_INFINITY;
          lastError = error;
          continue;
        }
        if (
          error.code === "gpu_node_unavailable" ||
          error.code === "gpu_node_timeout" ||
          error.code === "gpu_node_error"
        ) {
          markDown(node, error.message);
        }
        throw error;
      } finally {
        node.inFlight--;
      }
    }
    throw lastError ?? new ApiError("gpu_node_unavailable", "No GPU node could take the request.");
  }

  async function health(callOptions?: CallOptions): Promise<GpuNodeHealth> {
    await Promise.all(
      states.map((n) =>
        callOptions?.timeoutMs ? refreshWithin(n, callOptions.timeoutMs) : refresh(n),
      ),
    );
    const answered = states.flatMap((n) => (n.health ? [n.health] : []));
    if (answered.length === 0) {
      throw new ApiError(
        "gpu_node_unavailable",
        "GPU node unavailable. Please check that it is running.",
      );
    }
    // The seed's keys over all nodes: a model counts as loaded when some node has it.
    const best = (model: ModelKey): ModelHealth => {
      const withIt = answered.find((h) => h.models[model].loaded);
      return (withIt ?? (answered[0] as GpuNodeHealth)).models[model];
    };
    const models = { hermes: best("hermes"), phi3: best("phi3") };
    const first = answered.find((h) => h.models.hermes.loaded || h.models.phi3.loaded);
    const base = first ?? (answered[0] as GpuNodeHealth);
    return {
      ...base,
      status: overallStatus(models.hermes.state, models.phi3.state),
      hermes_loaded: models.hermes.loaded,
      phi3_loaded: models.phi3.loaded,
      phi3_model_file_exists: answered.some((h) => h.phi3_model_file_exists),
      models,
    };
  }

  async function refreshWithin(node: NodeState, ms: number): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      await Promise.race([refresh(node), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    } finally {
      clearTimeout(timer);
    }
  }

  return {
    health,
    hermesGenerate: (
      body: HermesGenerateRequest,
      o?: CallOptions,
    ): Promise<HermesGenerateResponse> =>
      route("hermes", (c) => c.hermesGenerate(body, o), o?.signal),
    hermesCritique: (
      body: HermesCritiqueRequest,
      o?: CallOptions,
    ): Promise<HermesGenerateResponse> =>
      route("hermes", (c) => c.hermesCritique(body, o), o?.signal),
    phi3Generate: (body: Phi3GenerateRequest, o?: CallOptions): Promise<Phi3GenerateResponse> =>
      route("phi3", (c) => c.phi3Generate(body, o), o?.signal),
    jsonGenerate: (model, body, o) =>
      route(model, (c) => c.jsonGenerate(model, body, o), o?.signal),
    // A stream is routed until it has started (the node answered 200); from then on it stays on
    // that node, and a failure mid-stream is the stream's own error event.
    hermesGenerateStream: (body, o) =>
      route("hermes", (c) => c.hermesGenerateStream(body, o), o?.signal),
    phi3GenerateStream: (body, o) => route("phi3", (c) => c.phi3GenerateStream(body, o), o?.signal),
    jsonGenerateStream: (model, body, o) =>
      route(model, (c) => c.jsonGenerateStream(model, body, o), o?.signal),
    nodes: () =>
      states.map((n) => ({
        url: n.url,
        state: n.downUntil > now() ? "down" : n.health ? "up" : "unknown",
        hermes: n.health?.models.hermes.state ?? "unknown",
        phi3: n.health?.models.phi3.state ?? "unknown",
        in_flight: n.inFlight,
        served: n.served,
        failures: n.failures,
        ...(n.lastError ? { last_error: n.lastError } : {}),
      })),
  };
}
