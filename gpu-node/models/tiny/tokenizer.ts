/**
 * The tiny Phi-3's tokenizer.json: a Llama-style BPE with byte fallback (`<0x00>`..`<0xFF>`,
 * printable ASCII, merges for JSON pieces, keys and a few words) and Phi-3's added tokens in the
 * real order with the real flags: only `<|assistant|>` and the placeholders have `rstrip`
 * (`<|system|>`, `<|end|>`, `<|user|>` keep the newline after them), and `</s>` (id 2) is a
 * plain, non-special token. Plus Phi-3-mini's chat template.
 */

/** Phi-3's added tokens, in the real order (ids 32000.. in the real vocabulary). */
const PHI3_ADDED = [
  { content: "<|endoftext|>", rstrip: false },
  { content: "<|assistant|>", rstrip: true },
  { content: "<|placeholder1|>", rstrip: true },
  { content: "<|placeholder2|>", rstrip: true },
  { content: "<|placeholder3|>", rstrip: true },
  { content: "<|placeholder4|>", rstrip: true },
  { content: "<|system|>", rstrip: false },
  { content: "<|end|>", rstrip: false },
  { content: "<|placeholder5|>", rstrip: true },
  { content: "<|placeholder6|>", rstrip: true },
  { content: "<|user|>", rstrip: false },
] as const;

/** Phi-3-mini-4k-instruct's chat template. */
export const PHI3_CHAT_TEMPLATE =
  "{% for message in messages %}{% if message['role'] == 'system' %}{{'<|system|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'user' %}{{'<|user|>\n' + message['content'] + '<|end|>\n'}}{% elif message['role'] == 'assistant' %}{{'<|assistant|>\n' + message['content'] + '<|end|>\n'}}{% endif %}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% else %}{{ eos_token }}{% endif %}";

/** Multi-character pieces the tiny BPE learns (JSON scaffolding, keys, values, common words). */
const PIECES = [
  '{"',
  '":',
  '",',
  '"}',
  '▁"',
  "ticker",
  "action",
  "side",
  "new",
  "_stop",
  "_target",
  "_pct",
  "confidence",
  "rationale",
  "pass",
  "adjust",
  "abort",
  "LONG",
  "SHORT",
  "null",
  "▁null",
  "AAPL",
  "MSFT",
  "▁{",
  "▁0",
  "▁1",
  "0.",
  "00",
  ".5",
  "▁the",
  "▁to",
  "▁and",
  "▁stock",
  "▁price",
  "▁stop",
  "▁target",
  "▁risk",
  "▁is",
  "▁a",
  "▁trade",
  "▁market",
];

export interface TinyTokenizer {
  json: object;
  /** Tokens in id order, model vocabulary then added tokens. */
  size: number;
  ids: Record<string, number>;
}

export function buildTinyTokenizer(): TinyTokenizer {
  const vocab: Record<string, number> = {};
  const add = (token: string): void => {
    if (!(token in vocab)) vocab[token] = Object.keys(vocab).length;
  };
  for (const t of ["<unk>", "<s>", "</s>"]) add(t);
  for (let b = 0; b < 256; b++) add(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
  add("▁");
  for (let c = 0x21; c <= 0x7e; c++) add(String.fromCharCode(c));
  const merges: string[] = [];
  const seen = new Set<string>();
  for (const piece of PIECES) {
    const chars = [...piece];
    let left = chars[0] ?? "";
    for (const ch of chars.slice(1)) {
      const merge = `${left} ${ch}`;
      left += ch;
      if (!seen.has(merge)) {
        seen.add(merge);
        merges.push(merge);
      }
      add(left);
    }
  }
  const base = Object.keys(vocab).length;
  const added = [
    { id: 0, content: "<unk>", rstrip: false, special: true },
    { id: 1, content: "<s>", rstrip: false, special: true },
    // As in the real vocabulary: `</s>` is a plain (non-special) token there.
    { id: 2, content: "</s>", rstrip: false, special: false },
    ...PHI3_ADDED.map((t, i) => ({
      id: base + i,
      content: t.content,
      rstrip: t.rstrip,
      special: true,
    })),
  ].map(({ id, content, rstrip, special }) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip,
    normalized: false,
    special,
  }));
  const ids: Record<string, number> = { ...vocab };
  for (const t of added) ids[t.content] = t.id;
  const json = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: {
      type: "Sequence",
      normalizers: [
        { type: "Prepend", prepend: "▁" },
        { type: "Replace", pattern: { String: " " }, content: "▁" },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: "<s>", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "<s>", type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: "▁" }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<unk>",
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      vocab,
      merges,
    },
  };
  return { json, size: base + PHI3_ADDED.length, ids };
}
