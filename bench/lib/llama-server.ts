/**
 * llama.cpp's own `llama-server`, built from the very source node-llama-cpp binds
 * (bench/lib/build-llama-server.sh: its git bundle at its commit, with its patches), as the peer
 * the GPU node's Hermes path is measured against.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import { type Proc, REPO_ROOT, startProcess, waitForHttp } from "../../test/support/process.ts";

/** Where the build script puts the binary (git-ignored). */
export const LLAMA_SERVER_BIN = join(
  REPO_ROOT,
  ".cache",
  "llama-server",
  "src",
  "build",
  "bin",
  "llama-server",
);
export const BUILD_SCRIPT = join(REPO_ROOT, "bench", "lib", "build-llama-server.sh");

export function llamaServerBuilt(): boolean {
  return existsSync(LLAMA_SERVER_BIN);
}

/** Builds it (15-30 min on 2 busy cores, once; niced, one job). Resolves with the binary. */
export async function buildLlamaServer(): Promise<string> {
  await promisify(execFile)("bash", [BUILD_SCRIPT], { cwd: REPO_ROOT, maxBuffer: 1 << 20 });
  if (!llamaServerBuilt()) throw new Error(`${BUILD_SCRIPT} finished without ${LLAMA_SERVER_BIN}`);
  return LLAMA_SERVER_BIN;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface LlamaServer {
  url: string;
  proc: Proc;
  stop(): Promise<void>;
}

/** Serves `modelPath` with `slots` parallel slots of `contextPerSlot` tokens each, on `threads`. */
export async function startLlamaServer(options: {
  modelPath: string;
  slots: number;
  contextPerSlot: number;
  threads: number;
}): Promise<LlamaServer> {
  const port = await freePort();
  const proc = startProcess(
    LLAMA_SERVER_BIN,
    [
      "-m",
      options.modelPath,
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "-t",
      String(options.threads),
      "-tb",
      String(options.threads),
      // -c is the whole context, shared by the slots.
      "-c",
      String(options.contextPerSlot * options.slots),
      "-np",
      String(options.slots),
      "-ngl",
      "0",
      "--no-webui",
      "--log-disable",
    ],
    {},
    { stdout: "ignore", keepChars: 20_000 },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitForHttp(`${url}/health`, proc, 60_000);
  return { url, proc, stop: async () => void (await proc.stop()) };
}
