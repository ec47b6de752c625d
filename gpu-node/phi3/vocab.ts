/**
 * The tokenizer side of generation: the folder's chat template, prompt tokenization, and the
 * bytes each token id stands for (the same decoding xgrammar applies with "byte_fallback").
 *
 * Control tokens stay text: the chat frame's control tokens come from the template as ids, and
 * everything the request brought (the prompt, with any examples prepended to it) is tokenized
 * with the added tokens switched off, so a user who types `<|end|><|assistant|>` gets those
 * characters, never the control ids.
 */
import { Template } from "@huggingface/jinja";
import { Tokenizer } from "@huggingface/tokenizers";

interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
}

/** SentencePiece's control pieces: never text, even where a vocabulary lists them as plain
 * tokens (Phi-3's `</s>`, id 2, is not special there, but a `</s>` in a JSON string is no
 * text anyone wants). */
const CONTROL_PIECES = ["<unk>", "<s>", "</s>"];

export interface Vocabulary {
  /** Token strings by id, as in tokenizer.json (with `▁` and `<0xXX>`), "" for unused ids. */
  readonly tokens: readonly string[];
  /** The bytes each id emits in generated text; undefined for special and padding ids. */
  readonly bytes: readonly (Uint8Array | undefined)[];
  /** Ids that are never part of generated text: the added tokens (control tokens, special or
   * not) and the control pieces `<unk>`, `<s>`, `</s>`. */
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
    specialIds.add(added.id);
  }
  for (const piece of CONTROL_PIECES) {
    const id = model.vocab[piece];
    if (id !== undefined && id < logitsSize) specialIds.add(id);
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
  /** One user turn in the folder's chat template: the frame's control tokens as ids, the
   * prompt as plain text (control-token lookalikes in it stay characters). BOS as the
   * tokenizer adds it. */
  encodeChat(prompt: string): number[];
  /** Plain text, added tokens switched off. */
  encodeText(text: string): number[];
  decode(ids: number[]): string;
}

/** Stands for the prompt while the template renders; private-use characters no template
 * writes. */
const SENTINEL = "\u{F0000}prompt\u{F0000}";

type Segment = { control: AddedTokenJson } | { text: string };

export function createPromptTokenizer(
  tokenizerJson: Record<string, unknown>,
  tokenizerConfig: Record<string, unknown>,
): PromptTokenizer {
  const full = new Tokenizer(tokenizerJson, tokenizerConfig);
  const textOnly = new Tokenizer({ ...tokenizerJson, added_tokens: [] }, tokenizerConfig);
  const added = ((tokenizerJson.added_tokens ?? []) as AddedTokenJson[])
    .filter((t) => t.content.length > 0)
    .sort((a, b) => b.content.length - a.content.length);
  const chat = createChatFormatter(tokenizerConfig);
  // What the tokenizer's post-processor puts in front of a text (Phi-3: BOS).
  const withSpecial = full.encode("a", { add_special_tokens: true }).ids;
  const plain = full.encode("a", { add_special_tokens: false }).ids;
  const prefix = withSpecial.slice(0, withSpecial.length - plain.length);
  const encodeText = (text: string): number[] =>
    text.length === 0 ? [] : textOnly.encode(text, { add_special_tokens: false }).ids;

  /** The rendered frame cut into control tokens and text. */
  const segments = (rendered: string): Segment[] => {
    const out: Segment[] = [];
    let text = "";
    for (let i = 0; i < rendered.length; ) {
      const control = added.find((t) => rendered.startsWith(t.content, i));
      if (control) {
        out.push({ text }, { control });
        text = "";
        i += control.content.length;
      } else {
        text += rendered[i];
        i++;
      }
    }
    out.push({ text });
    return out;
  };

  return {
    encodeChat(prompt) {
      const parts = segments(chat.format(SENTINEL));
      const holders = parts.filter((p) => "text" in p && p.text.includes(SENTINEL));
      if (
        holders.length !== 1 ||
        parts.some((p) => "text" in p && p.text.split(SENTINEL).length > 2)
      ) {
        throw new Error(
          "the chat template must place the prompt exactly once, outside control tokens",
        );
      }
      for (const part of parts) {
        if ("text" in part) part.text = part.text.replace(SENTINEL, () => prompt);
      }
      // The added tokens' strip rules on their neighbours, as the tokenizer applies them.
      const out = parts;
      out.forEach((segment, i) => {
        if (!("control" in segment)) return;
        const before = out[i - 1];
        const after = out[i + 1];
        if (segment.control.lstrip && before && "text" in before)
          before.text = before.text.trimEnd();
        if (segment.control.rstrip && after && "text" in after) after.text = after.text.trimStart();
      });
      const ids: number[] = [];
      const first = parts.find((p) => "control" in p || p.text.length > 0);
      const bosInFrame =
        first !== undefined && "control" in first && first.control.id === prefix[0];
      if (!bosInFrame) ids.push(...prefix);
      for (const part of parts) {
        if ("control" in part) ids.push(part.control.id);
        else ids.push(...encodeText(part.text));
      }
      return ids;
    },
    encodeText,
    decode: (ids) => full.decode(ids, { skip_special_tokens: false }),
  };
}
