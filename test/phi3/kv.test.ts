import * as ort from "onnxruntime-node";
import { describe, expect, it } from "vitest";
import { KvBatch, type KvLayout } from "../../gpu-node/phi3/kv.ts";

const layout: KvLayout = { type: "float32", kvHeads: 2, headSize: 3, names: ["k", "v"] };

/** A batch whose every valid value names its tensor, row, head, position and component; padding
 * is NaN. */
function batch(lengths: number[], width = Math.max(...lengths)): KvBatch {
  const { kvHeads, headSize } = layout;
  const tensors = layout.names.map((_, t) => {
    const data = new Float32Array(lengths.length * kvHeads * width * headSize).fill(Number.NaN);
    lengths.forEach((length, row) => {
      for (let h = 0; h < kvHeads; h++) {
        for (let p = 0; p < length; p++) {
          for (let c = 0; c < headSize; c++) {
            data[((row * kvHeads + h) * width + p) * headSize + c] =
              t * 10_000 + row * 1000 + h * 100 + p * 10 + c;
          }
        }
      }
    });
    return new ort.Tensor("float32", data, [lengths.length, kvHeads, width, headSize]);
  });
  return new KvBatch(layout, tensors, [...lengths]);
}

/** The valid values of one row, as [tensor][head][position][component]. */
function rowValues(b: KvBatch, row: number): number[][][][] {
  const { kvHeads, headSize } = layout;
  return b.tensors.map((tensor) => {
    const data = tensor.data as Float32Array;
    return Array.from({ length: kvHeads }, (_, h) =>
      Array.from({ length: b.lengths[row] as number }, (_, p) =>
        Array.from(
          { length: headSize },
          (_, c) => data[((row * kvHeads + h) * b.width + p) * headSize + c] as number,
        ),
      ),
    );
  });
}

describe("KvBatch", () => {
  it("gather copies each row's valid prefix into a batch as wide as the longest", () => {
    const a = batch([4, 2, 3]);
    const b = batch([6]);
    const expected = [rowValues(a, 2), rowValues(b, 0), rowValues(a, 0)];
    const g = KvBatch.gather(layout, [
      { batch: a, row: 2 },
      { batch: b, row: 0 },
      { batch: a, row: 0 },
    ]);
    expect(g.lengths).toEqual([3, 6, 4]);
    expect(g.width).toBe(6);
    expect(g.tensors[0]?.dims).toEqual([3, 2, 6, 3]);
    expect([0, 1, 2].map((row) => rowValues(g, row))).toEqual(expected);
  });

  it.each([
    [
      [false, true, false, true, true],
      [4, 1, 3],
    ],
    [[true, false, false], [0]],
    [[false, false, true], [2]],
    [
      [true, true, false],
      [0, 1],
    ],
    [
      [false, true, true, true],
      [3, 1, 2],
    ],
  ])("compact keeps %j in place as rows %j", (keep, order) => {
    const lengths = keep.map((_, row) => row + 1);
    const b = batch(lengths, 7);
    const before = lengths.map((_, row) => rowValues(b, row));
    expect(b.compact(keep)).toEqual(order);
    expect(b.rows).toBe(order.length);
    expect(b.width).toBe(7);
    expect(b.lengths).toEqual(order.map((row) => lengths[row]));
    expect(b.tensors[1]?.dims).toEqual([order.length, 2, 7, 3]);
    expect(order.map((_, row) => rowValues(b, row))).toEqual(order.map((row) => before[row]));
  });
});
