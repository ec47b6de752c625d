/**
 * The GPU node's entry (`npm run start:gpu-node`): parse the environment, listen at once, load
 * the models in the background, and shut down gracefully on SIGTERM/SIGINT.
 */
import { readFileSync } from "node:fs";
import type { Server } from "node:http";
import { serve } from "@hono/node-server";
import { pino } from "pino";
import { createGpuNodeApp } from "./app.ts";
import { loadEnvFile } from "./contract/env-file.ts";
import { Lifecycle } from "./lifecycle/lifecycle.ts";
import { loadModels, type ModelLoaders } from "./lifecycle/loader.ts";
import { createModelRegistry } from "./lifecycle/registry.ts";
import { shutdownGracefully } from "./lifecycle/shutdown.ts";
import { type GpuNodeSettings, parseGpuNodeSettings, SettingsError } from "./settings.ts";
import { startupVramPlan } from "./vram-inputs.ts";

function readSettings(): GpuNodeSettings {
  loadEnvFile();
  try {
    return parseGpuNodeSettings(process.env);
  } catch (error) {
    if (error instanceof SettingsError) {
      console.error(`gpu-node: ${error.message}`);
      process.exit(1);
    }
    throw error;
  }
}

function packageVersion(): string {
  try {
    const pkg: unknown = JSON.parse(
      readFileSync(new URL("../package.json", import.meta.url), "utf8"),
    );
    const version = (pkg as { version?: unknown }).version;
    return typeof version === "string" ? version : "0.0.0";
  } catch {
    return "0.0.0";
  }
}

async function main() {
  const settings = readSettings();
  const logger = pino({ level: settings.logLevel, base: { service: "gpu-node" } });

  // The runtimes are imported when first needed, so a broken native binding of one model shows
  // as that model's load error instead of stopping the node.
  const loaders: ModelLoaders = {
    hermes: async (options, load) =>
      (await import("./hermes/index.ts")).loadHermes(options, load, { logger }),
    phi3: async (options, load) =>
      (await import("./phi3/index.ts")).loadPhi3(options, load, { logger }),
  };

  const registry = createModelRegistry({
    hermesPath: settings.hermes.modelPath,
    phi3Path: settings.phi3.modelDir,
    hermesQueueMax: settings.hermes.queueMax,
    phi3QueueMax: settings.phi3.queueMax,
  });
  const lifecycle = new Lifecycle();
  const vram = await startupVramPlan(settings, process.env, logger);
  const app = createGpuNodeApp({
    settings,
    logger,
    registry,
    lifecycle,
    version: packageVersion(),
    vramPlan: vram.plan,
  });

  const server = serve({ fetch: app.fetch, hostname: settings.host, port: settings.port }, (info) =>
    logger.info(
      { host: settings.host, port: info.port, auth: settings.token ? "bearer" : "none" },
      `listening on http://${settings.host}:${info.port}`,
    ),
  );
  server.on("error", (error: NodeJS.ErrnoException) => {
    logger.fatal(
      { err: error },
      `cannot listen on ${settings.host}:${settings.port}: ${error.code}`,
    );
    process.exit(1);
  });

  const loadAbort = new AbortController();
  // A plan that cannot fit loads nothing: both models say why (in /v1/health), no crash loop.
  if (vram.refusal) {
    registry.hermes.markError(vram.refusal);
    registry.phi3.markError(vram.refusal);
  }
  const loading = (
    vram.refusal
      ? Promise.resolve()
      : loadModels({ settings, registry, loaders, logger, signal: loadAbort.signal })
  ).then(() => {
    const hermes = registry.hermes.state;
    const phi3 = registry.phi3.state;
    logger.info({ hermes, phi3 }, `model loading finished: hermes ${hermes}, phi3 ${phi3}`);
  });

  let stoppingSince: number | undefined;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (stoppingSince !== undefined) {
      // One Ctrl-C often arrives twice: to the whole process group and relayed by tsx/npm.
      if (Date.now() - stoppingSince < 2000) return;
      logger.warn(`${signal} again: exiting without waiting`);
      process.exit(1);
    }
    stoppingSince = Date.now();
    logger.info({ signal, grace_ms: settings.shutdownGraceMs }, `${signal}: shutting down`);

    await shutdownGracefully({
      // serve() without a createServer option makes a plain http.Server.
      server: server as Server,
      lifecycle,
      registry,
      logger,
      graceMs: settings.shutdownGraceMs,
      loading,
      cancelLoading: () => loadAbort.abort(),
    });
    logger.info("stopped");
    process.exit(0);
  };
  process.on("SIGTERM", (signal) => void shutdown(signal));
  process.on("SIGINT", (signal) => void shutdown(signal));
}

main().catch((error: unknown) => {
  console.error("gpu-node: fatal error", error);
  process.exit(1);
});
