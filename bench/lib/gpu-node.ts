/** The real GPU node process (`tsx gpu-node/main.ts`) with the tiny generated models, on CPU. */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { GPU_ROUTES } from "../../gpu-node/contract/index.ts";
import { writeTinyHermes } from "../../gpu-node/models/tiny/hermes.ts";
import { writeTinyPhi3 } from "../../gpu-node/models/tiny/phi3.ts";
import { startGpuNode } from "../../test/support/gpu-node-process.ts";
import type { Proc } from "../../test/support/process.ts";

export interface TinyGpuNode {
  url: string;
  token: string;
  hermesPath: string;
  phi3Dir: string;
  proc: Proc;
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

/** `env` overrides the node's settings (e.g. HERMES_PARALLEL). */
export async function startTinyGpuNode(
  dir: string,
  env: Record<string, string> = {},
): Promise<TinyGpuNode> {
  const { hermesPath, phi3Dir } = await writeTinyModels(dir);
  // The node logs at info while it serves: keep only the tail (for the error message).
  const proc = await startGpuNode(
    {
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
      ...env,
    },
    60_000,
    { keepChars: 20_000 },
  );
  const url = proc.baseUrl;
  const until = Date.now() + 60_000;
  // Models load in the background: wait until health leaves "loading".
  while (Date.now() < until) {
    const res = await fetch(`${url}${GPU_ROUTES.health}`, {
      headers: { authorization: `Bearer ${TINY_TOKEN}` },
    });
    const health = (await res.json()) as { status: string };
    if (health.status === "ok") break;
    if (health.status !== "loading") {
      await proc.stop();
      throw new Error(`GPU node health ${health.status}:\n${proc.output()}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    token: TINY_TOKEN,
    hermesPath,
    phi3Dir,
    proc,
    stop: async () => void (await proc.stop()),
  };
}
