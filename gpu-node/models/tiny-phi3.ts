/**
 * Writes a tiny, randomly weighted, Phi-3-shaped model folder, laid out like onnxruntime-genai's
 * export (genai_config.json, model.onnx + model.onnx.data, tokenizer.json, tokenizer_config.json,
 * special_tokens_map.json), so the Phi-3 runtime can be tested without downloading anything.
 *
 * What matches the real export: the file set, the I/O names and the KV-cache contract
 * (`input_ids`, `attention_mask`, `past_key_values.N.key/value` -> `logits`, `present.N.key/value`,
 * present = past ++ new along the sequence axis), a logits dimension padded past the tokenizer's
 * size, a Llama-style BPE tokenizer with byte fallback and Phi-3's special tokens (rstrip as
 * real), and Phi-3's chat template. What differs: 2 layers, hidden size 32, learned positions
 * instead of rotary ones, random weights.
 *
 * Deterministic: the same seed gives byte-identical files (seeded PRNG, stable JSON and protobuf
 * encoding). Written with onnx-proto 8.0.1 (IR 8, opset 14), see facts.md.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import onnxProto from "onnx-proto";
import { mulberry32 } from "../phi3/sampler.ts";

const { onnx } = onnxProto;
type INode = onnxProto.onnx.INodeProto;
type ITensor = onnxProto.onnx.ITensorProto;
type IValueInfo = onnxProto.onnx.IValueInfoProto;

export const TINY_PHI3_SHAPE = {
  layers: 2,
  hidden: 32,
  heads: 2,
  kvHeads: 2,
  headSize: 16,
  ffn: 64,
  contextLength: 1024,
} as const;

const MODEL_FILE = "model.onnx";
const DATA_FILE = "model.onnx.data";

/** Phi-3's added tokens, in the real order (ids 32000.. in the real vocabulary). */
const PHI3_ADDED = [
  { content: "<|endoftext|>", rstrip: false },
  { content: "<|assistant|>", rstrip: true },
  { content: "<|placeholder1|>", rstrip: true },
  { content: "<|placeholder2|>", rstrip: true },
  { content: "<|placeholder3|>", rstrip: true },
  { content: "<|placeholder4|>", rstrip: true },
  { content: "<|system|>", rstrip: true },
  { content: "<|end|>", rstrip: true },
  { content: "<|placeholder5|>", rstrip: true },
  { content: "<|placeholder6|>", rstrip: true },
  { content: "<|user|>", rstrip: true },
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

interface TinyTokenizer {
  json: object;
  /** Tokens in id order, model vocabulary then added tokens. */
  size: number;
  ids: Record<string, number>;
}

function buildTokenizer(): TinyTokenizer {
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
    ...["<unk>", "<s>", "</s>"].map((content, id) => ({ id, content, rstrip: false })),
    ...PHI3_ADDED.map((t, i) => ({ id: base + i, content: t.content, rstrip: t.rstrip })),
  ].map(({ id, content, rstrip }) => ({
    id,
    content,
    single_word: false,
    lstrip: false,
    rstrip,
    normalized: false,
    special: true,
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

// ---------------------------------------------------------------------------------------------
// The ONNX graph
// ---------------------------------------------------------------------------------------------

class GraphBuilder {
  readonly nodes: INode[] = [];
  readonly initializers: ITensor[] = [];
  private readonly chunks: Uint8Array[] = [];
  private offset = 0;
  private counter = 0;

  constructor(private readonly random: () => number) {}

  op(
    opType: string,
    inputs: string[],
    attributes: onnxProto.onnx.IAttributeProto[] = [],
    output?: string,
  ): string {
    const out = output ?? `${opType.toLowerCase()}_${this.counter++}`;
    this.nodes.push({
      opType,
      input: inputs,
      output: [out],
      name: `${opType}_${this.nodes.length}`,
      attribute: attributes,
    });
    return out;
  }

  /** An int64 constant stored inline, as the exporter does for small tensors. */
  ints(name: string, values: number[], dims: number[] = [values.length]): string {
    this.initializers.push({
      name,
      dataType: onnx.TensorProto.DataType.INT64,
      dims,
      rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer),
    });
    return name;
  }

  floats(name: string, values: number[], dims: number[] = [values.length]): string {
    this.initializers.push({
      name,
      dataType: onnx.TensorProto.DataType.FLOAT,
      dims,
      rawData: new Uint8Array(Float32Array.from(values).buffer),
    });
    return name;
  }

  /** A random weight stored in the external data file. */
  weight(name: string, dims: number[], scale: number): string {
    const count = dims.reduce((a, b) => a * b, 1);
    const data = new Float32Array(count);
    for (let i = 0; i < count; i++) data[i] = (this.random() * 2 - 1) * scale;
    return this.external(name, dims, data);
  }

  external(name: string, dims: number[], data: Float32Array): string {
    const bytes = new Uint8Array(data.buffer);
    this.initializers.push({
      name,
      dataType: onnx.TensorProto.DataType.FLOAT,
      dims,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: "location", value: DATA_FILE },
        { key: "offset", value: String(this.offset) },
        { key: "length", value: String(bytes.length) },
      ],
    });
    this.chunks.push(bytes);
    this.offset += bytes.length;
    const pad = (64 - (this.offset % 64)) % 64;
    if (pad > 0) {
      this.chunks.push(new Uint8Array(pad));
      this.offset += pad;
    }
    return name;
  }

  externalData(): Uint8Array {
    return Buffer.concat(this.chunks);
  }
}

const attrInts = (name: string, ints: number[]) => ({
  name,
  type: onnx.AttributeProto.AttributeType.INTS,
  ints,
});
const attrInt = (name: string, i: number) => ({
  name,
  type: onnx.AttributeProto.AttributeType.INT,
  i,
});

function tensorInfo(name: string, elemType: number, dims: (number | string)[]): IValueInfo {
  return {
    name,
    type: {
      tensorType: {
        elemType,
        shape: {
          dim: dims.map((d) => (typeof d === "number" ? { dimValue: d } : { dimParam: d })),
        },
      },
    },
  };
}

function buildGraph(
  g: GraphBuilder,
  vocabSize: number,
): { inputs: IValueInfo[]; outputs: IValueInfo[] } {
  const { layers, hidden, heads, kvHeads, headSize, ffn, contextLength } = TINY_PHI3_SHAPE;
  const F = onnx.TensorProto.DataType.FLOAT;
  const I64 = onnx.TensorProto.DataType.INT64;
  const inputs: IValueInfo[] = [
    tensorInfo("input_ids", I64, ["batch_size", "sequence_length"]),
    tensorInfo("attention_mask", I64, ["batch_size", "total_sequence_length"]),
  ];
  const outputs: IValueInfo[] = [
    tensorInfo("logits", F, ["batch_size", "sequence_length", vocabSize]),
  ];
  for (let l = 0; l < layers; l++) {
    for (const kind of ["key", "value"]) {
      inputs.push(
        tensorInfo(`past_key_values.${l}.${kind}`, F, [
          "batch_size",
          kvHeads,
          "past_sequence_length",
          headSize,
        ]),
      );
      outputs.push(
        tensorInfo(`present.${l}.${kind}`, F, [
          "batch_size",
          kvHeads,
          "total_sequence_length",
          headSize,
        ]),
      );
    }
  }

  const one = g.ints("one", [1], []);
  const zero = g.ints("zero", [0], []);
  const idx1 = g.ints("idx1", [1]);
  const idx1s = g.ints("idx1_scalar", [1], []);
  const axis1 = g.ints("axis1", [1], []);
  const big = g.ints("int64_max", [2 ** 53]);
  const axes1 = g.ints("axes_1", [1]);
  const axes12 = g.ints("axes_12", [1, 2]);
  const shapeQ = g.ints("shape_q", [0, 0, heads, headSize]);
  const shapeKv = g.ints("shape_kv", [0, 0, kvHeads, headSize]);
  const shapeH = g.ints("shape_h", [0, 0, heads * headSize]);
  const eps = g.floats("eps", [1e-5], []);
  const fzero = g.floats("fzero", [0], []);
  const negBig = g.floats("neg_big", [-1e9], []);
  const scale = g.floats("attn_scale", [1 / Math.sqrt(headSize)], []);

  const rmsNorm = (x: string, name: string): string => {
    const gain = g.external(name, [hidden], new Float32Array(hidden).fill(1));
    const ms = g.op(
      "ReduceMean",
      [g.op("Mul", [x, x])],
      [attrInts("axes", [-1]), attrInt("keepdims", 1)],
    );
    return g.op("Mul", [g.op("Div", [x, g.op("Sqrt", [g.op("Add", [ms, eps])])]), gain]);
  };

  const embed = g.weight("model.embed_tokens.weight", [vocabSize, hidden], 1);
  const posEmbed = g.weight("model.embed_positions.weight", [contextLength, hidden], 0.5);

  // Positions from the attention mask (as the real export derives them), last S of them.
  const seqLen = g.op("Gather", [g.op("Shape", ["input_ids"]), idx1]);
  const seqLenS = g.op("Gather", [g.op("Shape", ["input_ids"]), idx1s]);
  const totalS = g.op("Gather", [g.op("Shape", ["attention_mask"]), idx1s]);
  const posAll = g.op("Sub", [g.op("CumSum", ["attention_mask", axis1]), one]);
  const pos = g.op("Max", [g.op("Slice", [posAll, g.op("Neg", [seqLen]), big, axes1]), zero]);
  let x = g.op("Add", [g.op("Gather", [embed, "input_ids"]), g.op("Gather", [posEmbed, pos])]);

  // Attention bias: causal (query at past+i sees keys 0..past+i) and padding.
  const keyPos = g.op("Range", [zero, totalS, one]);
  const queryPos = g.op("Range", [g.op("Sub", [totalS, seqLenS]), totalS, one]);
  const causal = g.op("LessOrEqual", [keyPos, g.op("Unsqueeze", [queryPos, axes1])]);
  const padding = g.op("Unsqueeze", [
    g.op("Cast", ["attention_mask"], [attrInt("to", onnx.TensorProto.DataType.BOOL)]),
    axes12,
  ]);
  const bias = g.op("Where", [g.op("And", [causal, padding]), fzero, negBig]);

  const wScale = 1 / Math.sqrt(hidden);
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}`;
    const h = rmsNorm(x, `${p}.input_layernorm.weight`);
    const heads4 = (w: string, shape: string) =>
      g.op(
        "Transpose",
        [g.op("Reshape", [g.op("MatMul", [h, w]), shape])],
        [attrInts("perm", [0, 2, 1, 3])],
      );
    const q = heads4(
      g.weight(`${p}.attn.q_proj.weight`, [hidden, heads * headSize], wScale),
      shapeQ,
    );
    const k = heads4(
      g.weight(`${p}.attn.k_proj.weight`, [hidden, kvHeads * headSize], wScale),
      shapeKv,
    );
    const v = heads4(
      g.weight(`${p}.attn.v_proj.weight`, [hidden, kvHeads * headSize], wScale),
      shapeKv,
    );
    const presentK = g.op(
      "Concat",
      [`past_key_values.${l}.key`, k],
      [attrInt("axis", 2)],
      `present.${l}.key`,
    );
    const presentV = g.op(
      "Concat",
      [`past_key_values.${l}.value`, v],
      [attrInt("axis", 2)],
      `present.${l}.value`,
    );
    const scores = g.op("MatMul", [
      q,
      g.op("Transpose", [presentK], [attrInts("perm", [0, 1, 3, 2])]),
    ]);
    const probs = g.op(
      "Softmax",
      [g.op("Add", [g.op("Mul", [scores, scale]), bias])],
      [attrInt("axis", -1)],
    );
    const attn = g.op(
      "Transpose",
      [g.op("MatMul", [probs, presentV])],
      [attrInts("perm", [0, 2, 1, 3])],
    );
    const o = g.op("MatMul", [
      g.op("Reshape", [attn, shapeH]),
      g.weight(`${p}.attn.o_proj.weight`, [heads * headSize, hidden], wScale),
    ]);
    x = g.op("Add", [x, o]);
    const h2 = rmsNorm(x, `${p}.post_attention_layernorm.weight`);
    const up = g.op("MatMul", [h2, g.weight(`${p}.mlp.up_proj.weight`, [hidden, ffn], wScale)]);
    const act = g.op("Mul", [up, g.op("Sigmoid", [up])]);
    x = g.op("Add", [
      x,
      g.op("MatMul", [
        act,
        g.weight(`${p}.mlp.down_proj.weight`, [ffn, hidden], 1 / Math.sqrt(ffn)),
      ]),
    ]);
  }
  const final = rmsNorm(x, "model.norm.weight");
  g.op(
    "MatMul",
    [final, g.weight("lm_head.weight", [hidden, vocabSize], 3 * wScale)],
    [],
    "logits",
  );
  return { inputs, outputs };
}

/** Writes the tiny model folder into `dir` (created if missing). */
export async function writeTinyPhi3(dir: string, opts: { seed: number }): Promise<void> {
  const tokenizer = buildTokenizer();
  // The real export pads the logits past the tokenizer (32,064 vs 32,011): do the same.
  const vocabSize = Math.ceil(tokenizer.size / 64) * 64;
  const g = new GraphBuilder(mulberry32(opts.seed));
  const { inputs, outputs } = buildGraph(g, vocabSize);
  const model = onnx.ModelProto.fromObject({
    irVersion: 8,
    producerName: "llm-sidecar tiny-phi3",
    producerVersion: "1",
    opsetImport: [{ domain: "", version: 14 }],
    graph: {
      name: "tiny_phi3",
      node: g.nodes,
      initializer: g.initializers,
      input: inputs,
      output: outputs,
    },
  });
  const problem = onnx.ModelProto.verify(model);
  if (problem) throw new Error(`tiny Phi-3 ONNX model is malformed: ${problem}`);

  const id = (t: string): number => {
    const v = tokenizer.ids[t];
    if (v === undefined) throw new Error(`tiny tokenizer lacks ${t}`);
    return v;
  };
  const { layers, hidden, heads, kvHeads, headSize, contextLength } = TINY_PHI3_SHAPE;
  const genaiConfig = {
    model: {
      bos_token_id: id("<s>"),
      context_length: contextLength,
      decoder: {
        session_options: { log_id: "onnxruntime-genai", provider_options: [] },
        filename: MODEL_FILE,
        head_size: headSize,
        hidden_size: hidden,
        inputs: {
          input_ids: "input_ids",
          attention_mask: "attention_mask",
          past_key_names: "past_key_values.%d.key",
          past_value_names: "past_key_values.%d.value",
        },
        outputs: {
          logits: "logits",
          present_key_names: "present.%d.key",
          present_value_names: "present.%d.value",
        },
        num_attention_heads: heads,
        num_hidden_layers: layers,
        num_key_value_heads: kvHeads,
      },
      eos_token_id: [id("<|end|>"), id("<|assistant|>"), id("<|endoftext|>")],
      pad_token_id: id("<|endoftext|>"),
      type: "phi3",
      vocab_size: vocabSize,
    },
    search: {
      diversity_penalty: 0,
      do_sample: false,
      early_stopping: true,
      length_penalty: 1,
      max_length: contextLength,
      min_length: 0,
      no_repeat_ngram_size: 0,
      num_beams: 1,
      num_return_sequences: 1,
      past_present_share_buffer: false,
      repetition_penalty: 1,
      temperature: 1,
      top_k: 1,
      top_p: 1,
    },
  };
  const special = (content: string) => ({
    content,
    lstrip: false,
    normalized: false,
    rstrip: false,
    single_word: false,
  });
  const tokenizerConfig = {
    add_bos_token: true,
    add_eos_token: false,
    bos_token: "<s>",
    chat_template: PHI3_CHAT_TEMPLATE,
    clean_up_tokenization_spaces: false,
    eos_token: "<|endoftext|>",
    legacy: false,
    model_max_length: contextLength,
    pad_token: "<|endoftext|>",
    padding_side: "left",
    sp_model_kwargs: {},
    tokenizer_class: "LlamaTokenizer",
    unk_token: "<unk>",
    use_default_system_prompt: false,
  };
  const specialTokensMap = {
    bos_token: special("<s>"),
    eos_token: special("<|endoftext|>"),
    pad_token: special("<|endoftext|>"),
    unk_token: special("<unk>"),
  };

  await mkdir(dir, { recursive: true });
  const json = (value: unknown) => `${JSON.stringify(value, null, 2)}\n`;
  await writeFile(join(dir, MODEL_FILE), onnx.ModelProto.encode(model).finish());
  await writeFile(join(dir, DATA_FILE), g.externalData());
  await writeFile(join(dir, "genai_config.json"), json(genaiConfig));
  await writeFile(join(dir, "tokenizer.json"), json(tokenizer.json));
  await writeFile(join(dir, "tokenizer_config.json"), json(tokenizerConfig));
  await writeFile(join(dir, "special_tokens_map.json"), json(specialTokensMap));
}
