/** Node entry of the edge: `npm run start:edge`. Parses the environment, serves, stops cleanly. */

import { loadEnvFile } from "../gpu-node/contract/env-file.ts";
import { startEdge } from "./node-runtime/server.ts";
import { SettingsError } from "./settings.ts";

loadEnvFile();

try {
  const edge = await startEdge(process.env);
  let stoppingSince: number | undefined;
  const stop = async (signal: string) => {
    if (stoppingSince !== undefined) {
      // One Ctrl-C often arrives twice: to the whole process group and relayed by tsx/npm.
      if (Date.now() - stoppingSince < 2000) return;
      process.stderr.write(`edge: ${signal} again, exiting without waiting\n`);
      process.exit(1);
    }
    stoppingSince = Date.now();
    process.stderr.write(`edge: ${signal}, shutting down\n`);
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    await edge.close();
    process.stderr.write("edge: stopped\n");
    process.exit(0);
  };
  process.on("SIGTERM", () => void stop("SIGTERM"));
  process.on("SIGINT", () => void stop("SIGINT"));
} catch (err) {
  const message =
    err instanceof SettingsError ? err.message : `edge failed to start: ${(err as Error).message}`;
  process.stderr.write(`${message}\n`);
  process.exit(1);
}
