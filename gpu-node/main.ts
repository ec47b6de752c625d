/**
 * The GPU node's entry (`npm run start:gpu-node`): parse the environment, listen at once, load
 * the models in the background, and shut down gracefully on SIGTERM/SIGINT.
 */
import { existsSync, readFileSync } from "node:fs";
import { serve } from "@hono/node-server";
import { pino } from "pino";
import { createGpuNodeApp } from "./app.ts";
import { Lifecycle } from "./service/lifecycle.ts";
import { loadModels, type ModelLoaders } from "./service/loader.ts";
import { createModelRegistry } from "./service/registry.ts";
import { type GpuNodeSettings, parseGpuNodeSettings, SettingsError } from "./settings.ts";

/** After the grace period, how long aborted work gets to stop before the models are freed. */
const ABORT_SETTLE_MS = 2_000;
/** Freeing a model should take moments; never hang the exit on it. */
const DISPOSE_TIMEOUT_MS = 5_000;

function readSettings(): GpuNodeSettings {
  // process.loadEnvFile exists from Node 20.12; it never overrides variables already set.
  if (existsSync(".env") && typeof process.loadEnvFile === "function") process.loadEnvFile(".env");
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

const sleep = (ms: number) =>
  new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), ms).unref());

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
  const app = createGpuNodeApp({
    settings,
    logger,
    registry,
    lifecycle,
    version: packageVersion(),
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
  const loading = loadModels({
    settings,
    registry,
    loaders,
    logger,
    signal: loadAbort.signal,
  }).then(() => {
    const hermes = registry.hermes.state;
    const phi3 = registry.phi3.state;
    logger.info({ hermes, phi3 }, `model loading finished: hermes ${hermes}, phi3 ${phi3}`);
  });

  let stopping = false;
  const shutdown = async (signal: NodeJS.Signals) => {
    if (stopping) {
      logger.warn(`${signal} again: exiting without waiting`);
      process.exit(1);
    }
    stopping = true;
    const grace = settings.shutdownGraceMs;
    logger.info({ signal, grace_ms: grace }, `${signal}: shutting down`);

    lifecycle.beginShutdown();
    loadAbort.abort();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const idle = () => Promise.all([registry.hermes.idle(), registry.phi3.idle()]);

    if ((await Promise.race([idle(), sleep(grace)])) === "timeout") {
      logger.warn({ grace_ms: grace }, "grace period over: aborting in-flight generations");
      lifecycle.abortInFlight();
      if ((await Promise.race([idle(), sleep(ABORT_SETTLE_MS)])) === "timeout") {
        logger.warn("some generations did not stop when aborted");
      }
    }
    if ((await Promise.race([loading, sleep(ABORT_SETTLE_MS)])) === "timeout") {
      logger.warn("a model was still loading and did not stop when aborted");
    }

    if ("closeAllConnections" in server) server.closeAllConnections();
    await closed;
    const disposed = Promise.all([registry.hermes.dispose(), registry.phi3.dispose()]);
    if ((await Promise.race([disposed, sleep(DISPOSE_TIMEOUT_MS)])) === "timeout") {
      logger.warn("disposing the models took too long");
    }
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
