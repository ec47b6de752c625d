/**
 * The VRAM plan in the real GPU node process: logged at start-up, reported by /v1/health, and a
 * plan that cannot fit VRAM_BUDGET_MIB loads no model (both say why) while the node keeps serving
 * health, so a container is not restarted in a loop. HERMES_GPU=cuda puts Hermes in the plan on any
 * machine; the refusal comes before anything is loaded.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GPU_ROUTES, GpuNodeHealth } from "../../gpu-node/contract/index.ts";
import { writeTinyHermes } from "../../gpu-node/models/tiny/hermes.ts";
import { logLines, type RunningNode, startGpuNode } from "../support/gpu-node-process.ts";

let dir: string;
let node: RunningNode;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "gpu-node-vram-"));
  await writeTinyHermes(join(dir, "hermes.gguf"), { seed: 2 });
  node = await startGpuNode({
    MODELS_DIR: dir,
    HERMES_MODEL_PATH: join(dir, "hermes.gguf"),
    HERMES_GPU: "cuda",
    HERMES_CTX: "4096",
    PHI3_MODEL_DIR: "off",
    VRAM_BUDGET_MIB: "1",
    LOG_LEVEL: "info",
  });
});

afterAll(async () => {
  // SIGTERM, which tsx passes on: a SIGKILL would stop tsx and orphan the node under it.
  if (node?.child.exitCode === null) await node.stop("SIGTERM");
  await rm(dir, { recursive: true, force: true });
});

describe("the GPU node's VRAM plan", () => {
  it("does not fit a 1 MiB budget: no model loads, both say why, health still answers", async () => {
    const res = await fetch(`${node.baseUrl}${GPU_ROUTES.health}`);
    expect(res.status).toBe(200);
    const health = GpuNodeHealth.parse(await res.json());
    expect(health.vram_plan).toMatchObject({
      fits_budget: false,
      budget_source: "VRAM_BUDGET_MIB",
    });
    expect(health.vram_plan?.items.map((i) => i.item)).toContain("hermes_kv_cache");
    expect(health.models.hermes.state).toBe("error");
    expect(health.models.hermes.error).toMatch(/does not fit VRAM_BUDGET_MIB: lower HERMES_CTX/);
    expect(health.status).toBe("error");
  });

  it("logs the plan once at start-up, as an error line with every item", () => {
    const line = logLines(node.stdout()).find((l) => l.msg.startsWith("VRAM plan:"));
    expect(line?.level).toBe(50);
    expect(line?.msg).toContain("DOES NOT FIT");
    const plan = line?.vram_plan as { items: { item: string }[]; total_mib: number };
    expect(plan.items.map((i) => i.item)).toEqual([
      "hermes_weights",
      "hermes_kv_cache",
      "hermes_compute_buffers",
      "cuda_runtime",
    ]);
    expect(node.stdout()).not.toContain("loading Hermes");
  });

  it("exits 0 on SIGTERM (nothing was loaded)", async () => {
    expect(await node.stop("SIGTERM")).toEqual({ code: 0, signal: null });
  });
});
