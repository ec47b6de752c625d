/**
 * The tiny Phi-3 decoder graph, built with the ops of Microsoft's Phi-3 ONNX exports
 * (onnxruntime-genai's model builder, int4):
 *
 * - attention is `com.microsoft` `GroupQueryAttention` on a packed QKV projection, rotary inside
 *   (`do_rotary`, cos/sin caches of `context_length × head_size/2`), `seqlens_k` =
 *   `ReduceSum(attention_mask) - 1` and `total_sequence_length` = the mask's width, both int32,
 *   derived in the graph from `attention_mask` as the export does. So the op's own rules apply:
 *   each row's tokens are the last of its `seqlens_k + 1`, its cache is left-aligned in
 *   `past_key_values.N.*` (longer rows' tails are padding), and `present.N.*` is past ++ new.
 * - every projection (QKV, O, gate/up, down, LM head) is `com.microsoft` `MatMulNBits`: 4-bit
 *   weights in blocks of 32 along K, a float scale per block, no zero points (8), accuracy
 *   level 4 (the CPU export's `acc-level-4`).
 *
 * What differs from the real model: 2 layers, hidden 32, random weights, RMS norm from plain ops
 * (the export fuses it into SimplifiedLayerNormalization), an unquantized embedding.
 */
import { attr, DataType, type GraphBuilder, type IValueInfo, tensorInfo } from "./onnx-graph.ts";

export const TINY_PHI3_SHAPE = {
  layers: 2,
  hidden: 32,
  heads: 2,
  kvHeads: 2,
  headSize: 16,
  ffn: 64,
  contextLength: 1024,
} as const;

const MS = "com.microsoft";
const BLOCK = 32;

/** Quantizes a random N × K weight (row n holds output n's K inputs, as MatMulNBits wants it)
 * to 4-bit blocks: (N, K/32, 16) bytes, low nibble first, and (N · K/32) scales. */
function quantizedWeight(
  random: () => number,
  n: number,
  k: number,
  scale: number,
): { packed: Uint8Array; scales: Float32Array } {
  const blocks = Math.ceil(k / BLOCK);
  const packed = new Uint8Array(n * blocks * (BLOCK / 2));
  const scales = new Float32Array(n * blocks);
  const w = new Float32Array(BLOCK);
  for (let row = 0; row < n; row++) {
    for (let b = 0; b < blocks; b++) {
      let max = 0;
      for (let i = 0; i < BLOCK; i++) {
        w[i] = b * BLOCK + i < k ? (random() * 2 - 1) * scale : 0;
        max = Math.max(max, Math.abs(w[i] as number));
      }
      const s = max > 0 ? max / 7 : 1;
      scales[row * blocks + b] = s;
      const base = (row * blocks + b) * (BLOCK / 2);
      for (let i = 0; i < BLOCK; i += 2) {
        const q = (x: number) => Math.min(15, Math.max(0, Math.round(x / s) + 8));
        packed[base + i / 2] = q(w[i] as number) | (q(w[i + 1] as number) << 4);
      }
    }
  }
  return { packed, scales };
}

/** Builds the graph into `g`; returns its declared inputs and outputs. */
export function buildTinyPhi3Graph(
  g: GraphBuilder,
  random: () => number,
  vocabSize: number,
): { inputs: IValueInfo[]; outputs: IValueInfo[] } {
  const { layers, hidden, heads, kvHeads, headSize, ffn, contextLength } = TINY_PHI3_SHAPE;
  const F = DataType.FLOAT;
  const I64 = DataType.INT64;
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

  const linear = (x: string, name: string, k: number, n: number, scale: number, out?: string) => {
    const { packed, scales } = quantizedWeight(random, n, k, scale);
    const blocks = Math.ceil(k / BLOCK);
    const weight = g.external(`${name}.qweight`, [n, blocks, BLOCK / 2], packed);
    const s = g.external(`${name}.scales`, [n * blocks], scales);
    return g.op(
      "MatMulNBits",
      [x, weight, s],
      [
        attr.int("K", k),
        attr.int("N", n),
        attr.int("bits", 4),
        attr.int("block_size", BLOCK),
        attr.int("accuracy_level", 4),
      ],
      out,
      MS,
    );
  };

  const eps = g.floats("eps", [1e-5], []);
  const rmsNorm = (x: string, name: string): string => {
    const gain = g.external(name, [hidden], new Float32Array(hidden).fill(1));
    const ms = g.op(
      "ReduceMean",
      [g.op("Mul", [x, x])],
      [attr.ints("axes", [-1]), attr.int("keepdims", 1)],
    );
    return g.op("Mul", [g.op("Div", [x, g.op("Sqrt", [g.op("Add", [ms, eps])])]), gain]);
  };

  // attention_mask -> seqlens_k (int32, per row: its length - 1) and total_sequence_length
  // (int32 scalar: the mask's width), as the export's attention-mask subgraph computes them.
  const one = g.ints("one", [1], []);
  const seqlensK = g.op(
    "Cast",
    [
      g.op("Sub", [
        g.op("ReduceSum", ["attention_mask", g.ints("axes_1", [1])], [attr.int("keepdims", 0)]),
        one,
      ]),
    ],
    [attr.int("to", DataType.INT32)],
    "seqlens_k",
  );
  const totalLength = g.op(
    "Cast",
    [g.op("Gather", [g.op("Shape", ["attention_mask"]), g.ints("idx1", [1], [])])],
    [attr.int("to", DataType.INT32)],
    "total_seq_len",
  );

  // Rotary caches: position p, frequency i -> cos/sin(p · 10000^(-2i/head_size)).
  const half = headSize / 2;
  const cos = new Float32Array(contextLength * half);
  const sin = new Float32Array(contextLength * half);
  for (let p = 0; p < contextLength; p++) {
    for (let i = 0; i < half; i++) {
      const angle = p * 10000 ** ((-2 * i) / headSize);
      cos[p * half + i] = Math.cos(angle);
      sin[p * half + i] = Math.sin(angle);
    }
  }
  const cosCache = g.external("cos_cache", [contextLength, half], cos);
  const sinCache = g.external("sin_cache", [contextLength, half], sin);

  const embedding = new Float32Array(vocabSize * hidden);
  for (let i = 0; i < embedding.length; i++) embedding[i] = random() * 2 - 1;
  const embed = g.external("model.embed_tokens.weight", [vocabSize, hidden], embedding);
  let x = g.op("Gather", [embed, "input_ids"]);

  const wScale = 1 / Math.sqrt(hidden);
  const ffnStart = g.ints("ffn_start", [0]);
  const ffnMid = g.ints("ffn_mid", [ffn]);
  const ffnEnd = g.ints("ffn_end", [2 * ffn]);
  const lastAxis = g.ints("last_axis", [-1]);
  for (let l = 0; l < layers; l++) {
    const p = `model.layers.${l}`;
    const h = rmsNorm(x, `${p}.input_layernorm.weight`);
    const qkv = linear(h, `${p}.attn.qkv_proj`, hidden, (heads + 2 * kvHeads) * headSize, wScale);
    const [attn] = g.opN(
      "GroupQueryAttention",
      [
        qkv,
        "",
        "",
        `past_key_values.${l}.key`,
        `past_key_values.${l}.value`,
        seqlensK,
        totalLength,
        cosCache,
        sinCache,
      ],
      3,
      [
        attr.int("num_heads", heads),
        attr.int("kv_num_heads", kvHeads),
        attr.int("do_rotary", 1),
        attr.int("rotary_interleaved", 0),
        attr.float("scale", 1 / Math.sqrt(headSize)),
      ],
      [`${p}.attn.output`, `present.${l}.key`, `present.${l}.value`],
      MS,
    );
    x = g.op("Add", [
      x,
      linear(attn as string, `${p}.attn.o_proj`, heads * headSize, hidden, wScale),
    ]);
    const h2 = rmsNorm(x, `${p}.post_attention_layernorm.weight`);
    const gateUp = linear(h2, `${p}.mlp.gate_up_proj`, hidden, 2 * ffn, wScale);
    const gate = g.op("Slice", [gateUp, ffnStart, ffnMid, lastAxis]);
    const up = g.op("Slice", [gateUp, ffnMid, ffnEnd, lastAxis]);
    const act = g.op("Mul", [g.op("Mul", [gate, g.op("Sigmoid", [gate])]), up]);
    x = g.op("Add", [x, linear(act, `${p}.mlp.down_proj`, ffn, hidden, 1 / Math.sqrt(ffn))]);
  }
  linear(rmsNorm(x, "model.norm.weight"), "lm_head", hidden, vocabSize, 3 * wScale, "logits");
  return { inputs, outputs };
}
