/**
 * The KV cache of a batch of sequences, laid out the way GroupQueryAttention reads it: per layer
 * and kind one `(rows, kv_heads, width, head_size)` tensor, row b's first `lengths[b]` positions
 * valid and the rest padding (the op takes each row's length from `seqlens_k`, i.e. from the
 * attention mask, and writes the new token right after it). `width` is the longest row's
 * length, so a decode step's `present.*` (width + 1) is the next step's past as it is.
 *
 * Rows join and leave between steps: `gather` copies rows (a newcomer's own cache beside the
 * batch's) into a new batch, each row's valid prefix only; `compact` drops rows in place.
 */
import * as ort from "onnxruntime-node";

export type KvType = "float32" | "float16";
type KvArray = Float32Array | Uint16Array;

export interface KvLayout {
  type: KvType;
  kvHeads: number;
  headSize: number;
  /** The past input names, in the order `tensors` holds them. */
  names: readonly string[];
}

export class KvBatch {
  constructor(
    readonly layout: KvLayout,
    /** One per layout name: (rows, kv_heads, width, head_size). */
    public tensors: ort.Tensor[],
    /** Valid positions per row. */
    public lengths: number[],
  ) {}

  get rows(): number {
    return this.lengths.length;
  }

  get width(): number {
    return (this.tensors[0]?.dims[2] as number | undefined) ?? 0;
  }

  /** A batch of `rows` empty caches (width 0), for a prefill. */
  static empty(layout: KvLayout, rows: number): KvBatch {
    const dims = [rows, layout.kvHeads, 0, layout.headSize];
    const tensors = layout.names.map(() =>
      layout.type === "float16"
        ? new ort.Tensor("float16", new Uint16Array(0), dims)
        : new ort.Tensor("float32", new Float32Array(0), dims),
    );
    return new KvBatch(layout, tensors, new Array(rows).fill(0));
  }

  /** The past feeds of a run over this batch. */
  feeds(): Record<string, ort.Tensor> {
    const feeds: Record<string, ort.Tensor> = {};
    this.layout.names.forEach((name, i) => {
      feeds[name] = this.tensors[i] as ort.Tensor;
    });
    return feeds;
  }

  /** Keeps the rows marked true, in place: rows from the end move into the holes (one row
   * copy each) and the tensors become views of the first rows. Returns the kept rows' old
   * indices in their new order. The width stays; shorter rows are padding, as always. */
  compact(keep: readonly boolean[]): number[] {
    const order = this.lengths.map((_, row) => row);
    const { kvHeads, headSize } = this.layout;
    const rowSize = kvHeads * this.width * headSize;
    let end = this.rows;
    for (let row = 0; row < end; row++) {
      if (keep[order[row] as number]) continue;
      // Find the last kept row after this one and move it here.
      while (end - 1 > row && !keep[order[end - 1] as number]) end--;
      end--;
      if (end <= row) break;
      for (const tensor of this.tensors) {
        const data = tensor.data as KvArray;
        data.copyWithin(row * rowSize, end * rowSize, (end + 1) * rowSize);
      }
      order[row] = order[end] as number;
      this.lengths[row] = this.lengths[end] as number;
    }
    const count = keep.filter(Boolean).length;
    this.tensors = this.tensors.map(
      (tensor) =>
        new ort.Tensor(this.layout.type, (tensor.data as KvArray).subarray(0, count * rowSize), [
          count,
          kvHeads,
          this.width,
          headSize,
        ]),
    );
    this.lengths.length = count;
    return order.slice(0, count);
  }

  /** Copies the given rows (of this or other batches with the same layout) into a new batch,
   * in that order; its width is the longest of their lengths. */
  static gather(layout: KvLayout, rows: readonly { batch: KvBatch; row: number }[]): KvBatch {
    const { kvHeads, headSize } = layout;
    const lengths = rows.map(({ batch, row }) => batch.lengths[row] as number);
    const width = Math.max(0, ...lengths);
    const tensors = layout.names.map((_, t) => {
      const size = rows.length * kvHeads * width * headSize;
      const data: KvArray =
        layout.type === "float16" ? new Uint16Array(size) : new Float32Array(size);
      rows.forEach(({ batch, row }, to) => {
        const source = batch.tensors[t]?.data as KvArray;
        const from = batch.width;
        const n = (lengths[to] as number) * headSize;
        for (let h = 0; h < kvHeads; h++) {
          const start = (row * kvHeads + h) * from * headSize;
          data.set(source.subarray(start, start + n), (to * kvHeads + h) * width * headSize);
        }
      });
      return new ort.Tensor(layout.type, data, [rows.length, kvHeads, width, headSize]);
    });
    return new KvBatch(layout, tensors, lengths);
  }
}
