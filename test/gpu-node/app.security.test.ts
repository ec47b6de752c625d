import { describe, expect, it } from "vitest";
import { ErrorBody, GPU_ROUTES } from "../../gpu-node/contract/index.ts";
import { createHarness } from "./harness.ts";
import { hermesResult } from "./scripted-runtime.ts";

const TOKEN = "s3cret-token-for-tests";

describe("GPU node app: bearer token", () => {
  const routes = [
    ["GET", GPU_ROUTES.health, undefined],
    ["POST", GPU_ROUTES.hermesGenerate, { prompt: "x", max_tokens: 5 }],
    ["POST", GPU_ROUTES.phi3Generate, { prompt: "x", max_tokens: 5 }],
  ] as const;

  it.each(routes)("%s %s needs the token when one is set", async (method, path, body) => {
    const h = createHarness({ token: TOKEN });
    const headerSets: Record<string, string>[] = [
      {},
      { Authorization: "Bearer wrong-token" },
      { Authorization: `Basic ${TOKEN}` },
      { Authorization: `Bearer ${TOKEN}x` },
    ];
    for (const headers of headerSets) {
      const res = await h.app.request(`http://gpu-node.test${path}`, {
        method,
        headers: { "Content-Type": "application/json", ...headers },
        ...(body ? { body: JSON.stringify(body) } : {}),
      });
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(res.headers.get("WWW-Authenticate")).toContain("Bearer");
      expect(ErrorBody.parse(await res.json()).code).toBe("unauthorized");
    }
    expect(h.hermes.script.calls).toHaveLength(0);
    expect(h.phi3.script.calls).toHaveLength(0);
  });

  it("accepts the right token", async () => {
    const h = createHarness({ token: TOKEN });
    h.hermes.script.autoReply = () => hermesResult();
    expect((await h.get(GPU_ROUTES.health)).status).toBe(200);
    expect((await h.post(GPU_ROUTES.hermesGenerate, { prompt: "x", max_tokens: 5 })).status).toBe(
      200,
    );
  });

  it("refuses before reading the body", async () => {
    const h = createHarness({ token: TOKEN });
    const res = await h.post(GPU_ROUTES.hermesGenerate, "{not json", {
      headers: { Authorization: "" },
    });
    expect(res.status).toBe(401);
  });

  it("without a token configured, no header is needed", async () => {
    const h = createHarness();
    expect((await h.app.request(`http://gpu-node.test${GPU_ROUTES.health}`)).status).toBe(200);
  });
});
