/**
 * A GGUF v3 writer and a tiny random-weight Hermes-like model built with it.
 *
 * Hand-written because no npm package writes complete GGUF files (@huggingface/gguf 0.4.6 writes
 * metadata only). Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
 * Only what our tiny models need: little-endian, F32 tensors, scalar/string/array metadata.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
// mulberry32: a small, seedable PRNG, so a seed always gives byte-identical weights.
import { mulberry32 } from "../phi3/sampler.ts";

/** GGUF metadata value types (gguf.md, `gguf_metadata_value_type`). */
const T = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;
type ScalarType = Exclude<keyof typeof T, "array">;

export type GgufValue =
  | { type: ScalarType; value: number | bigint | boolean | string }
  | {
      type: "array";
      itemType: ScalarType;
      values: ReadonlyArray<number | bigint | boolean | string>;
    };

export const gv = {
  u32: (value: number): GgufValue => ({ type: "u32", value }),
  i32: (value: number): GgufValue => ({ type: "i32", value }),
  f32: (value: number): GgufValue => ({ type: "f32", value }),
  bool: (value: boolean): GgufValue => ({ type: "bool", value }),
  str: (value: string): GgufValue => ({ type: "string", value }),
  arr: (
    itemType: ScalarType,
    values: ReadonlyArray<number | bigint | boolean | string>,
  ): GgufValue => ({
    type: "array",
    itemType,
    values,
  }),
};

export interface GgufTensor {
  name: string;
  /** ggml order: the fastest-varying dimension first (e.g. [n_embd, n_vocab] for token_embd). */
  dims: readonly number[];
  /** F32 data, product(dims) values. */
  data: Float32Array;
}

const GGML_TYPE_F32 = 0;
const ALIGNMENT = 32;

/** A growable little-endian byte buffer. */
class ByteWriter {
  private buf = Buffer.alloc(1 << 16);
  length = 0;

  private ensure(extra: number): void {
    if (this.length + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + extra) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf.writeUInt8(v, this.length);
    this.length += 1;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v, this.length);
    this.length += 4;
  }
  u64(v: number | bigint): void {
    this.ensure(8);
    this.buf.writeBigUInt64LE(BigInt(v), this.length);
    this.length += 8;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  string(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.bytes(b);
  }
  padTo(alignment: number): void {
    while (this.length % alignment !== 0) this.u8(0);
  }
  scalar(type: ScalarType, v: number | bigint | boolean | string): void {
    this.ensure(8);
    const at = this.length;
    switch (type) {
      case "u8":
        this.buf.writeUInt8(Number(v), at);
        this.length += 1;
        return;
      case "i8":
        this.buf.writeInt8(Number(v), at);
        this.length += 1;
        return;
      case "u16":
        this.buf.writeUInt16LE(Number(v), at);
        this.length += 2;
        return;
      case "i16":
        this.buf.writeInt16LE(Number(v), at);
        this.length += 2;
        return;
      case "u32":
        this.buf.writeUInt32LE(Number(v), at);
        this.length += 4;
        return;
      case "i32":
        this.buf.writeInt32LE(Number(v), at);
        this.length += 4;
        return;
      case "f32":
        this.buf.writeFloatLE(Number(v), at);
        this.length += 4;
        return;
      case "bool":
        this.buf.writeUInt8(v ? 1 : 0, at);
        this.length += 1;
        return;
      case "u64":
        this.buf.writeBigUInt64LE(BigInt(v), at);
        this.length += 8;
        return;
      case "i64":
        this.buf.writeBigInt64LE(BigInt(v), at);
        this.length += 8;
        return;
      case "f64":
        this.buf.writeDoubleLE(Number(v), at);
        this.length += 8;
        return;
      case "string":
        this.string(String(v));
        return;
    }
  }
  result(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

/** Serializes a complete GGUF v3 file (header, metadata, tensor infos, aligned F32 data). */
export function encodeGguf(
  metadata: ReadonlyArray<readonly [string, GgufValue]>,
  tensors: readonly GgufTensor[],
): Buffer {
  const w = new ByteWriter();
  w.bytes(Buffer.from("GGUF", "ascii"));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(metadata.length);
  for (const [key, value] of metadata) {
    w.string(key);
    w.u32(T[value.type]);
    if (value.type === "array") {
      w.u32(T[value.itemType]);
      w.u64(value.values.length);
      for (const item of value.values) w.scalar(value.itemType, item);
    } else {
      w.scalar(value.type, value.value);
    }
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    const count = t.dims.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new Error(
        `tensor ${t.name}: dims ${t.dims.join("x")} need ${count} values, got ${t.data.length}`,
      );
    }
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(GGML_TYPE_F32);
    w.u64(offset);
    offsets.push(offset);
    offset += Math.ceil((count * 4) / ALIGNMENT) * ALIGNMENT;
  }
  w.padTo(ALIGNMENT);
  const dataStart = w.length;
  tensors.forEach((t, i) => {
    while (w.length < dataStart + (offsets[i] ?? 0)) w.u8(0);
    w.bytes(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  });
  w.padTo(ALIGNMENT);
  return w.result();
}

/** ChatML, as in Hermes-3's tokenizer_config.json; node-llama-cpp recognizes it and uses its
 * ChatML wrapper. */
export const CHATML_TEMPLATE =
  "{{bos_token}}{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

export interface TinyHermesShape {
  nEmbd: number;
  nLayers: number;
  nHead: number;
  nHeadKv: number;
  nFf: number;
  contextLength: number;
}

export const TINY_HERMES_SHAPE: TinyHermesShape = {
  nEmbd: 64,
  nLayers: 2,
  nHead: 4,
  nHeadKv: 2,
  nFf: 128,
  contextLength: 131_072, // Hermes-3-Llama-3.1-8B's: the default HERMES_CTX fits as on the real model
};

// llama.cpp token types (llama_token_type).
const NORMAL = 1;
const UNKNOWN = 2;
const CONTROL = 3;
const BYTE = 6;

/** A SentencePiece-style ("llama") vocabulary with byte fallback and ChatML control tokens. */
export function tinyLlamaVocab(): { tokens: string[]; scores: number[]; types: number[] } {
  const tokens: string[] = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"];
  const types: number[] = [UNKNOWN, CONTROL, CONTROL, CONTROL, CONTROL];
  for (let b = 0; b < 256; b++) {
    tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    types.push(BYTE);
  }
  const pieces = new Set<string>(["▁"]);
  const chars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,:;!?'\"-()%$";
  for (const c of chars) pieces.add(c);
  for (const c of chars) pieces.add(`▁${c}`);
  const words = [
    "the a an to of and in is for on with as it be this that are by stop target risk trade long",
    "short price market buy sell hold position confidence proposal system user assistant you your",
    "I we not good bad high low up down loss profit stock ticker adjust pass abort hello world",
  ]
    .join(" ")
    .split(" ");
  // llama.cpp's SentencePiece tokenizer merges adjacent pieces only into pieces that exist, so
  // every prefix of a word must exist for the whole word to become one token.
  for (const word of words) {
    for (let end = 2; end <= word.length; end++) {
      pieces.add(`▁${word.slice(0, end)}`);
      pieces.add(word.slice(0, end));
    }
  }
  const normal = [...pieces];
  const scores: number[] = tokens.map(() => 0);
  normal.forEach((piece, i) => {
    tokens.push(piece);
    types.push(NORMAL);
    // SentencePiece merges by score: longer pieces first, then insertion order.
    scores.push(piece.length * 10 - i / 1000);
  });
  return { tokens, scores, types };
}

export interface GgufParts {
  metadata: Array<readonly [string, GgufValue]>;
  tensors: GgufTensor[];
}

/** The tiny Hermes model, encoded. */
export function tinyHermesGguf(
  opts: { seed: number; name?: string },
  shape: TinyHermesShape = TINY_HERMES_SHAPE,
): Buffer {
  const { metadata, tensors } = tinyHermesParts(opts, shape);
  return encodeGguf(metadata, tensors);
}

/** A tiny random-weight llama model in the Hermes-3 layout (ChatML, eos = <|im_end|>), as parts
 * that tests can alter before encoding. */
export function tinyHermesParts(
  opts: { seed: number; name?: string },
  shape: TinyHermesShape = TINY_HERMES_SHAPE,
): GgufParts {
  const rand = mulberry32(opts.seed);
  const vocab = tinyLlamaVocab();
  const nVocab = vocab.tokens.length;
  const headDim = shape.nEmbd / shape.nHead;
  const nEmbdKv = headDim * shape.nHeadKv;
  const special = new Set(
    vocab.types.flatMap((t, i) => (t === CONTROL || t === UNKNOWN ? [i] : [])),
  );

  const random = (n: number, scale: number): Float32Array => {
    const a = new Float32Array(n);
    for (let i = 0; i < n; i++) a[i] = (rand() * 2 - 1) * scale;
    return a;
  };
  const ones = (n: number) => new Float32Array(n).fill(1);
  const output = random(shape.nEmbd * nVocab, 0.5);
  // Zero logits for control tokens: random weights would otherwise emit <|im_start|> or end the
  // turn at arbitrary points; ordinary tokens then dominate and max_tokens governs the length.
  for (const id of special) output.fill(0, id * shape.nEmbd, (id + 1) * shape.nEmbd);

  const tensors: GgufTensor[] = [
    {
      name: "token_embd.weight",
      dims: [shape.nEmbd, nVocab],
      data: random(shape.nEmbd * nVocab, 1),
    },
    { name: "output_norm.weight", dims: [shape.nEmbd], data: ones(shape.nEmbd) },
    { name: "output.weight", dims: [shape.nEmbd, nVocab], data: output },
  ];
  const s = 1 / Math.sqrt(shape.nEmbd);
  for (let l = 0; l < shape.nLayers; l++) {
    const p = `blk.${l}.`;
    tensors.push(
      { name: `${p}attn_norm.weight`, dims: [shape.nEmbd], data: ones(shape.nEmbd) },
      {
        name: `${p}attn_q.weight`,
        dims: [shape.nEmbd, shape.nEmbd],
        data: random(shape.nEmbd ** 2, s),
      },
      {
        name: `${p}attn_k.weight`,
        dims: [shape.nEmbd, nEmbdKv],
        data: random(shape.nEmbd * nEmbdKv, s),
      },
      {
        name: `${p}attn_v.weight`,
        dims: [shape.nEmbd, nEmbdKv],
        data: random(shape.nEmbd * nEmbdKv, s),
      },
      {
        name: `${p}attn_output.weight`,
        dims: [shape.nEmbd, shape.nEmbd],
        data: random(shape.nEmbd ** 2, s),
      },
      { name: `${p}ffn_norm.weight`, dims: [shape.nEmbd], data: ones(shape.nEmbd) },
      {
        name: `${p}ffn_gate.weight`,
        dims: [shape.nEmbd, shape.nFf],
        data: random(shape.nEmbd * shape.nFf, s),
      },
      {
        name: `${p}ffn_up.weight`,
        dims: [shape.nEmbd, shape.nFf],
        data: random(shape.nEmbd * shape.nFf, s),
      },
      {
        name: `${p}ffn_down.weight`,
        dims: [shape.nFf, shape.nEmbd],
        data: random(shape.nEmbd * shape.nFf, s),
      },
    );
  }

  const metadata: Array<readonly [string, GgufValue]> = [
    ["general.architecture", gv.str("llama")],
    ["general.name", gv.str(opts.name ?? "hermes-tiny")],
    ["general.alignment", gv.u32(ALIGNMENT)],
    ["general.file_type", gv.u32(0)],
    ["llama.context_length", gv.u32(shape.contextLength)],
    ["llama.embedding_length", gv.u32(shape.nEmbd)],
    ["llama.block_count", gv.u32(shape.nLayers)],
    ["llama.feed_forward_length", gv.u32(shape.nFf)],
    ["llama.attention.head_count", gv.u32(shape.nHead)],
    ["llama.attention.head_count_kv", gv.u32(shape.nHeadKv)],
    ["llama.attention.layer_norm_rms_epsilon", gv.f32(1e-5)],
    ["llama.rope.dimension_count", gv.u32(headDim)],
    ["llama.rope.freq_base", gv.f32(10000)],
    ["llama.vocab_size", gv.u32(nVocab)],
    ["tokenizer.ggml.model", gv.str("llama")],
    ["tokenizer.ggml.tokens", gv.arr("string", vocab.tokens)],
    ["tokenizer.ggml.scores", gv.arr("f32", vocab.scores)],
    ["tokenizer.ggml.token_type", gv.arr("i32", vocab.types)],
    ["tokenizer.ggml.bos_token_id", gv.u32(1)],
    ["tokenizer.ggml.eos_token_id", gv.u32(vocab.tokens.indexOf("<|im_end|>"))],
    ["tokenizer.ggml.unknown_token_id", gv.u32(0)],
    ["tokenizer.ggml.padding_token_id", gv.u32(0)],
    ["tokenizer.ggml.add_bos_token", gv.bool(true)],
    ["tokenizer.ggml.add_eos_token", gv.bool(false)],
    ["tokenizer.chat_template", gv.str(CHATML_TEMPLATE)],
  ];
  return { metadata, tensors };
}

/** Writes the tiny Hermes model; the same seed always gives the same bytes. */
export async function writeTinyHermes(path: string, opts: { seed: number }): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, tinyHermesGguf(opts));
}
