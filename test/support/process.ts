/**
 * The one helper for real processes, shared by the tests and the benchmarks: start a command in
 * its own process group, wait for a line (or a URL) that says it is ready, stop the whole group.
 *
 * Every group started here is remembered until it has exited. If this process ends first (a test
 * run or a benchmark killed by a timeout, Ctrl-C, an uncaught error, process.exit), an exit hook
 * kills the groups that are still alive, so nothing is left behind. Only SIGKILL of this process
 * escapes the hook.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createServer } from "node:net";
import { constants } from "node:os";
import { fileURLToPath } from "node:url";

export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
export const TSX = `${REPO_ROOT}node_modules/.bin/tsx`;

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface StartOptions {
  /** Working directory; the repository root by default. */
  cwd?: string;
  /** Variables of this process that the child must not inherit (the child's own `env` wins). */
  dropEnv?: RegExp;
  /** "ignore" discards the stream (a server logging under load would cost this process CPU). */
  stdout?: "pipe" | "ignore";
  stderr?: "pipe" | "ignore";
  /** Keep only the last this many characters of each stream (default: everything). */
  keepChars?: number;
}

export interface Proc {
  child: ChildProcess;
  /** stdout and stderr as they arrived, interleaved. */
  output(): string;
  stdout(): string;
  stderr(): string;
  /** Settles once the group's last holder of our pipes has gone (so the last lines are read). */
  exited: Promise<Exit>;
  /** Whether `exited` has settled. */
  hasExited(): boolean;
  /** Signals the whole group, waits for the exit; SIGKILLs what is left after `graceMs`. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<Exit>;
}

/** Process groups started here and not yet exited (their leaders' pids). */
const liveGroups = new Set<number>();

function killGroup(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pid, signal);
  } catch {
    // already gone
  }
}

let hooked = false;

/** Installed with the first child: kills every live group when this process ends. */
function installExitHook(): void {
  if (hooked) return;
  hooked = true;
  process.on("exit", () => {
    for (const pid of liveGroups) killGroup(pid, "SIGKILL");
  });
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    const onSignal = () => {
      for (const pid of liveGroups) killGroup(pid, "SIGKILL");
      liveGroups.clear();
      // Nobody else listens: end now, with the status the signal would have given (re-raising it
      // would let pending callbacks run first, e.g. a request failing on a killed server).
      if (process.listenerCount(signal) === 1) process.exit(128 + constants.signals[signal]);
    };
    process.on(signal, onSignal);
  }
}

/**
 * Starts `command` in a process group of its own (npm, sh, tsx and the service all in it: npm
 * does not pass signals on to its script). `env` is added to this process's environment.
 */
export function startProcess(
  command: string,
  args: string[],
  env: Record<string, string | undefined> = {},
  options: StartOptions = {},
): Proc {
  installExitHook();
  const inherited = options.dropEnv
    ? Object.fromEntries(Object.entries(process.env).filter(([k]) => !options.dropEnv?.test(k)))
    : process.env;
  const child = spawn(command, args, {
    cwd: options.cwd ?? REPO_ROOT,
    env: { ...inherited, ...env },
    stdio: ["ignore", options.stdout ?? "pipe", options.stderr ?? "pipe"],
    detached: true,
  });
  const pid = child.pid;
  if (pid !== undefined) liveGroups.add(pid);
  const keep = (text: string) =>
    options.keepChars === undefined ? text : text.slice(-options.keepChars);
  let all = "";
  let out = "";
  let err = "";
  child.stdout?.setEncoding("utf8").on("data", (d: string) => {
    out = keep(out + d);
    all = keep(all + d);
  });
  child.stderr?.setEncoding("utf8").on("data", (d: string) => {
    err = keep(err + d);
    all = keep(all + d);
  });
  let done = false;
  // "close", not "exit": it waits until every process holding our pipes (the service under
  // npm/sh/tsx) has gone, so "stopped" means stopped and its last lines have been read.
  const exited = new Promise<Exit>((resolve) => {
    const settle = (code: number | null, signal: NodeJS.Signals | null) => {
      if (done) return;
      done = true;
      if (pid !== undefined) liveGroups.delete(pid);
      resolve({ code, signal });
    };
    child.once("close", settle);
    // A command that could not be started never closes.
    child.once("error", (e) => {
      err += `\n${String(e)}\n`;
      all += `\n${String(e)}\n`;
      settle(null, null);
    });
  });
  return {
    child,
    output: () => all,
    stdout: () => out,
    stderr: () => err,
    exited,
    hasExited: () => done,
    stop: async (signal = "SIGTERM", graceMs = 15_000) => {
      if (done || pid === undefined) return exited;
      killGroup(pid, signal);
      // Whatever is left of the group after the grace period is killed.
      const timer = setTimeout(() => killGroup(pid, "SIGKILL"), graceMs);
      const exit = await exited;
      clearTimeout(timer);
      // The leader may have gone while a grandchild ignored the signal: take the group down.
      killGroup(pid, "SIGKILL");
      return exit;
    },
  };
}

/** `tsx <script> ...args` from the repository root: how the entries run under npm scripts. */
export function startTsx(
  args: string[],
  env: Record<string, string | undefined> = {},
  options: StartOptions = {},
): Proc {
  return startProcess(TSX, args, env, options);
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

/**
 * Polls until fn resolves truthy or the time is up; with `proc`, fails as soon as it exits
 * (with its output in the message).
 */
export async function waitFor<T>(
  fn: () => Promise<T | undefined | false> | T | undefined | false,
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
    if (proc?.hasExited()) {
      const exit = await proc.exited;
      throw new Error(
        `process exited (${exit.code ?? exit.signal}) while waiting for ${what}:\n${proc.output()}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}: ${String(lastErr)}\n${proc?.output() ?? ""}`);
}

/** The JSON lines (pino logs, reports) of a stream, skipping anything else and partial lines. */
export function jsonLines<T = Record<string, unknown>>(text: string): T[] {
  const lines: T[] = [];
  for (const line of text.split("\n")) {
    if (!line.startsWith("{")) continue;
    try {
      lines.push(JSON.parse(line) as T);
    } catch {
      // a line still being written
    }
  }
  return lines;
}

/** Waits for the first JSON line on the process's stdout that `match` accepts. */
export function waitForJsonLine<T = Record<string, unknown>>(
  proc: Proc,
  match: (line: T) => boolean = () => true,
  timeoutMs = 60_000,
  what = "a JSON line",
): Promise<T> {
  return waitFor(() => jsonLines<T>(proc.stdout()).find(match), what, timeoutMs, proc);
}

/** Polls a URL until it answers 2xx. */
export async function waitForHttp(url: string, proc?: Proc, timeoutMs = 60_000): Promise<void> {
  await waitFor(
    async () => {
      const res = await fetch(url);
      await res.arrayBuffer();
      return res.ok;
    },
    url,
    timeoutMs,
    proc,
  );
}
