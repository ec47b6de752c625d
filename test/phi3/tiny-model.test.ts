import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { afterAll, describe, expect, it } from "vitest";
import { TINY_PHI3_SHAPE, writeTinyPhi3 } from "../../gpu-node/models/tiny-phi3.ts";
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
});
