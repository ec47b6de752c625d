import { describe, expect, it } from "vitest";
import { NVIDIA_SMI_QUERY, parseNvidiaSmi } from "../../gpu-node/watchdog/nvidia-smi.ts";

describe("parseNvidiaSmi", () => {
  it("runs the seed's query, csv without header or units", () => {
    expect(NVIDIA_SMI_QUERY.join(" ")).toBe(
      "nvidia-smi --query-gpu=index,memory.used,memory.total --format=csv,noheader,nounits",
    );
  });

  it("reads one GPU", () => {
    expect(parseNvidiaSmi("0, 1234, 24576\n")).toEqual({
      ok: true,
      gpus: [{ index: 0, usedMiB: 1234, totalMiB: 24576 }],
    });
  });

  it("reads several GPUs, CRLF and blank lines included", () => {
    expect(parseNvidiaSmi("0, 10, 80\r\n\n1, 11000, 24576\r\n")).toEqual({
      ok: true,
      gpus: [
        { index: 0, usedMiB: 10, totalMiB: 80 },
        { index: 1, usedMiB: 11000, totalMiB: 24576 },
      ],
    });
  });

  it.each([
    ["", "no GPU lines"],
    ["\n  \n", "no GPU lines"],
    ["0, 1234\n", "unexpected nvidia-smi line 1"],
    ["0, 1234, 24576, 7\n", "unexpected nvidia-smi line 1"],
    ["0, [N/A], 24576\n", "unexpected nvidia-smi line 1"],
    ["0, [Not Supported], [Not Supported]\n", "unexpected nvidia-smi line 1"],
    ["0, 1234 MiB, 24576 MiB\n", "unexpected nvidia-smi line 1"],
    ["0, -5, 24576\n", "unexpected nvidia-smi line 1"],
    ["0, 12.5, 24576\n", "unexpected nvidia-smi line 1"],
    ["0, 1, 2\nnot a number\n", "unexpected nvidia-smi line 2"],
    ["index, memory.used [MiB], memory.total [MiB]\n0, 1, 2\n", "unexpected nvidia-smi line 1"],
    ["0, 1, 2\n0, 3, 4\n", "GPU 0 twice"],
  ])("rejects %j", (stdout, message) => {
    const parsed = parseNvidiaSmi(stdout);
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.error).toContain(message);
  });
});
