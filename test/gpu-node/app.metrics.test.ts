/** The GPU node's /metrics moves with traffic: tokens, timings, queue gauges, states, errors. */
import { describe, expect, it } from "vitest";
import { GPU_ROUTES } from "../../gpu-node/contract/index.ts";
import { createHarness, settle } from "./harness.ts";
import { hermesResult, phi3Result } from "./scripted-runtime.ts";

function sample(text: string, name: string, labels = ""): number | undefined {
  const line = text.split("\n").find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.split(" ").at(-1));
}

describe("GPU node metrics", () => {
  it("count tokens and time per model, show the queue while it waits, and errors by code", async () => {
    const h = createHarness({ metrics: true, token: "t0k" });
    const scrape = async () => {
      const res = await h.get("/metrics");
      expect(res.status).toBe(200);
      return res.text();
    };
    let text = await scrape();
    expect(sample(text, "sidecar_gpu_model_state", '{model="hermes",state="ready"}')).toBe(1);
    expect(sample(text, "sidecar_gpu_generated_tokens_total", '{model="hermes"}')).toBe(0);

    // One running, one waiting: the gauges say so at scrape time.
    const first = h.post(GPU_ROUTES.hermesGenerate, { prompt: "one", max_tokens: 8 });
    const second = h.post(GPU_ROUTES.hermesGenerate, { prompt: "two", max_tokens: 8 });
    const call1 = await h.hermes.script.nextCall();
    await settle();
    text = await scrape();
    expect(sample(text, "sidecar_gpu_queue_running", '{model="hermes"}')).toBe(1);
    expect(sample(text, "sidecar_gpu_queue_waiting", '{model="hermes"}')).toBe(1);
    call1.finish(hermesResult("first", { usage: { prompt_tokens: 12, completion_tokens: 5 } }));
    (await h.hermes.script.nextCall()).finish(hermesResult());
    expect((await first).status).toBe(200);
    expect((await second).status).toBe(200);

    h.phi3.script.autoReply = () => phi3Result();
    expect((await h.post(GPU_ROUTES.phi3Generate, { prompt: "p", max_tokens: 64 })).status).toBe(
      200,
    );
    // A budget the schema cannot meet: counted as an error of phi3 by its code.
    const invalid = await h.post(GPU_ROUTES.phi3Generate, { prompt: "", max_tokens: 64 });
    expect(invalid.status).toBe(422);

    text = await scrape();
    expect(sample(text, "sidecar_gpu_generated_tokens_total", '{model="hermes"}')).toBe(9);
    expect(sample(text, "sidecar_gpu_prompt_tokens_total", '{model="hermes"}')).toBe(24);
    expect(sample(text, "sidecar_gpu_generated_tokens_total", '{model="phi3"}')).toBe(30);
    expect(sample(text, "sidecar_gpu_requests_total", '{model="phi3",finish="stop"}')).toBe(1);
    expect(sample(text, "sidecar_gpu_time_to_first_token_seconds_count", '{model="hermes"}')).toBe(
      2,
    );
    expect(sample(text, "sidecar_gpu_time_per_output_token_seconds_count", '{model="phi3"}')).toBe(
      1,
    );
    expect(sample(text, "sidecar_gpu_errors_total", '{model="phi3",code="invalid_request"}')).toBe(
      1,
    );
    expect(sample(text, "sidecar_gpu_queue_waiting", '{model="hermes"}')).toBe(0);
  });

  it("follow the node's token", async () => {
    const h = createHarness({ metrics: true, token: "t0k" });
    expect((await h.get("/metrics", { Authorization: "Bearer wrong" })).status).toBe(401);
  });

  it("are absent when the node keeps none", async () => {
    const h = createHarness({});
    expect((await h.get("/metrics")).status).toBe(404);
  });
});
