/**
 * Starts the real GPU node entry as its container does (`node --import tsx gpu-node/main.ts`) on a
 * random loopback port, on top of the one process helper. npm and the `tsx` command are left out:
 * npm does not pass SIGTERM on to the script's process, the `tsx` command SIGKILLs a child that
 * does not confirm a signal within 30 ms (a loaded machine's node may not), and the tests are about
 * the node's own signal handling.
 */
import { jsonLines, type Proc, startProcess, waitForJsonLine } from "./process.ts";

export { type Exit, REPO_ROOT } from "./process.ts";

/** Variables of the node that must not leak in from the environment running the tests. */
const NODE_VARIABLES =
  /^(GPU_NODE_|HERMES_|PHI3_|MODELS_DIR$|SHUTDOWN_GRACE_MS$|LOG_LEVEL$|NODE_OPTIONS$)/;

export interface RunningNode extends Proc {
  baseUrl: string;
}

/** Spawns the node (GPU_NODE_PORT=0 unless `env` says otherwise) without waiting for it. */
export function spawnGpuNode(
  env: Record<string, string>,
  options: { keepChars?: number } = {},
): Proc {
  return startProcess(
    process.execPath,
    ["--import", "tsx", "gpu-node/main.ts"],
    { GPU_NODE_HOST: "127.0.0.1", GPU_NODE_PORT: "0", ...env },
    { dropEnv: NODE_VARIABLES, keepChars: options.keepChars },
  );
}

/** Starts the node and waits for its "listening" log line. */
export async function startGpuNode(
  env: Record<string, string>,
  timeoutMs = 30_000,
  options: { keepChars?: number } = {},
): Promise<RunningNode> {
  const proc = spawnGpuNode(env, options);
  try {
    const { port } = await waitForJsonLine<{ msg?: string; port?: number }>(
      proc,
      (line) => Boolean(line.msg?.startsWith("listening on") && line.port),
      timeoutMs,
      "the GPU node's listening line",
    );
    return { ...proc, baseUrl: `http://127.0.0.1:${port}` };
  } catch (err) {
    await proc.stop("SIGKILL");
    throw err;
  }
}

/** Parsed JSON log lines of a process's stdout. */
export function logLines(stdout: string): { msg: string; [key: string]: unknown }[] {
  return jsonLines(stdout);
}
