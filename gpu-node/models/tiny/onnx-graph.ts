/**
 * A small ONNX graph builder: nodes (any domain), inline and external initializers, typed I/O,
 * and the encoded model. Written on onnx-proto 8.0.1 (the onnx 1.10 schema on protobufjs).
 *
 * Deterministic: the same calls give byte-identical model and external-data files.
 */
import onnxProto from "onnx-proto";

const { onnx } = onnxProto;
type INode = onnxProto.onnx.INodeProto;
type ITensor = onnxProto.onnx.ITensorProto;
export type IValueInfo = onnxProto.onnx.IValueInfoProto;
type IAttribute = onnxProto.onnx.IAttributeProto;

export const DataType = onnx.TensorProto.DataType;

export const attr = {
  int: (name: string, i: number): IAttribute => ({
    name,
    type: onnx.AttributeProto.AttributeType.INT,
    i,
  }),
  ints: (name: string, ints: number[]): IAttribute => ({
    name,
    type: onnx.AttributeProto.AttributeType.INTS,
    ints,
  }),
  float: (name: string, f: number): IAttribute => ({
    name,
    type: onnx.AttributeProto.AttributeType.FLOAT,
    f,
  }),
};

export function tensorInfo(name: string, elemType: number, dims: (number | string)[]): IValueInfo {
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

export class GraphBuilder {
  readonly nodes: INode[] = [];
  readonly initializers: ITensor[] = [];
  private readonly chunks: Uint8Array[] = [];
  private offset = 0;
  private counter = 0;

  /** `dataFile`: the external data file's name, beside the model. */
  constructor(private readonly dataFile: string) {}

  /** Adds a node with one output (named after the op unless given) and returns that name.
   * `""` in `inputs` leaves an optional input out, as ONNX does. */
  op(
    opType: string,
    inputs: string[],
    attributes: IAttribute[] = [],
    output?: string,
    domain?: string,
  ): string {
    return this.opN(
      opType,
      inputs,
      1,
      attributes,
      output ? [output] : undefined,
      domain,
    )[0] as string;
  }

  /** A node with `count` outputs. */
  opN(
    opType: string,
    inputs: string[],
    count: number,
    attributes: IAttribute[] = [],
    outputs?: string[],
    domain?: string,
  ): string[] {
    const out =
      outputs ?? Array.from({ length: count }, () => `${opType.toLowerCase()}_${this.counter++}`);
    this.nodes.push({
      opType,
      input: inputs,
      output: out,
      name: `${opType}_${this.nodes.length}`,
      attribute: attributes,
      ...(domain ? { domain } : {}),
    });
    return out;
  }

  /** An int64 constant stored inline, as the exporter does for small tensors. */
  ints(name: string, values: number[], dims: number[] = [values.length]): string {
    this.initializers.push({
      name,
      dataType: DataType.INT64,
      dims,
      rawData: new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer),
    });
    return name;
  }

  floats(name: string, values: number[], dims: number[] = [values.length]): string {
    this.initializers.push({
      name,
      dataType: DataType.FLOAT,
      dims,
      rawData: new Uint8Array(Float32Array.from(values).buffer),
    });
    return name;
  }

  /** A tensor stored in the external data file (64-byte aligned, like the exporter's). */
  external(name: string, dims: number[], data: Float32Array | Uint8Array): string {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    this.initializers.push({
      name,
      dataType: data instanceof Float32Array ? DataType.FLOAT : DataType.UINT8,
      dims,
      dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
      externalData: [
        { key: "location", value: this.dataFile },
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

  /** The encoded model (checked by protobufjs' verify first). */
  encode(spec: {
    name: string;
    producer: string;
    inputs: IValueInfo[];
    outputs: IValueInfo[];
    opsets: { domain: string; version: number }[];
  }): Uint8Array {
    const model = onnx.ModelProto.fromObject({
      irVersion: 8,
      producerName: spec.producer,
      producerVersion: "1",
      opsetImport: spec.opsets,
      graph: {
        name: spec.name,
        node: this.nodes,
        initializer: this.initializers,
        input: spec.inputs,
        output: spec.outputs,
      },
    });
    const problem = onnx.ModelProto.verify(model);
    if (problem) throw new Error(`ONNX model ${spec.name} is malformed: ${problem}`);
    return onnx.ModelProto.encode(model).finish();
  }
}
