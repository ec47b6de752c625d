/** The real GPU node process (`tsx gpu-node/main.ts`) with the tiny generated models, on CPU. */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { GPU_ROUTES } from "../../gpu-node/contract/index.ts";
import { writeTinyHermes } from "../../gpu-node/models/tiny/hermes.ts";
import { writeTinyPhi3 } from "../../gpu-node/models/tiny/phi3.ts";
import { type Child, spawnChild } from "./proc.ts";

export interface TinyGpuNode {
  url: string;
  token: string;
  hermesPath: string;
  phi3Dir: string;
  proc: Child;
  stop(): Promise<void>;
}

export const TINY_TOKEN = "bench-gpu-token";
export const HERMES_CTX = 1024;

/** Writes the tiny models under `dir` (seeded) and returns their paths. */
export async function writeTinyModels(
  dir: string,
): Promise<{ hermesPath: string; phi3Dir: string }> {
  await mkdir(join(dir, "hermes"), { recursive: true });
  const hermesPath = join(dir, "hermes", "tiny.gguf");
  const phi3Dir = join(dir, "phi3", "tiny");
  await writeTinyHermes(hermesPath, { seed: 1 });
  await writeTinyPhi3(phi3Dir, { seed: 1 });
  return { hermesPath, phi3Dir };
}

export async function startTinyGpuNode(dir: string): Promise<TinyGpuNode> {
  const { hermesPath, phi3Dir } = await writeTinyModels(dir);
  const proc = spawnChild(["gpu-node/main.ts"], {
    GPU_NODE_HOST: "127.0.0.1",
    GPU_NODE_PORT: "0",
    GPU_NODE_TOKEN: TINY_TOKEN,
    MODELS_DIR: dir,
    HERMES_MODEL_PATH: hermesPath,
    HERMES_GPU: "cpu",
    HERMES_CTX: String(HERMES_CTX),
    HERMES_THREADS: "1",
    HERMES_PARALLEL: "1",
    PHI3_MODEL_DIR: phi3Dir,
    PHI3_DEVICE: "cpu",
    PHI3_THREADS: "1",
    LOG_LEVEL: "info",
  });
  const until = Date.now() + 60_000;
  let port: number | undefined;
  while (!port && Date.now() < until) {
    for (const line of proc.output().split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        const entry = JSON.parse(line) as { msg?: string; port?: number };
        if (entry.msg?.startsWith("listening on") && entry.port) port = entry.port;
      } catch {
        // partial line
      }
    }
    if (proc.child.exitCode !== null) throw new Error(`GPU node exited:\n${proc.output()}`);
    if (!port) await new Promise((r) => setTimeout(r, 100));
  }
  if (!port) throw new Error(`GPU node did not start:\n${proc.output()}`);
  const url = `http://127.0.0.1:${port}`;
  // Models load in the background: wait until health leaves "loading".
  while (Date.now() < until) {
    const res = await fetch(`${url}${GPU_ROUTES.health}`, {
      headers: { authorization: `Bearer ${TINY_TOKEN}` },
    });
    const health = (await res.json()) as { status: string };
    if (health.status === "ok") break;
    if (health.status !== "loading") throw new Error(`GPU node health ${health.status}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return { url, token: TINY_TOKEN, hermesPath, phi3Dir, proc, stop: () => proc.stop() };
}
