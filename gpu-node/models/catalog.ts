/**
 * Which real models `npm run models:pull` fetches and where it puts them under MODELS_DIR.
 *
 * The GPU node's settings import the default paths from here, so a pulled model is found
 * without configuration. Pure data and path helpers: no I/O, no environment.
 */
import { existsSync } from "node:fs";
import { posix } from "node:path";

export const HF_DEFAULT_ENDPOINT = "https://huggingface.co";

/** Hermes-3 8B as GGUF, quantized by its authors. */
export const HERMES_REPO = "NousResearch/Hermes-3-Llama-3.1-8B-GGUF";
export const HERMES_REVISION = "main";
/** Q4_K_M (about 4.9 GB) leaves room on a 12 GB card for Phi-3 int4 and a 6144-token KV cache
 * under the watchdog's 10.5 GB threshold. */
export const DEFAULT_HERMES_QUANT = "Q4_K_M";
/** Folder under MODELS_DIR for Hermes files. */
export const HERMES_SUBDIR = "hermes";

/** The repository's file name for a quantization. */
export function hermesFileName(quant: string): string {
  return `Hermes-3-Llama-3.1-8B.${quant}.gguf`;
}

/** Relative to MODELS_DIR: where `models:pull` puts the default Hermes file. */
export const DEFAULT_HERMES_FILE = posix.join(HERMES_SUBDIR, hermesFileName(DEFAULT_HERMES_QUANT));

/** Phi-3-mini-4k-instruct exported for onnxruntime-genai. */
export const PHI3_REPO = "microsoft/Phi-3-mini-4k-instruct-onnx";
export const PHI3_REVISION = "main";
export const PHI3_SUBDIR = "phi3";

/** Folders of the Phi-3 repository, by the short names PHI3_VARIANT accepts. */
export const PHI3_VARIANTS = {
  /** int4 (RTN, block 32) for CUDA: the GPU box. */
  cuda: "cuda/cuda-int4-rtn-block-32",
  /** int4 (RTN, block 32, accuracy level 4) for CPUs. */
  cpu: "cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4",
} as const;
export type Phi3VariantName = keyof typeof PHI3_VARIANTS;

/** Relative to MODELS_DIR: the folder a Phi-3 variant is pulled into (its last path segment). */
export function phi3DirFor(variantPath: string): string {
  return posix.join(PHI3_SUBDIR, posix.basename(variantPath));
}

export const DEFAULT_PHI3_DIR_CUDA = phi3DirFor(PHI3_VARIANTS.cuda);
export const DEFAULT_PHI3_DIR_CPU = phi3DirFor(PHI3_VARIANTS.cpu);
/** The GPU box's default. On a machine without an NVIDIA GPU, `models:pull` fetches the CPU
 * variant instead (DEFAULT_PHI3_DIR_CPU): pick with `hasNvidiaGpu()` to match it. */
export const DEFAULT_PHI3_DIR = DEFAULT_PHI3_DIR_CUDA;

/** Whether an NVIDIA driver is loaded (the same test `models:pull` uses to pick a variant). */
export function hasNvidiaGpu(): boolean {
  return existsSync("/proc/driver/nvidia/version");
}

/**
 * The variant the GPU node loads by default: CUDA when PHI3_DEVICE is `cuda`, or `auto` with an
 * NVIDIA driver; CPU otherwise. `models:pull`'s `auto` and the node's default folder both use it.
 */
export function phi3VariantForDevice(device: string | undefined, gpu: boolean): Phi3VariantName {
  return device === "cuda" || (device !== "cpu" && gpu) ? "cuda" : "cpu";
}

/**
 * Resolves PHI3_VARIANT: a short name ("cuda", "cpu") or a folder of the repository; `auto` (or
 * unset) is the variant the GPU node will load with this PHI3_DEVICE on this machine.
 */
export function resolvePhi3Variant(
  value: string | undefined,
  gpu: boolean,
  device: string | undefined = "auto",
): string {
  if (value === undefined || value === "" || value === "auto") {
    return PHI3_VARIANTS[phi3VariantForDevice(device, gpu)];
  }
  if (value in PHI3_VARIANTS) return PHI3_VARIANTS[value as Phi3VariantName];
  if (!/^[\w.-]+(\/[\w.-]+)*$/.test(value) || value.split("/").includes("..")) {
    throw new Error(
      `PHI3_VARIANT must be "cuda", "cpu", "auto" or a folder of ${PHI3_REPO} such as "${PHI3_VARIANTS.cuda}"`,
    );
  }
  return value;
}

/** Checks a HERMES_QUANT value, e.g. "Q4_K_M", "Q5_K_M", "Q8_0". */
export function checkHermesQuant(value: string | undefined): string {
  const quant = value === undefined || value === "" ? DEFAULT_HERMES_QUANT : value;
  if (!/^[A-Za-z0-9_]+$/.test(quant)) {
    throw new Error("HERMES_QUANT must look like Q4_K_M (letters, digits and underscores)");
  }
  return quant.toUpperCase();
}
