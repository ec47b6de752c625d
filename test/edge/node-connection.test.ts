/**
 * The Node server answers a request it refuses before reading its body (413 over the limit, 415
 * wrong content type), then closes the connection cleanly: `Connection: close`, the whole answer,
 * a FIN rather than a reset, and a keep-alive client's next request works.
 */

import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEdge } from "../../edge/node-runtime/server.ts";
import { type StandInGpuNode, startStandInGpuNode } from "../support/stand-in-gpu-node.ts";

describe("Node server: refused bodies", () => {
  let gpu: StandInGpuNode;
  let edge: Awaited<ReturnType<typeof startEdge>>;
  const dir = mkdtempSync(path.join(tmpdir(), "llm-sidecar-conn-"));
  beforeAll(async () => {
    gpu = await startStandInGpuNode();
    edge = await startEdge(
      { DATA_DIR: dir, PORT: "0", GPU_NODE_URL: gpu.url, JSONL_MIRROR: "false" },
      { logger: pino({ level: "silent" }) },
    );
  });
  afterAll(async () => {
    await edge?.close();
    await gpu?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Sends a request by hand (the body in slices while the server may already answer). */
  function raw(head: string, body: string): Promise<{ text: string; ended: "end" | string }> {
    const url = new URL(edge.url);
    return new Promise((resolve) => {
      const socket = net.connect(Number(url.port), url.hostname);
      let text = "";
      socket.setEncoding("utf8");
      socket.on("data", (d: string) => {
        text += d;
      });
      socket.once("error", (e) =>
        resolve({ text, ended: (e as NodeJS.ErrnoException).code ?? "error" }),
      );
      socket.once("end", () => {
        socket.end();
        resolve({ text, ended: "end" });
      });
      socket.write(head);
      let at = 0;
      const next = () => {
        if (at >= body.length || socket.destroyed) return;
        socket.write(body.slice(at, at + 8192), () => setTimeout(next, 5));
        at += 8192;
      };
      next();
    });
  }

  it.each([
    ["70 KB of text/plain", "text/plain", 70_000, "413"],
    ["70 KB of JSON", "application/json", 70_000, "413"],
    ["a small text/plain body", "text/plain", 1_000, "415"],
  ])(
    "%s: the whole answer, Connection: close, then a clean close",
    async (_what, type, size, status) => {
      const body = "x".repeat(size);
      const head = `POST /generate/ HTTP/1.1\r\nHost: edge\r\nContent-Type: ${type}\r\nContent-Length: ${size}\r\n\r\n`;
      const { text, ended } = await raw(head, body);
      expect(ended).toBe("end");
      expect(text).toMatch(new RegExp(`^HTTP/1.1 ${status} `));
      expect(text.toLowerCase()).toContain("connection: close");
      const json = JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4)) as { code: string };
      expect(json.code).toBe(status === "413" ? "payload_too_large" : "unsupported_media_type");
    },
  );

  it("a keep-alive client's next request after a 413 succeeds", async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const send = (method: string, p: string, type?: string, body?: string) =>
      new Promise<number>((resolve, reject) => {
        const req = http.request(
          `${edge.url}${p}`,
          { method, agent, headers: type ? { "content-type": type } : {} },
          (res) => {
            res.resume();
            res.once("end", () => resolve(res.statusCode ?? 0));
          },
        );
        req.once("error", reject);
        req.end(body);
      });
    try {
      for (let i = 0; i < 5; i++) {
        expect(await send("POST", "/generate/", "text/plain", "y".repeat(70_000))).toBe(413);
        expect(await send("POST", "/generate/", "application/json", '{"prompt":"hi"}')).toBe(200);
      }
    } finally {
      agent.destroy();
    }
  });
});
