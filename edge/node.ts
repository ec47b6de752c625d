/** Node entry of the edge: `npm run start:edge`. Parses the environment, serves, stops cleanly. */

import { loadEnvFile } from "../gpu-node/contract/env-file.ts";
import { startEdge } from "./node-runtime/server.ts";
import { SettingsError } from "./settings.ts";

loadEnvFile();

try {
  const edge = await startEdge(process.env);
  const { logger } = edge;
  // Exit only once the log lines are out (pino may buffer).
  const exit = (code: number) => logger.flush(() => process.exit(code));
  let stoppingSince: number | undefined;
  const stop = async (signal: string) => {
    if (stoppingSince !== undefined) {
      // One Ctrl-C often arrives twice: to the whole process group and relayed by tsx/npm.
      if (Date.now() - stoppingSince < 2000) return;
      logger.warn({ signal }, `${signal} again: exiting without waiting`);
      exit(1);
      return;
    }
    stoppingSince = Date.now();
    logger.info({ signal }, `${signal}: shutting down`);
    const force = setTimeout(() => {
      logger.warn("shutdown took over 10 s: exiting");
      exit(1);
    }, 10_000);
    force.unref();
    await edge.close();
    logger.info("stopped");
    exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
} catch (err) {
  const message =
    err instanceof SettingsError ? err.message : `edge failed to start: ${(err as Error).message}`;
  process.stderr.write(`${message}\n`);
  process.exit(1);
}
