/**
 * One ONNX Runtime session over an onnxruntime-genai decoder export, and its KV cache contract:
 * feed `input_ids` + `attention_mask` (+ `position_ids` when the export has it) + the past K/V
 * of every layer; get `logits` and `present.N.key/value`, which become the next step's past.
 *
 * Two kinds of run: a prefill (one sequence, its whole prompt, zero-length past) and a decode
 * step (one new token for each row of a KvBatch). In a step, row b's attention-mask row has
 * `lengths[b] + 1` ones then zeros: the export derives GroupQueryAttention's `seqlens_k` and
 * `total_sequence_length` from it, and the op places and rotates each row's token by that
 * length, so rows of different lengths share one run.
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import * as ort from "onnxruntime-node";
import type { Logger } from "pino";
import type { DeviceChoice } from "../runtime.ts";
import { Phi3FolderError, type Phi3ModelConfig, PULL_HINT } from "./folder.ts";
import { KvBatch, type KvLayout, type KvType } from "./kv.ts";
import { cleanOrtDebugLog, missingCudaProviderFiles } from "./ort-process.ts";

export interface DecoderOptions {
  device: DeviceChoice;
  /** intraOpNumThreads; 0 = ONNX Runtime's default. */
  threads: number;
  logger?: Logger;
}

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
    cleanOrtDebugLog();
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

  get layout(): KvLayout {
    const { numLayers, numKvHeads, headSize, names } = this.config;
    const pastNames: string[] = [];
    for (let l = 0; l < numLayers; l++) pastNames.push(names.pastKey(l), names.pastValue(l));
    return { type: this.kvType, kvHeads: numKvHeads, headSize, names: pastNames };
  }

  /** Runs a whole prompt (one sequence, empty past); returns its last position's logits and
   * its cache as a one-row batch. */
  async prefill(ids: readonly number[]): Promise<{ logits: Float32Array; cache: KvBatch }> {
    const { names } = this.config;
    const n = ids.length;
    const feeds: Record<string, ort.Tensor> = {
      ...KvBatch.empty(this.layout, 1).feeds(),
      [names.inputIds]: new ort.Tensor("int64", BigInt64Array.from(ids, BigInt), [1, n]),
      [names.attentionMask]: new ort.Tensor("int64", new BigInt64Array(n).fill(1n), [1, n]),
    };
    if (names.positionIds) {
      feeds[names.positionIds] = new ort.Tensor(
        "int64",
        BigInt64Array.from(ids, (_, i) => BigInt(i)),
        [1, n],
      );
    }
    const out = await this.session.run(feeds);
    const cache = new KvBatch(this.layout, this.presents(out), [n]);
    const [logits] = this.lastLogits(out, 1);
    return { logits: logits as Float32Array, cache };
  }

  /** One decode step: `tokens[b]` after row b of `batch`. Updates the batch (its tensors become
   * the step's presents, each length grows by one) and returns each row's logits. */
  async step(batch: KvBatch, tokens: readonly number[]): Promise<Float32Array[]> {
    const { names } = this.config;
    const rows = batch.rows;
    if (tokens.length !== rows) throw new Error(`step: ${tokens.length} tokens for ${rows} rows`);
    const width = batch.width + 1;
    const mask = new BigInt64Array(rows * width);
    batch.lengths.forEach((length, row) => {
      mask.fill(1n, row * width, row * width + length + 1);
    });
    const feeds: Record<string, ort.Tensor> = {
      ...batch.feeds(),
      [names.inputIds]: new ort.Tensor("int64", BigInt64Array.from(tokens, BigInt), [rows, 1]),
      [names.attentionMask]: new ort.Tensor("int64", mask, [rows, width]),
    };
    if (names.positionIds) {
      feeds[names.positionIds] = new ort.Tensor(
        "int64",
        BigInt64Array.from(batch.lengths, BigInt),
        [rows, 1],
      );
    }
    const out = await this.session.run(feeds);
    for (const tensor of batch.tensors) tensor.dispose();
    batch.tensors = this.presents(out);
    batch.lengths = batch.lengths.map((length) => length + 1);
    return this.lastLogits(out, rows);
  }

  private presents(out: ort.InferenceSession.OnnxValueMapType): ort.Tensor[] {
    const { names, numLayers } = this.config;
    const tensors: ort.Tensor[] = [];
    for (let l = 0; l < numLayers; l++) {
      tensors.push(
        out[names.presentKey(l)] as ort.Tensor,
        out[names.presentValue(l)] as ort.Tensor,
      );
    }
    return tensors;
  }

  /** Each row's logits at its last position (float16 logits converted). */
  private lastLogits(out: ort.InferenceSession.OnnxValueMapType, rows: number): Float32Array[] {
    const logits = out[this.config.names.logits] as ort.Tensor;
    const vocab = logits.dims[logits.dims.length - 1] as number;
    const seq = logits.dims.length === 3 ? (logits.dims[1] as number) : 1;
    const result: Float32Array[] = [];
    for (let row = 0; row < rows; row++) {
      const start = (row * seq + seq - 1) * vocab;
      if (logits.type === "float16") {
        const half = (logits.data as Uint16Array).subarray(start, start + vocab);
        result.push(Float32Array.from(half, halfToFloat));
      } else {
        result.push((logits.data as Float32Array).slice(start, start + vocab));
      }
    }
    logits.dispose();
    return result;
  }

  release(): Promise<void> {
    return this.session.release();
  }
}
