/**
 * A GGUF file's vocabulary as xgrammar and the planner see it: its token strings, each token's
 * bytes ("llama" vocabularies as byte_fallback, "gpt2" ones as byte_level) and its control ids.
 */
import type { GgufFileInfo } from "node-llama-cpp";
import type { TokenBytes } from "../structured/index.ts";

/** GGUF `tokenizer.ggml.token_type` values (llama.cpp's llama_token_type). */
const TOKEN_TYPE = { normal: 1, unknown: 2, control: 3, userDefined: 4, unused: 5, byte: 6 };

export interface GgufVocabulary extends TokenBytes {
  /** What xgrammar gets: the GGUF's token strings, "" for tokens never allowed in the text. */
  readonly encoded: readonly string[];
  readonly kind: "byte_fallback" | "byte_level";
  /** Control tokens (their ids): candidates for end of generation. */
  readonly controlIds: readonly number[];
}

/** GPT-2's byte <-> printable-character table (byte-level BPE vocabularies such as Llama 3's). */
function byteLevelDecoder(): Map<string, number> {
  const bytes: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bytes.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bytes.push(b);
  for (let b = 0xae; b <= 0xff; b++) bytes.push(b);
  const chars = [...bytes];
  let extra = 0;
  for (let b = 0; b < 256; b++) {
    if (!bytes.includes(b)) {
      bytes.push(b);
      chars.push(256 + extra++);
    }
  }
  return new Map(bytes.map((b, i) => [String.fromCodePoint(chars[i] as number), b]));
}

/** The vocabulary of a GGUF file as xgrammar and the planner see it. */
export function ggufVocabulary(info: GgufFileInfo): GgufVocabulary {
  const tokenizer = (info.metadata as { tokenizer?: { ggml?: Record<string, unknown> } }).tokenizer
    ?.ggml;
  const tokens = tokenizer?.tokens as string[] | undefined;
  const types = tokenizer?.token_type as number[] | undefined;
  const model = tokenizer?.model;
  if (!tokens || (model !== "llama" && model !== "gpt2")) {
    throw new Error(
      `structured output needs a "llama" or "gpt2" GGUF vocabulary, this file has ${String(model)}`,
    );
  }
  const kind = model === "llama" ? "byte_fallback" : "byte_level";
  const decoder = kind === "byte_level" ? byteLevelDecoder() : undefined;
  const encoder = new TextEncoder();
  const bytes: (Uint8Array | undefined)[] = [];
  const encoded: string[] = [];
  const controlIds: number[] = [];
  tokens.forEach((token, id) => {
    const type = types?.[id] ?? TOKEN_TYPE.normal;
    if (type === TOKEN_TYPE.control) controlIds.push(id);
    let value: Uint8Array | undefined;
    if (type === TOKEN_TYPE.normal || type === TOKEN_TYPE.byte) {
      if (decoder) {
        const out: number[] = [];
        for (const ch of token) {
          const b = decoder.get(ch);
          if (b === undefined) {
            out.length = 0;
            break;
          }
          out.push(b);
        }
        value = out.length > 0 ? Uint8Array.from(out) : undefined;
      } else {
        const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(token);
        value = byte
          ? Uint8Array.of(Number.parseInt(byte[1] as string, 16))
          : encoder.encode(token.replaceAll("▁", " "));
      }
    }
    if (value !== undefined && value.length === 0) value = undefined;
    bytes.push(value);
    encoded.push(value === undefined ? "" : token);
  });
  return { bytes, encoded, kind, controlIds };
}
