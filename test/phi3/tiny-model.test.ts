import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import onnxProto from "onnx-proto";
import * as ort from "onnxruntime-node";
import { afterAll, describe, expect, it } from "vitest";
import { TINY_PHI3_SHAPE, writeTinyPhi3 } from "../../gpu-node/models/tiny/phi3.ts";
import { readPhi3Folder } from "../../gpu-node/phi3/folder.ts";
import { removeOrtDebugLog } from "../../gpu-node/phi3/ort-process.ts";

const roots: string[] = [];
async function write(seed: number): Promise<string> {
  const root = await mkdtemp(join(tmpdir(), "tiny-phi3-w-"));
  roots.push(root);
  await writeTinyPhi3(root, { seed });
  return root;
}
afterAll(() => Promise.all(roots.map((r) => rm(r, { recursive: true, force: true }))));
// This file opens ONNX Runtime sessions itself: remove the empty debug log they leave (ort-process.ts).
afterAll(() => void removeOrtDebugLog());

const FILES = [
  "genai_config.json",
  "model.onnx",
  "model.onnx.data",
  "special_tokens_map.json",
  "tokenizer.json",
  "tokenizer_config.json",
];

describe("writeTinyPhi3", () => {
  it("writes the onnxruntime-genai file set, byte-identical for the same seed", async () => {
    const [a, b, c] = await Promise.all([write(1), write(1), write(2)]);
    expect((await readdir(a as string)).sort()).toEqual(FILES);
    for (const file of FILES) {
      const [x, y] = await Promise.all([
        readFile(join(a as string, file)),
        readFile(join(b as string, file)),
      ]);
      expect(x.equals(y), file).toBe(true);
    }
    const [w1, w2] = await Promise.all([
      readFile(join(a as string, "model.onnx.data")),
      readFile(join(c as string, "model.onnx.data")),
    ]);
    expect(w1.equals(w2)).toBe(false);
  });

  it("has the real export's I/O names and KV-cache behaviour", async () => {
    const dir = await write(3);
    const { config } = await readPhi3Folder(dir);
    expect(config).toMatchObject({
      numLayers: TINY_PHI3_SHAPE.layers,
      numKvHeads: TINY_PHI3_SHAPE.kvHeads,
      headSize: TINY_PHI3_SHAPE.headSize,
      contextLength: TINY_PHI3_SHAPE.contextLength,
    });
    const session = await ort.InferenceSession.create(config.modelFile, { intraOpNumThreads: 1 });
    try {
      const past = (l: number) => [config.names.pastKey(l), config.names.pastValue(l)];
      expect(session.inputNames).toEqual(["input_ids", "attention_mask", ...past(0), ...past(1)]);
      expect(session.outputNames).toEqual([
        "logits",
        "present.0.key",
        "present.0.value",
        "present.1.key",
        "present.1.value",
      ]);
      const { kvHeads, headSize } = TINY_PHI3_SHAPE;
      const ids = (xs: number[]) =>
        new ort.Tensor("int64", BigInt64Array.from(xs.map(BigInt)), [1, xs.length]);
      const mask = (n: number) => new ort.Tensor("int64", new BigInt64Array(n).fill(1n), [1, n]);
      const empty = () => new ort.Tensor("float32", new Float32Array(0), [1, kvHeads, 0, headSize]);
      const run = (feeds: Record<string, ort.Tensor>) => session.run(feeds);
      const emptyPast = Object.fromEntries([0, 1].flatMap((l) => past(l).map((n) => [n, empty()])));
      const full = await run({
        input_ids: ids([1, 40, 41, 42]),
        attention_mask: mask(4),
        ...emptyPast,
      });
      const first = await run({
        input_ids: ids([1, 40, 41]),
        attention_mask: mask(3),
        ...emptyPast,
      });
      expect(first["present.0.key"]?.dims).toEqual([1, kvHeads, 3, headSize]);
      const cachedPast = Object.fromEntries(
        [0, 1].flatMap((l) => [
          [config.names.pastKey(l), first[`present.${l}.key`] as ort.Tensor],
          [config.names.pastValue(l), first[`present.${l}.value`] as ort.Tensor],
        ]),
      );
      const step = await run({ input_ids: ids([42]), attention_mask: mask(4), ...cachedPast });
      expect(step["present.1.value"]?.dims).toEqual([1, kvHeads, 4, headSize]);
      const vocab = config.vocabSize;
      const lastFull = (full.logits as ort.Tensor).data.slice(3 * vocab, 4 * vocab);
      const lastStep = (step.logits as ort.Tensor).data as Float32Array;
      expect(lastStep).toHaveLength(vocab);
      for (let i = 0; i < vocab; i++) expect(lastStep[i]).toBeCloseTo(lastFull[i] as number, 4);
    } finally {
      await session.release();
    }
  });

  it("runs attention and projections in the real export's ops", async () => {
    const dir = await write(4);
    const model = onnxProto.onnx.ModelProto.decode(await readFile(join(dir, "model.onnx")));
    const ops = (model.graph?.node ?? []).map((n) => `${n.domain || "ai.onnx"}:${n.opType}`);
    const count = (op: string) => ops.filter((o) => o === op).length;
    const { layers } = TINY_PHI3_SHAPE;
    expect(count("com.microsoft:GroupQueryAttention")).toBe(layers);
    // QKV, O, gate/up and down per layer, and the LM head.
    expect(count("com.microsoft:MatMulNBits")).toBe(4 * layers + 1);
    expect(count("ai.onnx:MatMul")).toBe(0);
    const gqa = model.graph?.node?.find((n) => n.opType === "GroupQueryAttention");
    expect(gqa?.input?.slice(5)).toEqual(["seqlens_k", "total_seq_len", "cos_cache", "sin_cache"]);
    const attrs = Object.fromEntries(
      (gqa?.attribute ?? []).map((a) => [a.name, a.f || Number(a.i)]),
    );
    expect(attrs).toMatchObject({ do_rotary: 1, num_heads: 2, kv_num_heads: 2 });
  });

  it("a batched step over rows of different lengths (right-padded cache) gives each row its own logits", async () => {
    const dir = await write(5);
    const { config } = await readPhi3Folder(dir);
    const session = await ort.InferenceSession.create(config.modelFile, { intraOpNumThreads: 1 });
    const { kvHeads, headSize, layers } = TINY_PHI3_SHAPE;
    const names = [...Array(layers).keys()].flatMap((l) => [`${l}.key`, `${l}.value`]);
    const ids = (rows: number[][]) =>
      new ort.Tensor("int64", BigInt64Array.from(rows.flat(), BigInt), [rows.length, 1]);
    const mask = (lengths: number[], width: number) => {
      const data = new BigInt64Array(lengths.length * width);
      for (const [row, n] of lengths.entries()) data.fill(1n, row * width, row * width + n);
      return new ort.Tensor("int64", data, [lengths.length, width]);
    };
    const empty = Object.fromEntries(
      names.map((n) => [
        `past_key_values.${n}`,
        new ort.Tensor("float32", new Float32Array(0), [1, kvHeads, 0, headSize]),
      ]),
    );
    try {
      const prompts = [
        [1, 40, 41, 42, 43, 44],
        [1, 50, 51],
        [1, 60, 61, 62, 63],
      ];
      const next = [70, 71, 72];
      const alone: Float32Array[] = [];
      const caches: Record<string, ort.Tensor>[] = [];
      for (const [i, prompt] of prompts.entries()) {
        const first = await session.run({
          input_ids: new ort.Tensor("int64", BigInt64Array.from(prompt, BigInt), [
            1,
            prompt.length,
          ]),
          attention_mask: mask([prompt.length], prompt.length),
          ...empty,
        });
        caches.push(first);
        const past = Object.fromEntries(
          names.map((n) => [`past_key_values.${n}`, first[`present.${n}`] as ort.Tensor]),
        );
        const step = await session.run({
          input_ids: ids([[next[i] as number]]),
          attention_mask: mask([prompt.length + 1], prompt.length + 1),
          ...past,
        });
        alone.push(step.logits?.data as Float32Array);
      }
      // One batch: each row's cache left-aligned in a (3, kvH, 6, hd) past; shorter rows padded.
      const lengths = prompts.map((p) => p.length);
      const width = Math.max(...lengths);
      const past: Record<string, ort.Tensor> = {};
      for (const n of names) {
        const data = new Float32Array(prompts.length * kvHeads * width * headSize).fill(Number.NaN);
        caches.forEach((cache, row) => {
          const own = cache[`present.${n}`]?.data as Float32Array;
          const len = lengths[row] as number;
          for (let h = 0; h < kvHeads; h++) {
            const from = own.subarray(h * len * headSize, (h + 1) * len * headSize);
            data.set(from, (row * kvHeads + h) * width * headSize);
          }
        });
        past[`past_key_values.${n}`] = new ort.Tensor("float32", data, [
          prompts.length,
          kvHeads,
          width,
          headSize,
        ]);
      }
      const batched = await session.run({
        input_ids: ids(next.map((t) => [t])),
        attention_mask: mask(
          lengths.map((n) => n + 1),
          width + 1,
        ),
        ...past,
      });
      expect(batched["present.0.key"]?.dims).toEqual([3, kvHeads, width + 1, headSize]);
      const vocab = config.vocabSize;
      const rows = batched.logits?.data as Float32Array;
      for (const [row, own] of alone.entries()) {
        const mine = rows.subarray(row * vocab, (row + 1) * vocab);
        // The padding (NaN) never leaks in; the GEMM's blocking differs with the batch size, so
        // rows agree to float rounding, not bit for bit.
        for (let i = 0; i < vocab; i++) expect(mine[i]).toBeCloseTo(own[i] as number, 4);
      }
    } finally {
      await session.release();
    }
  });
});
