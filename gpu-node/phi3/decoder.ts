/**
 * One ONNX Runtime session over an onnxruntime-genai decoder export, and its KV cache contract:
 * feed `input_ids` + `attention_mask` (+ `position_ids` when the export has it) + the past K/V
 * of every layer; get `logits` and `present.N.key/value`, which become the next step's past.
 * The first past is a zero-length tensor, `[1, kvHeads, 0, headDim]` (onnxruntime-node accepts it).
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as ort from "onnxruntime-node";
import type { Logger } from "pino";
import type { DeviceChoice } from "../runtime.ts";
import { Phi3FolderError, type Phi3ModelConfig, PULL_HINT } from "./folder.ts";
import { missingCudaProviderFiles, removeOrtDebugLog } from "./ort-process.ts";

export interface KvCache {
  /** Tokens the cache holds. */
  length: number;
  past: Record<string, ort.Tensor>;
}

export interface DecoderOptions {
  device: DeviceChoice;
  /** intraOpNumThreads; 0 = ONNX Runtime's default. */
  threads: number;
  logger?: Logger;
}

type KvType = "float32" | "float16";

/** IEEE half -> float, for exports whose logits are float16 (the CUDA ones). */
function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * 2 ** -14 * (frac / 1024);
  if (exp === 31) return frac ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * 2 ** (exp - 15) * (1 + frac / 1024);
}

/** Where onnxruntime-node keeps its native libraries (the CUDA provider lands there when
 * installed with ONNXRUNTIME_NODE_INSTALL=cuda12). */
function cudaProviderInstalled(): boolean {
  try {
    const entry = createRequire(import.meta.url).resolve("onnxruntime-node");
    const bin = join(dirname(entry), "..", "bin", "napi-v6", process.platform, process.arch);
    return existsSync(join(bin, "libonnxruntime_providers_cuda.so"));
  } catch {
    return false;
  }
}

function missingFileError(config: Phi3ModelConfig, error: unknown): Error {
  const message = error instanceof Error ? error.message : String(error);
  const missing = /does not exist: "([^"]+)"|No such file or directory|open file/i.exec(message);
  if (missing) {
    const file = missing[1] ?? config.modelFile;
    return new Phi3FolderError(`Phi-3 model file not found: ${file} (${PULL_HINT})`, file);
  }
  return new Error(`ONNX Runtime could not load ${config.modelFile}: ${message}`, { cause: error });
}

export class OnnxDecoder {
  private constructor(
    private readonly session: ort.InferenceSession,
    private readonly config: Phi3ModelConfig,
    readonly device: { kind: "cuda" | "cpu"; name?: string },
    private readonly kvType: KvType,
  ) {}

  static async create(config: Phi3ModelConfig, options: DecoderOptions): Promise<OnnxDecoder> {
    const { logger } = options;
    const base: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: "all",
      interOpNumThreads: 1,
      logSeverityLevel: 3,
      ...(options.threads > 0 ? { intraOpNumThreads: options.threads } : {}),
    };
    let session: ort.InferenceSession | undefined;
    let kind: "cuda" | "cpu" = "cpu";
    const wantCuda =
      options.device === "cuda" || (options.device === "auto" && cudaProviderInstalled());
    const missingCuda = options.device === "cuda" ? missingCudaProviderFiles() : [];
    if (missingCuda.length > 0) {
      // Checked here: ONNX Runtime itself would print a red "Failed to load library" line first.
      throw new Error(
        `PHI3_DEVICE=cuda, but ONNX Runtime's CUDA execution provider is not installed (missing ${missingCuda.join(", ")}). ` +
          "Install onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=cuda12 on a machine with CUDA 12 and cuDNN 9, or set PHI3_DEVICE=cpu.",
      );
    }
    if (wantCuda) {
      try {
        session = await ort.InferenceSession.create(config.modelFile, {
          ...base,
          executionProviders: ["cuda"],
        });
        kind = "cuda";
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        if (/does not exist|No such file/i.test(reason) && !/libonnxruntime/.test(reason)) {
          throw missingFileError(config, error);
        }
        if (options.device === "cuda") {
          throw new Error(
            `PHI3_DEVICE=cuda, but ONNX Runtime's CUDA execution provider cannot be used: ${reason}. ` +
              "Install onnxruntime-node with ONNXRUNTIME_NODE_INSTALL=cuda12 on a machine with CUDA 12 and cuDNN 9, or set PHI3_DEVICE=cpu.",
            { cause: error },
          );
        }
        logger?.warn({ err: reason }, "Phi-3: CUDA execution provider unavailable, using CPU");
      }
    }
    if (!session) {
      try {
        session = await ort.InferenceSession.create(config.modelFile, {
          ...base,
          executionProviders: ["cpu"],
        });
      } catch (error) {
        throw missingFileError(config, error);
      }
    }
    removeOrtDebugLog();
    const meta = session.inputMetadata.find((m) => m.name === config.names.pastKey(0));
    const kvType = meta?.isTensor ? meta.type : undefined;
    if (kvType !== "float32" && kvType !== "float16") {
      await session.release();
      throw new Error(
        `${config.modelFile}: input ${config.names.pastKey(0)} is missing or not float32/float16 ` +
          `(inputs: ${session.inputNames.join(", ")}); genai_config.json does not match the model`,
      );
    }
    return new OnnxDecoder(session, config, { kind }, kvType);
  }

  emptyCache(): KvCache {
    const { numLayers, numKvHeads, headSize, names } = this.config;
    const dims = [1, numKvHeads, 0, headSize];
    const empty = () =>
      this.kvType === "float16"
        ? new ort.Tensor("float16", new Uint16Array(0), dims)
        : new ort.Tensor("float32", new Float32Array(0), dims);
    const past: Record<string, ort.Tensor> = {};
    for (let l = 0; l < numLayers; l++) {
      past[names.pastKey(l)] = empty();
      past[names.pastValue(l)] = empty();
    }
    return { length: 0, past };
  }

  /** Runs `ids` after what `cache` holds; updates the cache and returns the last position's
   * logits. */
  async forward(ids: readonly number[], cache: KvCache): Promise<Float32Array> {
    const { names, numLayers } = this.config;
    const total = cache.length + ids.length;
    const feeds: Record<string, ort.Tensor> = {
      ...cache.past,
      [names.inputIds]: new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [1, ids.length]),
      [names.attentionMask]: new ort.Tensor("int64", new BigInt64Array(total).fill(1n), [1, total]),
    };
    if (names.positionIds) {
      const positions = BigInt64Array.from(ids, (_, i) => BigInt(cache.length + i));
      feeds[names.positionIds] = new ort.Tensor("int64", positions, [1, ids.length]);
    }
    const out = await this.session.run(feeds);
    for (const tensor of Object.values(cache.past)) tensor.dispose();
    const past: Record<string, ort.Tensor> = {};
    for (let l = 0; l < numLayers; l++) {
      past[names.pastKey(l)] = out[names.presentKey(l)] as ort.Tensor;
      past[names.pastValue(l)] = out[names.presentValue(l)] as ort.Tensor;
    }
    cache.past = past;
    cache.length = total;
    const logits = out[names.logits] as ort.Tensor;
    const vocab = logits.dims[logits.dims.length - 1] as number;
    const seq = logits.dims.length === 3 ? (logits.dims[1] as number) : 1;
    let last: Float32Array;
    if (logits.type === "float16") {
      const half = (logits.data as Uint16Array).subarray((seq - 1) * vocab, seq * vocab);
      last = Float32Array.from(half, halfToFloat);
    } else {
      last = (logits.data as Float32Array).slice((seq - 1) * vocab, seq * vocab);
    }
    logits.dispose();
    return last;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
