/**
 * Graceful shutdown of the GPU node, apart from main.ts so it can be tested against a real server:
 * stop accepting, let in-flight work finish within the grace period, abort what is left, free the
 * models.
 */
import type { Server } from "node:http";
import type { Logger } from "pino";
import type { Lifecycle } from "./lifecycle.ts";
import type { ModelRegistry } from "./registry.ts";

export interface ShutdownInput {
  server: Pick<Server, "close" | "closeIdleConnections" | "closeAllConnections">;
  lifecycle: Lifecycle;
  registry: ModelRegistry;
  logger: Logger;
  /** How long in-flight work may take to finish (SHUTDOWN_GRACE_MS). */
  graceMs: number;
  /** Background loading still under way; it is cancelled through `cancelLoading`. */
  loading?: Promise<void>;
  cancelLoading?: () => void;
  /** After the grace period, how long aborted work and closing connections get. */
  settleMs?: number;
  /** Freeing a model should take moments; never hang the exit on it. */
  disposeTimeoutMs?: number;
}

const sleep = (ms: number) =>
  new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), ms).unref());

/** Resolves when the node has stopped and its models are freed; never rejects. */
export async function shutdownGracefully(input: ShutdownInput): Promise<void> {
  const { server, lifecycle, registry, logger, graceMs } = input;
  const settleMs = input.settleMs ?? 2_000;

  lifecycle.beginShutdown();
  input.cancelLoading?.();
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  const idle = () => Promise.all([registry.hermes.idle(), registry.phi3.idle()]);

  if ((await Promise.race([idle(), sleep(graceMs)])) === "timeout") {
    logger.warn({ grace_ms: graceMs }, "grace period over: aborting in-flight generations");
    lifecycle.abortInFlight();
    if ((await Promise.race([idle(), sleep(settleMs)])) === "timeout") {
      logger.warn("some generations did not stop when aborted");
    }
  }
  if (input.loading && (await Promise.race([input.loading, sleep(settleMs)])) === "timeout") {
    logger.warn("a model was still loading and did not stop when aborted");
  }

  // Responses of finished work may still be on their way: close connections as they go idle
  // (keep-alive ones would otherwise hold the server open), and cut the rest after a moment.
  const sweep = setInterval(() => server.closeIdleConnections(), 25);
  const outcome = await Promise.race([closed, sleep(settleMs)]);
  clearInterval(sweep);
  if (outcome === "timeout") {
    server.closeAllConnections();
    await closed;
  }

  const disposed = Promise.all([registry.hermes.dispose(), registry.phi3.dispose()]).catch(
    (error: unknown) => logger.error({ err: error }, "disposing the models failed"),
  );
  if ((await Promise.race([disposed, sleep(input.disposeTimeoutMs ?? 5_000)])) === "timeout") {
    logger.warn("disposing the models took too long");
  }
}
