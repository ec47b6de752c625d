/** GET /health: the seed's keys from the GPU node, plus the edge's own view. */
import { sql } from "drizzle-orm";
import type { GpuNodeHealth } from "../../gpu-node/contract/index.ts";
import type { ServiceContext } from "../deps.ts";
import { ApiError, describeError } from "../errors.ts";
import type { GpuRouter } from "../gpu-router.ts";
import type { HealthResponse } from "../routes/schemas.ts";

export async function checkHealth({
  ctx,
  input,
}: {
  ctx: ServiceContext;
  input: { version: string; runtime: string; databaseKind: string; timeoutMs: number };
}): Promise<HealthResponse> {
  const [db, gpu] = await Promise.allSettled([
    withinMs(ctx.db.execute(sql`select 1`), input.timeoutMs),
    ctx.gpu.health({
      signal: ctx.clientSignal,
      deadline: ctx.deadline,
      requestId: ctx.requestId,
      timeoutMs: input.timeoutMs,
    }),
  ]);
  const databaseOk = db.status === "fulfilled";
  if (!databaseOk)
    ctx.logger.warn({ err: describeError(db.reason) }, "health: database unreachable");
  const node: GpuNodeHealth | undefined = gpu.status === "fulfilled" ? gpu.value : undefined;
  const gpuError =
    gpu.status === "rejected"
      ? gpu.reason instanceof ApiError
        ? gpu.reason.message
        : "GPU node health check failed"
      : undefined;
  const hermes = node?.hermes_loaded ?? false;
  const phi3 = node?.phi3_loaded ?? false;
  const models = Number(hermes) + Number(phi3);
  let status: HealthResponse["status"] =
    models === 2 ? "ok" : models === 1 ? "partial_error" : "error";
  // Models up but no record: proposals cannot be kept, so the service is not whole.
  if (!databaseOk && status === "ok") status = "partial_error";
  return {
    status,
    hermes_loaded: hermes,
    phi3_loaded: phi3,
    phi3_model_file_exists: node?.phi3_model_file_exists ?? false,
    device: node?.device ?? "unknown",
    loading: node?.status === "loading",
    edge: {
      version: input.version,
      runtime: input.runtime,
      database: databaseOk ? "ok" : "error",
      database_kind: input.databaseKind,
      gpu_node:
        node !== undefined
          ? "ok"
          : gpu.status === "rejected" &&
              gpu.reason instanceof ApiError &&
              (gpu.reason.code === "gpu_node_unavailable" || gpu.reason.code === "gpu_node_timeout")
            ? "unreachable"
            : "error",
      ...(gpuError ? { gpu_node_error: gpuError } : {}),
    },
    ...(node ? { gpu_node: node as unknown as Record<string, unknown> } : {}),
    ...("nodes" in ctx.gpu && typeof ctx.gpu.nodes === "function"
      ? { gpu_nodes: (ctx.gpu as GpuRouter).nodes() }
      : {}),
  };
}

/** /health answers within its own timeout whatever the database does. */
function withinMs<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from the database within ${ms} ms`)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}
