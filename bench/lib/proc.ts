/** Child processes for benchmarks: start, read the first JSON line, stop by process group. */
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const TSX = `${REPO_ROOT}node_modules/.bin/tsx`;

export interface Child {
  child: ChildProcess;
  output(): string;
  stop(): Promise<void>;
}

export function spawnChild(
  args: string[],
  env: Record<string, string>,
  /** command: what to run (default tsx, with `args` as its script and arguments). */
  options: { quietStdout?: boolean; command?: string } = {},
): Child {
  const child = spawn(options.command ?? TSX, args, {
    cwd: REPO_ROOT,
    env: { ...process.env, ...env },
    // Logs of a server under load go to /dev/null: piping them here would cost our CPU.
    stdio: ["ignore", options.quietStdout ? "ignore" : "pipe", "pipe"],
    detached: true,
  });
  let out = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    out = (out + d).slice(-20_000);
  });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    out = (out + d).slice(-20_000);
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return {
    child,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.pid) {
        try {
          process.kill(-child.pid, "SIGTERM");
        } catch {
          // already gone
        }
        const timer = setTimeout(() => {
          try {
            if (child.pid) process.kill(-child.pid, "SIGKILL");
          } catch {
            // already gone
          }
        }, 5000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/** Waits for the child's first stdout line that parses as JSON. */
export async function firstJsonLine<T>(proc: Child, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    for (const line of proc.output().split("\n")) {
      if (line.startsWith("{")) {
        try {
          return JSON.parse(line) as T;
        } catch {
          // partial line
        }
      }
    }
    if (proc.child.exitCode !== null) throw new Error(`child exited:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`child did not report in time:\n${proc.output()}`);
}

/** Polls a URL until it answers 2xx. */
export async function waitForHttp(url: string, proc: Child, timeoutMs = 60_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.ok) return;
    } catch {
      // not up yet
    }
    if (proc.child.exitCode !== null) throw new Error(`child exited:\n${proc.output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${url} did not answer in time:\n${proc.output()}`);
}
