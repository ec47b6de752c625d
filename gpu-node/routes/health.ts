/** GET /v1/health: both models' state, the device, memory, queues. Always 200; read `status`. */
import { createRoute } from "@hono/zod-openapi";
import type { Logger } from "pino";
import {
  GPU_ROUTES,
  type GpuNodeHealth,
  GpuNodeHealth as HealthSchema,
  overallStatus,
} from "../contract/index.ts";
import type { ModelRegistry, RuntimeBase } from "../lifecycle/registry.ts";
import type { RegisterRoutes } from "./context.ts";
import { errorResponses } from "./errors.ts";

/** How long health waits for a VRAM reading before leaving it out. */
const VRAM_TIMEOUT_MS = 1_000;
const MIB = 1024 * 1024;

export const healthRoute = createRoute({
  method: "get",
  path: GPU_ROUTES.health,
  tags: ["health"],
  summary: "State of both models, the device and memory",
  responses: {
    200: {
      description: "Health (200 whatever the models' state)",
      content: { "application/json": { schema: HealthSchema } },
    },
    ...errorResponses(401, 503),
  },
});

export const registerHealth: RegisterRoutes = (app, deps) => {
  const { registry } = deps;
  app.openapi(healthRoute, async (c) => {
    const hermes = registry.hermes.health();
    const phi3 = registry.phi3.health();
    const runtimes: RuntimeBase[] = [registry.hermes.ready(), registry.phi3.ready()].flatMap(
      (ready) => (ready ? [ready.runtime] : []),
    );
    const onGpu = runtimes.find((runtime) => runtime.device.kind === "cuda");
    const deviceName = (onGpu ?? runtimes[0])?.device.name;
    const vram = await readVram(registry, c.get("log"));
    const body: GpuNodeHealth = {
      status: overallStatus(hermes.state, phi3.state),
      hermes_loaded: hermes.loaded,
      phi3_loaded: phi3.loaded,
      phi3_model_file_exists: phi3.file_exists,
      device: onGpu ? "cuda" : "cpu",
      ...(deviceName ? { device_name: deviceName } : {}),
      memory: {
        rss_mib: Math.round(deps.rssBytes() / MIB),
        ...(vram ? { vram_used_mib: vram.usedMiB, vram_total_mib: vram.totalMiB } : {}),
      },
      models: { hermes, phi3 },
      ...(deps.vramPlan ? { vram_plan: deps.vramPlan } : {}),
      version: deps.version,
      uptime_s: Math.round((deps.now() - deps.bootedAt) / 1000),
    };
    return c.json(body, 200);
  });
};

async function readVram(registry: ModelRegistry, log: Logger) {
  const runtime = registry.hermes.ready()?.runtime;
  if (!runtime?.vram || runtime.device.kind !== "cuda") return undefined;
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      runtime.vram(),
      new Promise<undefined>((resolve) => {
        timer = setTimeout(() => resolve(undefined), VRAM_TIMEOUT_MS);
      }),
    ]);
  } catch (error) {
    log.warn({ err: error }, "could not read VRAM usage");
    return undefined;
  } finally {
    clearTimeout(timer);
  }
}
