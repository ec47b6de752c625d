/**
 * `models:pull`'s `auto` Phi-3 variant is the folder the GPU node loads by default, for every
 * PHI3_DEVICE on a machine with and without an NVIDIA driver (the compose `models` service gets the
 * GPU and the same .env as the node, so both see the same two inputs).
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PHI3_VARIANTS, phi3DirFor, resolvePhi3Variant } from "../../gpu-node/models/catalog.ts";
import { parseGpuNodeSettings } from "../../gpu-node/settings.ts";

describe("the Phi-3 variant models:pull picks", () => {
  it.each([
    ["auto", true, "cuda"],
    ["auto", false, "cpu"],
    [undefined, true, "cuda"],
    ["cuda", false, "cuda"],
    ["cpu", true, "cpu"],
    ["cpu", false, "cpu"],
  ] as const)(
    "PHI3_DEVICE=%s, NVIDIA driver %s: %s, the folder the node loads",
    (device, gpu, want) => {
      const variant = resolvePhi3Variant("auto", gpu, device);
      expect(variant).toBe(PHI3_VARIANTS[want]);
      const node = parseGpuNodeSettings(device ? { PHI3_DEVICE: device } : {}, {
        nvidiaGpu: gpu,
        cwd: "/srv",
      });
      expect(node.phi3.modelDir).toBe(join("/srv/models", phi3DirFor(variant)));
    },
  );

  it("an explicit variant wins over the device", () => {
    expect(resolvePhi3Variant("cpu", true, "cuda")).toBe(PHI3_VARIANTS.cpu);
    expect(resolvePhi3Variant("cuda/other-folder", false)).toBe("cuda/other-folder");
  });
});
