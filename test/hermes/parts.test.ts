/** The pure parts of the Hermes runtime: stop sequences over a stream, the parallel default. */
import { describe, expect, it } from "vitest";
import { hermesParallel } from "../../gpu-node/hermes/parallel.ts";
import { StopFilter } from "../../gpu-node/hermes/stop.ts";

function run(stops: string[], pieces: string[]) {
  const filter = new StopFilter(stops);
  const out: string[] = [];
  for (const piece of pieces) {
    out.push(filter.push(piece));
    if (filter.stopped) break;
  }
  out.push(filter.flush());
  return { text: out.join(""), stopped: filter.stopped, out };
}

describe("StopFilter", () => {
  it("passes text through without stop sequences", () => {
    expect(run([], ["a", "b", "c"])).toEqual({
      text: "abc",
      stopped: false,
      out: ["a", "b", "c", ""],
    });
  });

  it("ends before a stop sequence split over pieces, and holds back only what could start one", () => {
    const { text, stopped, out } = run(["END"], ["hello E", "N", "D after"]);
    expect(text).toBe("hello ");
    expect(stopped).toBe(true);
    // "E" was held back until it was clear.
    expect(out[0]).toBe("hello ");
  });

  it("releases a held-back tail that did not become a stop sequence", () => {
    expect(run(["END"], ["the E", "ND", "!"]).text).toBe("the ");
    expect(run(["END"], ["the E", "nd"]).text).toBe("the End");
    expect(run(["END"], ["the EN"]).text).toBe("the EN");
  });

  it("the earliest of several stop sequences wins", () => {
    expect(run(["\n\n", "STOP"], ["a STOP b\n\nc"]).text).toBe("a ");
    expect(run(["xyz", "y"], ["axyz"]).text).toBe("a");
  });
});

describe("hermesParallel", () => {
  const eightB = 32 * 8 * 128 * 2 * 2; // Hermes-3 8B, f16 KV cache: 128 KiB per token

  it("a number is taken as it is", () => {
    expect(
      hermesParallel({ requested: 3, contextSize: 6144, kvBytesPerToken: eightB, onGpu: false }),
    ).toBe(3);
  });

  it("auto: the 8B at 6144 tokens is 2 sequences on a GPU, 1 on the CPU", () => {
    const base = { requested: "auto" as const, contextSize: 6144, kvBytesPerToken: eightB };
    expect(hermesParallel({ ...base, onGpu: true })).toBe(2);
    expect(hermesParallel({ ...base, onGpu: false })).toBe(1);
    // A larger budget or a smaller context gives more, up to 4.
    expect(hermesParallel({ ...base, onGpu: true, kvBudgetMiB: 8192 })).toBe(4);
    expect(hermesParallel({ ...base, contextSize: 2048, onGpu: true })).toBe(4);
  });

  it("auto on a GPU never takes more than the free VRAM less a margin", () => {
    const base = { requested: "auto" as const, contextSize: 6144, kvBytesPerToken: eightB };
    const gib = 2 ** 30;
    expect(
      hermesParallel({ ...base, onGpu: true, kvBudgetMiB: 8192, vramFreeBytes: 1.5 * gib }),
    ).toBe(1);
    expect(hermesParallel({ ...base, onGpu: true, vramFreeBytes: 0 })).toBe(1);
  });
});
