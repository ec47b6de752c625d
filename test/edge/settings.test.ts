import { describe, expect, it } from "vitest";
import { assertSafeExposure, parseEdgeSettings, SettingsError } from "../../edge/settings.ts";

describe("edge settings", () => {
  it("has the documented defaults", () => {
    const s = parseEdgeSettings({});
    expect(s.PORT).toBe(8000);
    expect(s.HOST).toBe("127.0.0.1");
    expect(s.DATA_DIR).toBe("./data");
    expect(s.DATABASE_URL).toBeUndefined();
    expect(s.GPU_NODE_URL).toBe("http://127.0.0.1:8001");
    expect(s.API_KEYS).toEqual([]);
    expect(s.AUGMENT_MAX_EXAMPLES).toBe(3);
    expect(s.JSONL_MIRROR).toBe(true);
  });

  it("treats empty values as unset and splits API_KEYS", () => {
    const s = parseEdgeSettings({ PORT: "", API_KEYS: " a, b ,,c ", DATABASE_URL: "" });
    expect(s.PORT).toBe(8000);
    expect(s.API_KEYS).toEqual(["a", "b", "c"]);
    expect(s.DATABASE_URL).toBeUndefined();
  });

  it.each([
    ["PORT", "eighty"],
    ["PORT", "70000"],
    ["GPU_NODE_URL", "not a url"],
    ["DATABASE_URL", "mysql://x"],
    ["BODY_LIMIT_BYTES", "-1"],
    ["JSONL_MIRROR", "maybe"],
    ["LOG_LEVEL", "loud"],
  ])("rejects %s=%s with one line naming the variable", (name, value) => {
    let error: unknown;
    try {
      parseEdgeSettings({ [name]: value });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(SettingsError);
    const message = (error as Error).message;
    expect(message).toContain(name);
    expect(message).not.toContain("\n");
  });

  it("wants both TLS files or neither", () => {
    expect(() => parseEdgeSettings({ TLS_CERT_FILE: "/c.pem" })).toThrow(/TLS_CERT_FILE/);
    expect(parseEdgeSettings({ TLS_CERT_FILE: "/c", TLS_KEY_FILE: "/k" }).TLS_KEY_FILE).toBe("/k");
  });

  it("refuses a non-loopback bind without API keys", () => {
    expect(() => assertSafeExposure(parseEdgeSettings({ HOST: "0.0.0.0" }))).toThrow(/API_KEYS/);
    expect(() => assertSafeExposure(parseEdgeSettings({ HOST: "127.0.0.1" }))).not.toThrow();
    expect(() => assertSafeExposure(parseEdgeSettings({ HOST: "::1" }))).not.toThrow();
    expect(() =>
      assertSafeExposure(parseEdgeSettings({ HOST: "0.0.0.0", API_KEYS: "k" })),
    ).not.toThrow();
  });
});

describe("the GPU node's URL", () => {
  it("follows GPU_NODE_PORT when GPU_NODE_URL is unset", () => {
    expect(parseEdgeSettings({ GPU_NODE_PORT: "9101" }).GPU_NODE_URL).toBe("http://127.0.0.1:9101");
    expect(parseEdgeSettings({ GPU_NODE_PORT: "", GPU_NODE_URL: "" }).GPU_NODE_URL).toBe(
      "http://127.0.0.1:8001",
    );
  });

  it("uses GPU_NODE_HOST when it names one address, loopback when the node binds them all", () => {
    expect(parseEdgeSettings({ GPU_NODE_HOST: "10.0.0.7" }).GPU_NODE_URL).toBe(
      "http://10.0.0.7:8001",
    );
    expect(parseEdgeSettings({ GPU_NODE_HOST: "::1", GPU_NODE_PORT: "9" }).GPU_NODE_URL).toBe(
      "http://[::1]:9",
    );
    expect(parseEdgeSettings({ GPU_NODE_HOST: "0.0.0.0" }).GPU_NODE_URL).toBe(
      "http://127.0.0.1:8001",
    );
  });

  it("lets an explicit GPU_NODE_URL win", () => {
    const s = parseEdgeSettings({ GPU_NODE_PORT: "9101", GPU_NODE_URL: "https://gpu.example.com" });
    expect(s.GPU_NODE_URL).toBe("https://gpu.example.com");
  });

  it("cannot derive it from GPU_NODE_PORT=0 (any free port) and says what to set", () => {
    expect(() => parseEdgeSettings({ GPU_NODE_PORT: "0" })).toThrow(/set GPU_NODE_URL/);
    expect(() => parseEdgeSettings({ GPU_NODE_PORT: "x" })).toThrow(/GPU_NODE_PORT/);
  });

  it("never puts a setting's value in an error", () => {
    const secret = "ftp://user:hunter2@secret-host.internal/x";
    expect(() => parseEdgeSettings({ GPU_NODE_URL: secret })).toThrow(
      /^invalid setting GPU_NODE_URL: /,
    );
    try {
      parseEdgeSettings({ GPU_NODE_URL: secret });
    } catch (err) {
      expect((err as Error).message).not.toMatch(/hunter2|secret-host/);
    }
  });
});
