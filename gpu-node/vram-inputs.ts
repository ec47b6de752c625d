/**
 * Gathers what `vram-plan.ts` computes from: which models will run on the GPU (the same choices
 * the loaders make), their shapes (the GGUF header, genai_config.json, file sizes) and the card's
 * memory (nvidia-smi). Nothing is loaded; an unreadable file leaves that model out of the plan
 * with the reason (the loader reports the same file as missing or broken anyway).
 */

import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile, stat } from "node:fs/promises";
import { basename, join } from "node:path";
import { promisify } from "node:util";
import type { Logger } from "pino";
import { hermesParallel } from "./hermes/parallel.ts";
import { hasNvidiaGpu } from "./models/catalog.ts";
import { parseGenaiConfig } from "./phi3/folder.ts";
import { missingCudaProviderFiles } from "./phi3/ort-process.ts";
import type { GpuNodeSettings } from "./settings.ts";
import {
  type HermesShape,
  type Phi3Shape,
  planVram,
  type VramPlan,
  type VramPlanInput,
  vramPlanRefusal,
  vramPlanSummary,
} from "./vram-plan.ts";
import { NVIDIA_SMI_QUERY, parseNvidiaSmi } from "./watchdog/nvidia-smi.ts";
import { WatchdogEnv } from "./watchdog/settings.ts";

export interface VramInputDeps {
  /** Whether an NVIDIA driver is present. */
  nvidiaGpu: boolean;
  /** The card's total memory, MiB (GPU 0); undefined when it cannot be read. */
  cardMiB?: () => Promise<number | undefined>;
  /** Whether onnxruntime-node's CUDA provider is installed. */
  cudaProviderInstalled?: () => boolean;
}

/** GPU 0's total memory from nvidia-smi, or undefined. */
export async function readCardMiB(): Promise<number | undefined> {
  try {
    const [cmd, ...args] = NVIDIA_SMI_QUERY;
    const { stdout } = await promisify(execFile)(cmd, args, { timeout: 10_000 });
    const parsed = parseNvidiaSmi(stdout);
    return parsed.ok ? parsed.gpus.find((g) => g.index === 0)?.totalMiB : undefined;
  } catch {
    return undefined;
  }
}

function lookup(root: unknown, dotted: string): unknown {
  let node: unknown = root;
  for (const part of dotted.split(".")) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/** Hermes' shape from its GGUF header (checked as the loader checks it). */
export async function readHermesShape(path: string): Promise<HermesShape> {
  const { checkGgufFile } = await import("./hermes/check.ts");
  const checked = await checkGgufFile(path, { expectedArchitecture: "llama" });
  const md = checked.info.metadata;
  const arch = lookup(md, checked.architecture);
  const num = (key: string) => Number(lookup(arch, key));
  const heads = num("attention.head_count");
  const embd = num("embedding_length");
  const keyLength = num("attention.key_length");
  const tokens = lookup(md, "tokenizer.ggml.tokens");
  const vocab = num("vocab_size") || (Array.isArray(tokens) ? tokens.length : 0);
  return {
    fileBytes: checked.fileSize,
    layers: num("block_count"),
    heads,
    kvHeads: num("attention.head_count_kv"),
    headDim: keyLength > 0 ? keyLength : Math.round(embd / heads),
    embd,
    ff: num("feed_forward_length"),
    vocab,
  };
}

/** Phi-3's shape from genai_config.json and the sizes of its ONNX files. */
export async function readPhi3Shape(dir: string): Promise<Phi3Shape> {
  const raw: unknown = JSON.parse(await readFile(join(dir, "genai_config.json"), "utf8"));
  const config = parseGenaiConfig(dir, raw);
  let fileBytes = 0;
  for (const name of await readdir(dir)) {
    if (/\.onnx(\.data|_data)?$/.test(name)) fileBytes += (await stat(join(dir, name))).size;
  }
  const hidden = Number(lookup(raw, "model.decoder.hidden_size")) || 0;
  return {
    fileBytes,
    layers: config.numLayers,
    kvHeads: config.numKvHeads,
    headDim: config.headSize,
    hidden,
    vocab: config.vocabSize,
    contextLength: config.contextLength,
    // The CUDA export keeps its cache and activations in fp16; the CPU one in fp32.
    elementBytes: /cuda|fp16/i.test(basename(dir)) ? 2 : 4,
  };
}

/** What the plan needs, for these settings on this machine. */
export async function gatherVramInputs(
  settings: Pick<GpuNodeSettings, "hermes" | "phi3" | "vramBudgetMiB">,
  watchdogThresholdMiB: number,
  deps: VramInputDeps,
): Promise<VramPlanInput> {
  const input: VramPlanInput = { watchdogThresholdMiB, unknown: [] };
  const { hermes, phi3 } = settings;
  // The loaders' choices: Hermes "auto" uses CUDA when a driver is there; Phi-3 "auto" also needs
  // the CUDA provider; an explicit "cuda" is planned for even if it will then fail to load.
  const hermesOnGpu =
    hermes.modelPath !== null &&
    (hermes.gpu === "cuda" || (hermes.gpu === "auto" && deps.nvidiaGpu));
  const providerInstalled =
    deps.cudaProviderInstalled ?? (() => missingCudaProviderFiles().length === 0);
  const phi3OnGpu =
    phi3.modelDir !== null &&
    (phi3.device === "cuda" || (phi3.device === "auto" && deps.nvidiaGpu && providerInstalled()));

  if (hermesOnGpu && hermes.modelPath !== null) {
    try {
      const shape = await readHermesShape(hermes.modelPath);
      input.hermes = {
        shape,
        contextSize: hermes.contextSize,
        // What the runtime will pick for "auto" (hermes/parallel.ts), free VRAM unknown here.
        parallel: hermesParallel({
          requested: hermes.parallel,
          contextSize: hermes.contextSize,
          kvBytesPerToken: shape.layers * shape.kvHeads * shape.headDim * 2 * 2,
          onGpu: true,
          ...(hermes.kvBudgetMiB !== undefined ? { kvBudgetMiB: hermes.kvBudgetMiB } : {}),
        }),
      };
    } catch (error) {
      input.unknown?.push(`hermes: ${(error as Error).message}`);
    }
  }
  if (phi3OnGpu && phi3.modelDir !== null) {
    try {
      if (!existsSync(phi3.modelDir)) throw new Error(`${phi3.modelDir} does not exist`);
      input.phi3 = { shape: await readPhi3Shape(phi3.modelDir), kvTokens: phi3.kvTokens };
    } catch (error) {
      input.unknown?.push(`phi3: ${(error as Error).message}`);
    }
  }
  if (settings.vramBudgetMiB !== undefined) {
    if (settings.vramBudgetMiB > 0) {
      input.budget = { mib: settings.vramBudgetMiB, source: "VRAM_BUDGET_MIB" };
    }
  } else if (deps.nvidiaGpu) {
    const card = await (deps.cardMiB ?? readCardMiB)();
    if (card !== undefined) input.budget = { mib: card, source: "card" };
  }
  return input;
}

/**
 * The start-up plan (main.ts): gathered, logged (warn when above the watchdog's threshold, error
 * when it does not fit), and the one-line refusal when it does not fit the budget.
 */
export async function startupVramPlan(
  settings: Pick<GpuNodeSettings, "hermes" | "phi3" | "vramBudgetMiB">,
  env: Record<string, string | undefined>,
  logger: Logger,
  deps: VramInputDeps = { nvidiaGpu: hasNvidiaGpu() },
): Promise<{ plan: VramPlan; refusal: string | undefined }> {
  // The watchdog's threshold from the same environment (an invalid one is the watchdog's to report).
  const parsed = WatchdogEnv.shape.WATCHDOG_THRESHOLD_MIB.safeParse(
    env.WATCHDOG_THRESHOLD_MIB?.trim() || undefined,
  );
  const threshold = parsed.success ? parsed.data : 10_500;
  const plan = planVram(await gatherVramInputs(settings, threshold, deps));
  const refusal = vramPlanRefusal(plan);
  const level = refusal ? "error" : plan.under_watchdog_threshold ? "info" : "warn";
  logger[level]({ vram_plan: plan }, vramPlanSummary(plan));
  return { plan, refusal };
}
