/**
 * A tiny random-weight llama model in the Hermes-3 layout (ChatML control tokens and chat
 * template, a byte-fallback vocabulary), written with our GGUF writer.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
// mulberry32: a small, seedable PRNG, so a seed always gives byte-identical weights.
import { mulberry32 } from "../../phi3/sampler.ts";
import {
  encodeGguf,
  GGUF_ALIGNMENT,
  type GgufParts,
  type GgufTensor,
  type GgufValue,
  gv,
} from "./gguf-writer.ts";

export type { GgufParts } from "./gguf-writer.ts";

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
    ["general.alignment", gv.u32(GGUF_ALIGNMENT)],
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
