/**
 * Checks a GGUF file before llama.cpp sees it.
 *
 * llama.cpp aborts the whole process (GGML_ASSERT -> SIGABRT, which no try/catch stops) on some
 * broken files, e.g. a llama model without `feed_forward_length` or `attention.head_count`
 * (node-llama-cpp 3.22). Everything it needs is read here first with node-llama-cpp's own pure-JS GGUF
 * reader, and a bad file becomes an ordinary Error with a message that says what is wrong.
 */
import { stat } from "node:fs/promises";
import { type GgufFileInfo, readGgufFileInfo } from "node-llama-cpp";

export class ModelFileError extends Error {
  constructor(
    readonly path: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ModelFileError";
  }
}

export interface CheckedGguf {
  architecture: string;
  /** general.name when present. */
  name?: string;
  /** The context length the model was trained with. */
  trainedContextLength: number;
  /** KV-cache bytes one context token takes with llama.cpp's default f16 cache:
   * layers × KV heads × head size × 2 (K and V) × 2 bytes. */
  kvBytesPerToken: number;
  fileSize: number;
  info: GgufFileInfo;
}

/** Architecture keys without which llama.cpp fails (some cleanly, some with SIGABRT). */
const REQUIRED_ARCH_KEYS = [
  "context_length",
  "embedding_length",
  "block_count",
  "feed_forward_length",
  "attention.head_count",
  "attention.head_count_kv",
  "attention.layer_norm_rms_epsilon",
] as const;

/** [elements per block, bytes per block] of common ggml tensor types (ggml.c `type_traits`).
 * Unknown types are skipped by the size check rather than guessed. */
const GGML_TYPE_SIZES: Record<number, readonly [number, number]> = {
  0: [1, 4], // F32
  1: [1, 2], // F16
  2: [32, 18], // Q4_0
  3: [32, 20], // Q4_1
  6: [32, 22], // Q5_0
  7: [32, 24], // Q5_1
  8: [32, 34], // Q8_0
  10: [256, 84], // Q2_K
  11: [256, 110], // Q3_K
  12: [256, 144], // Q4_K
  13: [256, 176], // Q5_K
  14: [256, 210], // Q6_K
  15: [256, 292], // Q8_K
  20: [32, 18], // IQ4_NL
  23: [256, 136], // IQ4_XS
  24: [1, 1], // I8
  25: [1, 2], // I16
  26: [1, 4], // I32
  27: [1, 8], // I64
  28: [1, 8], // F64
  30: [1, 2], // BF16
};

function lookup(root: unknown, dotted: string): unknown {
  let node: unknown = root;
  for (const part of dotted.split(".")) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

const missingFileMessage = (path: string) =>
  `model file not found: ${path} (run \`npm run models:pull\`, or set the path to an existing GGUF file)`;

/**
 * Reads and validates a GGUF file's header, metadata and tensor table. Throws ModelFileError
 * with a precise message; never lets a file through that would crash llama.cpp on a missing key.
 */
export async function checkGgufFile(
  path: string,
  opts: { expectedArchitecture?: string; signal?: AbortSignal } = {},
): Promise<CheckedGguf> {
  let fileSize: number;
  try {
    const s = await stat(path);
    if (!s.isFile()) throw new ModelFileError(path, `model path is not a file: ${path}`);
    fileSize = s.size;
  } catch (err) {
    if (err instanceof ModelFileError) throw err;
    throw new ModelFileError(path, missingFileMessage(path), { cause: err });
  }

  let info: GgufFileInfo;
  try {
    info = await readGgufFileInfo(path, {
      sourceType: "filesystem",
      readTensorInfo: true,
      logWarnings: false,
      signal: opts.signal,
    });
  } catch (err) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    const why = err instanceof Error ? err.message : String(err);
    throw new ModelFileError(
      path,
      `not a readable GGUF file: ${path} (${why}); the file is broken, truncated or not GGUF — re-download it with \`npm run models:pull\``,
      { cause: err },
    );
  }

  const bad = (what: string) => new ModelFileError(path, `invalid GGUF model ${path}: ${what}`);
  const md = info.metadata as unknown;
  const architecture = lookup(md, "general.architecture");
  if (typeof architecture !== "string" || architecture === "") {
    throw bad("general.architecture is missing");
  }
  if (opts.expectedArchitecture && architecture !== opts.expectedArchitecture) {
    throw bad(`architecture is "${architecture}", expected "${opts.expectedArchitecture}"`);
  }

  const archMd = lookup(md, architecture);
  for (const key of REQUIRED_ARCH_KEYS) {
    const value = lookup(archMd, key);
    if (typeof value !== "number" && typeof value !== "bigint") {
      throw bad(`required key ${architecture}.${key} is missing`);
    }
    // Zero heads or layers trip divide-by-zero asserts in llama.cpp just like missing keys.
    if (key !== "attention.layer_norm_rms_epsilon" && !(Number(value) > 0)) {
      throw bad(`${architecture}.${key} must be positive, got ${value}`);
    }
  }
  const nEmbd = Number(lookup(archMd, "embedding_length"));
  const nHead = Number(lookup(archMd, "attention.head_count"));
  const nHeadKv = Number(lookup(archMd, "attention.head_count_kv"));
  if (nEmbd % nHead !== 0 || nHead % nHeadKv !== 0) {
    throw bad(
      `inconsistent attention shape (embedding ${nEmbd}, heads ${nHead}, kv heads ${nHeadKv})`,
    );
  }

  const tokenizerModel = lookup(md, "tokenizer.ggml.model");
  if (typeof tokenizerModel !== "string") throw bad("required key tokenizer.ggml.model is missing");
  const tokens = lookup(md, "tokenizer.ggml.tokens");
  if (!Array.isArray(tokens) || tokens.length === 0) {
    throw bad("required key tokenizer.ggml.tokens is missing or empty");
  }
  if (tokenizerModel === "gpt2" && !Array.isArray(lookup(md, "tokenizer.ggml.merges"))) {
    throw bad("a gpt2 tokenizer needs tokenizer.ggml.merges");
  }

  // A truncated download keeps its header; only the tensor table tells where the data must end.
  const tensors = info.tensorInfo ?? [];
  if (tensors.length === 0) throw bad("the file has no tensors");
  const dataStart = info.infoEndOffset ?? 0;
  let end = 0;
  for (const t of tensors) {
    const start = Number(t.offset);
    let tensorEnd = start + 1;
    const size = GGML_TYPE_SIZES[t.ggmlType];
    if (size) {
      const elements = t.dimensions.reduce<number>((a, d) => a * Number(d), 1);
      tensorEnd = start + Math.ceil(elements / size[0]) * size[1];
    }
    end = Math.max(end, tensorEnd);
  }
  if (dataStart + end > fileSize) {
    throw bad(
      `the file is truncated: its tensors need ${dataStart + end} bytes, the file has ${fileSize} — re-download it with \`npm run models:pull\``,
    );
  }

  const name = lookup(md, "general.name");
  const layers = Number(lookup(archMd, "block_count"));
  return {
    architecture,
    name: typeof name === "string" ? name : undefined,
    trainedContextLength: Number(lookup(archMd, "context_length")),
    kvBytesPerToken: layers * nHeadKv * (nEmbd / nHead) * 2 * 2,
    fileSize,
    info,
  };
}
