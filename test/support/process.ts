/** Real processes for end-to-end tests: start, wait for a line or a URL, stop. */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";

export interface Proc {
  child: ChildProcess;
  output(): string;
  /** Resolves with the exit code (null when the top process died of the signal). */
  exited: Promise<number | null>;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function startProcess(
  command: string,
  args: string[],
  env: Record<string, string | undefined>,
  cwd = process.cwd(),
): Proc {
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
    detached: true,
  });
  let out = "";
  child.stdout?.on("data", (d) => {
    out += d;
  });
  child.stderr?.on("data", (d) => {
    out += d;
  });
  // "close", not "exit": it waits until every process holding our pipes (the service under
  // npm/sh/tsx) has gone, so "stopped" means stopped and its last lines have been read.
  const exited = new Promise<number | null>((resolve) =>
    child.on("close", (code) => resolve(code)),
  );
  return {
    child,
    output: () => out,
    exited,
    stop: async (signal = "SIGTERM") => {
      // The whole group (npm, sh, tsx and the service): npm does not forward signals itself.
      if (child.exitCode === null && child.pid) {
        try {
          process.kill(-child.pid, signal);
        } catch {
          // already gone
        }
      }
      // Whatever is left of the group after that is killed.
      const timer = setTimeout(() => {
        try {
          if (child.pid) process.kill(-child.pid, "SIGKILL");
        } catch {
          // already gone
        }
      }, 15_000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
}

/** A free loopback port (closed again before it is returned). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() =>
        typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port")),
      );
    });
  });
}

/** Polls until fn resolves truthy or the time is up. */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | false>,
  what: string,
  timeoutMs = 60_000,
  proc?: Proc,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let lastErr: unknown;
  while (Date.now() < until) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (proc && proc.child.exitCode !== null) {
      throw new Error(
        `process exited (${proc.child.exitCode}) while waiting for ${what}:\n${proc.output()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out waiting for ${what}: ${String(lastErr)}\n${proc?.output() ?? ""}`);
}
