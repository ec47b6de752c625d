/** Node entry of the edge: `npm run start:edge`. Parses the environment, serves, stops cleanly. */

import { startEdge } from "./node/server.ts";
import { SettingsError } from "./settings.ts";

try {
  process.loadEnvFile?.();
} catch {
  // No .env file: the environment and the defaults decide.
}

try {
  const edge = await startEdge(process.env);
  const stop = async (signal: string) => {
    process.stderr.write(`edge: ${signal}, shutting down\n`);
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    await edge.close();
    process.stderr.write("edge: stopped\n");
    process.exit(0);
  };
  process.once("SIGTERM", () => void stop("SIGTERM"));
  process.once("SIGINT", () => void stop("SIGINT"));
} catch (err) {
  const message =
    err instanceof SettingsError ? err.message : `edge failed to start: ${(err as Error).message}`;
  process.stderr.write(`${message}\n`);
  process.exit(1);
}
