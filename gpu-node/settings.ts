/**
 * The GPU node's settings: one zod schema over the environment, parsed once at the entry.
 *
 * Nothing else in gpu-node/ reads process.env; main.ts passes it here. Every failure names the
 * variable, so a bad deployment stops with one readable line.
 */
import { availableParallelism } from "node:os";
import { isAbsolute, resolve } from "node:path";
import { z } from "zod";
import { isLoopbackHost, LOG_LEVELS, parseEnv, SettingsError } from "./contract/env.ts";
import {
  DEFAULT_HERMES_FILE,
  DEFAULT_PHI3_DIR_CPU,
  DEFAULT_PHI3_DIR_CUDA,
  hasNvidiaGpu,
  phi3VariantForDevice,
} from "./models/catalog.ts";
import type { DeviceChoice } from "./runtime.ts";

/**
 * The Phi-3 folder `npm run models:pull` fetches for this device: the CUDA export on a machine
 * with an NVIDIA driver (or when CUDA is asked for), the CPU export otherwise.
 */
export function defaultPhi3Dir(device: DeviceChoice, nvidiaGpu: boolean): string {
  return phi3VariantForDevice(device, nvidiaGpu) === "cuda"
    ? DEFAULT_PHI3_DIR_CUDA
    : DEFAULT_PHI3_DIR_CPU;
}

/** A model path set to this literal disables the model (state "disabled"). */
/** Phi-3 cache positions per batch: 4 rows of 512 (prompt + max_length), or one of 2048. On a GPU
 * it is what keeps Phi-3's fp16 cache (about 384 KiB per position, past and present both on the
 * card during a step) inside a 12 GB card's budget (README "Hardware"). */
export const DEFAULT_PHI3_KV_TOKENS = 2048;

export const MODEL_OFF = "off";

export const DEFAULT_HERMES_SYSTEM_PROMPT =
  "You are Hermes, a careful assistant to a trader. Answer concisely and concretely. " +
  "When you assess a trade, weigh risk against reward, say what could go wrong, and state " +
  "your uncertainty plainly. Never invent prices, news or figures you were not given.";

const DEVICE_CHOICES = ["auto", "cpu", "cuda"] as const;

export interface GpuNodeSettings {
  host: string;
  port: number;
  /** Bearer token every request must carry; undefined = no authentication (loopback only). */
  token: string | undefined;
  modelsDir: string;
  hermes: {
    /** Absolute GGUF path; null when disabled with HERMES_MODEL_PATH=off. */
    modelPath: string | null;
    contextSize: number;
    gpu: DeviceChoice;
    /** Sequences batched in one context; "auto" = derived at load (hermes/parallel.ts). */
    parallel: number | "auto";
    /** KV-cache budget for "auto", MiB; undefined = the device's default. */
    kvBudgetMiB: number | undefined;
    threads: number;
    systemPrompt: string;
    queueMax: number;
  };
  phi3: {
    /** Absolute folder path; null when disabled with PHI3_MODEL_DIR=off. */
    modelDir: string | null;
    device: DeviceChoice;
    threads: number;
    /** Sequences decoded together, one ONNX run per step (PHI3_PARALLEL). */
    parallel: number;
    /** Cache positions one batch may hold (PHI3_KV_TOKENS): bounds the KV cache's memory. */
    kvTokens: number;
    queueMax: number;
  };
  /** Longest a generation request may take on the node, whatever deadline the caller sends. */
  maxRequestMs: number;
  shutdownGraceMs: number;
  /**
   * VRAM the worst-case plan must fit, MiB (VRAM_BUDGET_MIB); undefined = the card's total when a
   * GPU is present; 0 = no check.
   */
  vramBudgetMiB: number | undefined;
  logLevel: (typeof LOG_LEVELS)[number];
}

export { isLoopbackHost, SettingsError };

/**
 * Default CPU threads for a model runtime. llama.cpp's own default, max(4, cores), oversubscribes
 * small machines badly (measured: on 2 cores a tiny model ran at 4 tok/s with it and about
 * 2,500 tok/s with 1 thread). Half the logical cores approximates the physical ones (SMT); the cap
 * of 4 keeps two runtimes plus the HTTP loop from fighting on a shared box. On a GPU the value
 * barely matters.
 */
export function defaultThreads(logicalCores: number): number {
  return Math.max(1, Math.min(4, Math.floor(logicalCores / 2)));
}

/** Empty strings count as unset, so `GPU_NODE_TOKEN=` in a copied .env.template means "no token". */
const unset = (value: unknown) =>
  typeof value === "string" && value.trim() === "" ? undefined : value;

const integer = (min: number, max: number) =>
  z
    .string()
    .trim()
    .regex(/^-?\d+$/, `must be an integer between ${min} and ${max}`)
    .transform(Number)
    .pipe(z.number().int().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`));

const optionalInteger = (min: number, max: number) =>
  z.preprocess(unset, integer(min, max).optional());

const choice = <T extends readonly [string, ...string[]]>(values: T) =>
  z.preprocess(
    unset,
    z
      .string()
      .trim()
      .toLowerCase()
      .pipe(z.enum(values, `must be one of ${values.join(", ")}`))
      .optional(),
  );

const text = () => z.preprocess(unset, z.string().optional());

/** The raw environment, variable by variable (names are the public interface). */
export const EnvSchema = z.object({
  GPU_NODE_HOST: text(),
  GPU_NODE_PORT: optionalInteger(0, 65_535),
  GPU_NODE_TOKEN: text(),
  MODELS_DIR: text(),
  HERMES_MODEL_PATH: text(),
  HERMES_CTX: optionalInteger(256, 131_072),
  HERMES_GPU: choice(DEVICE_CHOICES),
  HERMES_PARALLEL: z.preprocess(
    unset,
    z
      .union([z.string().trim().toLowerCase().pipe(z.literal("auto")), integer(1, 64)], {
        error: "must be auto or an integer between 1 and 64",
      })
      .optional(),
  ),
  HERMES_KV_BUDGET_MIB: optionalInteger(16, 1_048_576),
  HERMES_THREADS: optionalInteger(0, 256),
  HERMES_SYSTEM_PROMPT: text(),
  HERMES_QUEUE_MAX: optionalInteger(0, 10_000),
  PHI3_MODEL_DIR: text(),
  PHI3_DEVICE: choice(DEVICE_CHOICES),
  PHI3_THREADS: optionalInteger(0, 256),
  PHI3_PARALLEL: optionalInteger(1, 64),
  PHI3_KV_TOKENS: optionalInteger(256, 1_048_576),
  PHI3_QUEUE_MAX: optionalInteger(0, 10_000),
  GPU_NODE_MAX_REQUEST_MS: optionalInteger(100, 3_600_000),
  SHUTDOWN_GRACE_MS: optionalInteger(0, 600_000),
  VRAM_BUDGET_MIB: optionalInteger(0, 16_777_216),
  LOG_LEVEL: choice(LOG_LEVELS),
});

export interface ParseSettingsOptions {
  /** Logical CPU count, for the thread defaults; the machine's by default. */
  logicalCores?: number;
  /** Base for relative paths; the process's working directory by default. */
  cwd?: string;
  /** Whether an NVIDIA driver is present (picks the default Phi-3 folder); detected by default. */
  nvidiaGpu?: boolean;
}

/** Parses the environment; throws SettingsError naming the first bad variable. */
export function parseGpuNodeSettings(
  env: Record<string, string | undefined>,
  options: ParseSettingsOptions = {},
): GpuNodeSettings {
  // The variable's name, never its value (a value may be a secret, and this line is logged).
  const e = parseEnv(EnvSchema, env);
  const cwd = options.cwd ?? process.cwd();
  const threads = defaultThreads(options.logicalCores ?? availableParallelism());
  const modelsDir = resolve(cwd, e.MODELS_DIR ?? "./models");
  const modelPath = (value: string | undefined, fallback: string): string | null => {
    if (value?.trim().toLowerCase() === MODEL_OFF) return null;
    const chosen = value ?? fallback;
    return isAbsolute(chosen) ? chosen : resolve(value === undefined ? modelsDir : cwd, chosen);
  };

  const host = e.GPU_NODE_HOST?.trim() ?? "127.0.0.1";
  const token = e.GPU_NODE_TOKEN?.trim() || undefined;
  if (!token && !isLoopbackHost(host)) {
    throw new SettingsError(
      "GPU_NODE_TOKEN",
      "GPU_NODE_TOKEN must be set when GPU_NODE_HOST is not a loopback address " +
        "(the internal API would otherwise be open to the network)",
    );
  }

  return {
    host,
    port: e.GPU_NODE_PORT ?? 8001,
    token,
    modelsDir,
    hermes: {
      modelPath: modelPath(e.HERMES_MODEL_PATH, DEFAULT_HERMES_FILE),
      contextSize: e.HERMES_CTX ?? 6144,
      gpu: e.HERMES_GPU ?? "auto",
      parallel: e.HERMES_PARALLEL ?? "auto",
      kvBudgetMiB: e.HERMES_KV_BUDGET_MIB,
      threads: e.HERMES_THREADS ?? threads,
      systemPrompt: e.HERMES_SYSTEM_PROMPT ?? DEFAULT_HERMES_SYSTEM_PROMPT,
      queueMax: e.HERMES_QUEUE_MAX ?? 8,
    },
    phi3: {
      modelDir: modelPath(
        e.PHI3_MODEL_DIR,
        defaultPhi3Dir(e.PHI3_DEVICE ?? "auto", options.nvidiaGpu ?? hasNvidiaGpu()),
      ),
      device: e.PHI3_DEVICE ?? "auto",
      threads: e.PHI3_THREADS ?? threads,
      parallel: e.PHI3_PARALLEL ?? 4,
      kvTokens: e.PHI3_KV_TOKENS ?? DEFAULT_PHI3_KV_TOKENS,
      queueMax: e.PHI3_QUEUE_MAX ?? 8,
    },
    maxRequestMs: e.GPU_NODE_MAX_REQUEST_MS ?? 120_000,
    shutdownGraceMs: e.SHUTDOWN_GRACE_MS ?? 10_000,
    vramBudgetMiB: e.VRAM_BUDGET_MIB,
    logLevel: e.LOG_LEVEL ?? "info",
  };
}
