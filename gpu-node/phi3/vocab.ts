/**
 * The tokenizer side of generation: the folder's chat template, prompt tokenization, and the
 * bytes each token id stands for (the same decoding xgrammar applies with "byte_fallback").
 */
import { Template } from "@huggingface/jinja";
import { Tokenizer } from "@huggingface/tokenizers";

interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
}

export interface Vocabulary {
  /** Token strings by id, as in tokenizer.json (with `▁` and `<0xXX>`), "" for unused ids. */
  readonly tokens: readonly string[];
  /** The bytes each id emits in generated text; undefined for special and padding ids. */
  readonly bytes: readonly (Uint8Array | undefined)[];
  /** Ids that are control tokens (never part of the JSON text). */
  readonly specialIds: ReadonlySet<number>;
  /** Whether the tokenizer prepends a space (`▁`) to the text it encodes. */
  readonly prependSpace: boolean;
}

const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;

/** Decodes one byte-fallback vocabulary entry the way xgrammar's "byte_fallback" type does. */
export function tokenBytes(token: string): Uint8Array {
  const byte = BYTE_TOKEN.exec(token);
  if (byte) return Uint8Array.of(Number.parseInt(byte[1] as string, 16));
  return new TextEncoder().encode(token.replaceAll("▁", " "));
}

export function buildVocabulary(
  tokenizerJson: Record<string, unknown>,
  logitsSize: number,
): Vocabulary {
  const model = tokenizerJson.model as {
    type?: string;
    vocab?: Record<string, number>;
    byte_fallback?: boolean;
  };
  if (model?.type !== "BPE" || typeof model.vocab !== "object" || model.vocab === null) {
    throw new Error("tokenizer.json: expected a BPE model with a vocabulary (Llama/Phi-3 style)");
  }
  if (model.byte_fallback !== true) {
    throw new Error("tokenizer.json: expected byte_fallback: true (Llama/Phi-3 style)");
  }
  const tokens: string[] = new Array(logitsSize).fill("");
  for (const [token, id] of Object.entries(model.vocab)) if (id < logitsSize) tokens[id] = token;
  const specialIds = new Set<number>();
  for (const added of (tokenizerJson.added_tokens ?? []) as AddedTokenJson[]) {
    if (added.id >= logitsSize) continue;
    tokens[added.id] = added.content;
    if (added.special !== false) specialIds.add(added.id);
  }
  const bytes = tokens.map((t, id) => (t === "" || specialIds.has(id) ? undefined : tokenBytes(t)));
  const normalizer = JSON.stringify(tokenizerJson.normalizer ?? null);
  return { tokens, bytes, specialIds, prependSpace: normalizer.includes('"Prepend"') };
}

export interface ChatFormatter {
  /** The prompt as the model expects it, e.g. `<|user|>\n{prompt}<|end|>\n<|assistant|>\n`. */
  format(prompt: string): string;
}

/** Renders the folder's `chat_template` (tokenizer_config.json) for one user turn. */
export function createChatFormatter(tokenizerConfig: Record<string, unknown>): ChatFormatter {
  const source = tokenizerConfig.chat_template;
  if (typeof source !== "string" || source.length === 0) {
    throw new Error("tokenizer_config.json has no chat_template");
  }
  const template = new Template(source);
  const tokenText = (value: unknown): string =>
    typeof value === "string"
      ? value
      : typeof value === "object" && value !== null && "content" in value
        ? String((value as { content: unknown }).content)
        : "";
  const bos = tokenText(tokenizerConfig.bos_token);
  const eos = tokenText(tokenizerConfig.eos_token);
  return {
    format: (prompt) =>
      template.render({
        messages: [{ role: "user", content: prompt }],
        add_generation_prompt: true,
        bos_token: bos,
        eos_token: eos,
      }),
  };
}

export interface PromptTokenizer {
  encode(text: string): number[];
  decode(ids: number[]): string;
}

export function createPromptTokenizer(
  tokenizerJson: Record<string, unknown>,
  tokenizerConfig: Record<string, unknown>,
): PromptTokenizer {
  const tokenizer = new Tokenizer(tokenizerJson, tokenizerConfig);
  const bos = tokenizerConfig.bos_token;
  const bosText = typeof bos === "string" ? bos : undefined;
  return {
    // A chat template that writes the BOS itself must not get a second one from the tokenizer.
    encode: (text) =>
      tokenizer.encode(text, {
        add_special_tokens: !(bosText !== undefined && bosText !== "" && text.startsWith(bosText)),
      }).ids,
    decode: (ids) => tokenizer.decode(ids, { skip_special_tokens: false }),
  };
}
