/**
 * A GGUF v3 writer (for the tiny Hermes model).
 *
 * Hand-written because no npm package writes complete GGUF files (@huggingface/gguf 0.4.6 writes
 * metadata only). Spec: https://github.com/ggml-org/ggml/blob/master/docs/gguf.md
 * Only what our tiny models need: little-endian, F32 tensors, scalar/string/array metadata.
 */

/** GGUF metadata value types (gguf.md, `gguf_metadata_value_type`). */
const T = {
  u8: 0,
  i8: 1,
  u16: 2,
  i16: 3,
  u32: 4,
  i32: 5,
  f32: 6,
  bool: 7,
  string: 8,
  array: 9,
  u64: 10,
  i64: 11,
  f64: 12,
} as const;
type ScalarType = Exclude<keyof typeof T, "array">;

export type GgufValue =
  | { type: ScalarType; value: number | bigint | boolean | string }
  | {
      type: "array";
      itemType: ScalarType;
      values: ReadonlyArray<number | bigint | boolean | string>;
    };

export const gv = {
  u32: (value: number): GgufValue => ({ type: "u32", value }),
  i32: (value: number): GgufValue => ({ type: "i32", value }),
  f32: (value: number): GgufValue => ({ type: "f32", value }),
  bool: (value: boolean): GgufValue => ({ type: "bool", value }),
  str: (value: string): GgufValue => ({ type: "string", value }),
  arr: (
    itemType: ScalarType,
    values: ReadonlyArray<number | bigint | boolean | string>,
  ): GgufValue => ({
    type: "array",
    itemType,
    values,
  }),
};

export interface GgufTensor {
  name: string;
  /** ggml order: the fastest-varying dimension first (e.g. [n_embd, n_vocab] for token_embd). */
  dims: readonly number[];
  /** F32 data, product(dims) values. */
  data: Float32Array;
}

export interface GgufParts {
  metadata: Array<readonly [string, GgufValue]>;
  tensors: GgufTensor[];
}

const GGML_TYPE_F32 = 0;
export const GGUF_ALIGNMENT = 32;

/** A growable little-endian byte buffer. */
class ByteWriter {
  private buf = Buffer.alloc(1 << 16);
  length = 0;

  private ensure(extra: number): void {
    if (this.length + extra <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.length + extra) size *= 2;
    const next = Buffer.alloc(size);
    this.buf.copy(next, 0, 0, this.length);
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf.writeUInt8(v, this.length);
    this.length += 1;
  }
  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(v, this.length);
    this.length += 4;
  }
  u64(v: number | bigint): void {
    this.ensure(8);
    this.buf.writeBigUInt64LE(BigInt(v), this.length);
    this.length += 8;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.length);
    this.length += b.length;
  }
  string(s: string): void {
    const b = Buffer.from(s, "utf8");
    this.u64(b.length);
    this.bytes(b);
  }
  padTo(alignment: number): void {
    while (this.length % alignment !== 0) this.u8(0);
  }
  scalar(type: ScalarType, v: number | bigint | boolean | string): void {
    this.ensure(8);
    const at = this.length;
    switch (type) {
      case "u8":
        this.buf.writeUInt8(Number(v), at);
        this.length += 1;
        return;
      case "i8":
        this.buf.writeInt8(Number(v), at);
        this.length += 1;
        return;
      case "u16":
        this.buf.writeUInt16LE(Number(v), at);
        this.length += 2;
        return;
      case "i16":
        this.buf.writeInt16LE(Number(v), at);
        this.length += 2;
        return;
      case "u32":
        this.buf.writeUInt32LE(Number(v), at);
        this.length += 4;
        return;
      case "i32":
        this.buf.writeInt32LE(Number(v), at);
        this.length += 4;
        return;
      case "f32":
        this.buf.writeFloatLE(Number(v), at);
        this.length += 4;
        return;
      case "bool":
        this.buf.writeUInt8(v ? 1 : 0, at);
        this.length += 1;
        return;
      case "u64":
        this.buf.writeBigUInt64LE(BigInt(v), at);
        this.length += 8;
        return;
      case "i64":
        this.buf.writeBigInt64LE(BigInt(v), at);
        this.length += 8;
        return;
      case "f64":
        this.buf.writeDoubleLE(Number(v), at);
        this.length += 8;
        return;
      case "string":
        this.string(String(v));
        return;
    }
  }
  result(): Buffer {
    return this.buf.subarray(0, this.length);
  }
}

/** Serializes a complete GGUF v3 file (header, metadata, tensor infos, aligned F32 data). */
export function encodeGguf(
  metadata: ReadonlyArray<readonly [string, GgufValue]>,
  tensors: readonly GgufTensor[],
): Buffer {
  const w = new ByteWriter();
  w.bytes(Buffer.from("GGUF", "ascii"));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(metadata.length);
  for (const [key, value] of metadata) {
    w.string(key);
    w.u32(T[value.type]);
    if (value.type === "array") {
      w.u32(T[value.itemType]);
      w.u64(value.values.length);
      for (const item of value.values) w.scalar(value.itemType, item);
    } else {
      w.scalar(value.type, value.value);
    }
  }
  let offset = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    const count = t.dims.reduce((a, b) => a * b, 1);
    if (count !== t.data.length) {
      throw new Error(
        `tensor ${t.name}: dims ${t.dims.join("x")} need ${count} values, got ${t.data.length}`,
      );
    }
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(GGML_TYPE_F32);
    w.u64(offset);
    offsets.push(offset);
    offset += Math.ceil((count * 4) / GGUF_ALIGNMENT) * GGUF_ALIGNMENT;
  }
  w.padTo(GGUF_ALIGNMENT);
  const dataStart = w.length;
  tensors.forEach((t, i) => {
    while (w.length < dataStart + (offsets[i] ?? 0)) w.u8(0);
    w.bytes(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  });
  w.padTo(GGUF_ALIGNMENT);
  return w.result();
}
