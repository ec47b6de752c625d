/**
 * Starts the real GPU node entry (what `npm run start:gpu-node` runs: `tsx gpu-node/main.ts`) on a
 * random loopback port, and stops it. npm itself is left out: it does not pass SIGTERM on to the
 * script's process, and the test is about the node's own signal handling.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const TSX = `${REPO_ROOT}node_modules/.bin/tsx`;

/** Variables of the node that must not leak in from the environment running the tests. */
const NODE_VARIABLES =
  /^(GPU_NODE_|HERMES_|PHI3_|MODELS_DIR$|SHUTDOWN_GRACE_MS$|LOG_LEVEL$|NODE_OPTIONS$)/;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface RunningNode {
  child: ChildProcess;
  baseUrl: string;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<Exit>;
  /** Sends a signal and waits for the exit (SIGKILL after `timeoutMs`). */
  stop: (signal?: NodeJS.Signals, timeoutMs?: number) => Promise<Exit>;
}

export function spawnGpuNode(env: Record<string, string>) {
  const base = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !NODE_VARIABLES.test(key)),
  );
  const child = spawn(TSX, ["gpu-node/main.ts"], {
    cwd: REPO_ROOT,
    env: { ...base, GPU_NODE_HOST: "127.0.0.1", GPU_NODE_PORT: "0", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<Exit>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  return { child, exited, stdout: () => stdout, stderr: () => stderr };
}

/** Starts the node and waits for its "listening" log line. */
export async function startGpuNode(
  env: Record<string, string>,
  timeoutMs = 30_000,
): Promise<RunningNode> {
  const proc = spawnGpuNode(env);
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.child.kill("SIGKILL");
      reject(new Error(`GPU node did not start:\n${proc.stdout()}\n${proc.stderr()}`));
    }, timeoutMs);
    const onData = () => {
      for (const line of proc.stdout().split("\n")) {
        if (!line.startsWith("{")) continue;
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg?.startsWith("listening on") && entry.port) {
          clearTimeout(timer);
          proc.child.stdout?.off("data", onData);
          resolve(entry.port);
          return;
        }
      }
    };
    proc.child.stdout?.on("data", onData);
    void proc.exited.then((exit) => {
      clearTimeout(timer);
      reject(new Error(`GPU node exited (${JSON.stringify(exit)}):\n${proc.stderr()}`));
    });
  });

  const stop = async (signal: NodeJS.Signals = "SIGTERM", timeoutMs = 20_000) => {
    if (proc.child.exitCode !== null || proc.child.signalCode !== null) return proc.exited;
    proc.child.kill(signal);
    const timer = setTimeout(() => proc.child.kill("SIGKILL"), timeoutMs);
    const exit = await proc.exited;
    clearTimeout(timer);
    return exit;
  };
  return { ...proc, baseUrl: `http://127.0.0.1:${port}`, stop };
}

/** Parsed JSON log lines of a process's stdout. */
export function logLines(stdout: string): { msg: string; [key: string]: unknown }[] {
  return stdout
    .split("\n")
    .filter((line) => line.startsWith("{"))
    .map((line) => JSON.parse(line));
}
