/** The real `npm run start:edge` process: HTTP, HTTPS with a generated certificate, refusals. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { request as httpsRequest } from "node:https";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FEEDBACK_FILE, LOG_FILE } from "../../edge/node-runtime/jsonl-mirror.ts";
import { freePort, startProcess, waitFor } from "../support/process.ts";
import { type StandInGpuNode, startStandInGpuNode } from "../support/stand-in-gpu-node.ts";

let dir: string;
let gpu: StandInGpuNode;
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "edge-proc-"));
  gpu = await startStandInGpuNode();
});
afterAll(async () => {
  await gpu?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe("npm run start:edge", () => {
  it("serves the API on PGlite, mirrors to JSONL, exports with the CLI, stops on SIGTERM", async () => {
    const port = await freePort();
    const dataDir = path.join(dir, "data");
    const env = { PORT: String(port), DATA_DIR: dataDir, GPU_NODE_URL: gpu.url, DATABASE_URL: "" };
    const proc = startProcess("npm", ["run", "--silent", "start:edge"], env);
    try {
      const base = `http://127.0.0.1:${port}`;
      await waitFor(
        async () => (await fetch(`${base}/health`)).status === 200,
        "edge /health",
        60_000,
        proc,
      );
      const res = await fetch(`${base}/generate/phi3/`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ prompt: "COST looks extended" }),
      });
      expect(res.status).toBe(200);
      const tx = res.headers.get("x-transaction-id");
      const fb = await fetch(`${base}/feedback/phi3/`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ transaction_id: tx, feedback_type: "rating", feedback_content: 5 }),
      });
      expect(fb.status).toBe(200);
      // One log line per request, no prompt text at info level.
      // pino writes asynchronously: the line can trail the response a little.
      await waitFor(
        async () =>
          /"method":"POST","route":"\/generate\/phi3",[^\n]*"status":200/.test(proc.output()),
        "the request's log line",
        10_000,
      );
      expect(proc.output()).not.toContain("COST looks extended");
      await proc.stop();
      // The service itself shut down cleanly (npm above it dies of the signal), saying so in
      // JSON lines like every other line it writes.
      const shutdown = proc
        .output()
        .split("\n")
        .filter((l) => /shutting down|stopped/.test(l));
      expect(shutdown.length).toBeGreaterThanOrEqual(2);
      for (const line of shutdown) expect(JSON.parse(line)).toMatchObject({ svc: "edge" });
      expect(shutdown.map((l) => JSON.parse(l).msg)).toContain("stopped");

      const log = readFileSync(path.join(dataDir, LOG_FILE), "utf8").trim().split("\n");
      expect(log.map((l) => JSON.parse(l).transaction_id)).toEqual([tx]);
      const data = readFileSync(path.join(dataDir, FEEDBACK_FILE), "utf8").trim().split("\n");
      expect(JSON.parse(data[0] as string)).toMatchObject({
        transaction_id: tx,
        feedback_type: "rating",
      });

      // The record outlives the process: export it with the CLI from the same PGlite folder.
      const out = path.join(dir, "export.jsonl");
      const stderr = execFileSync(
        "npm",
        ["run", "--silent", "export:jsonl", "--", "--kind", "log", "--out", out],
        {
          env: { ...process.env, DATA_DIR: dataDir, DATABASE_URL: "" },
          encoding: "utf8",
          stdio: ["ignore", "pipe", "pipe"],
        },
      );
      expect(stderr).toBeDefined();
      const exported = readFileSync(out, "utf8")
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l));
      expect(exported.map((l) => l.transaction_id)).toEqual([tx]);
    } finally {
      await proc.stop();
    }
  });

  it("serves HTTPS with TLS_CERT_FILE and TLS_KEY_FILE", async () => {
    const cert = path.join(dir, "cert.pem");
    const key = path.join(dir, "key.pem");
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=localhost",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
        "-keyout",
        key,
        "-out",
        cert,
      ],
      { stdio: "ignore" },
    );
    const port = await freePort();
    const proc = startProcess("npm", ["run", "--silent", "start:edge"], {
      PORT: String(port),
      DATA_DIR: path.join(dir, "tls-data"),
      GPU_NODE_URL: gpu.url,
      TLS_CERT_FILE: cert,
      TLS_KEY_FILE: key,
      DATABASE_URL: "",
    });
    try {
      const ca = readFileSync(cert);
      const get = () =>
        new Promise<{ status: number; body: string }>((resolve, reject) => {
          const req = httpsRequest({ host: "127.0.0.1", port, path: "/health", ca }, (res) => {
            let body = "";
            res.on("data", (d) => {
              body += d;
            });
            res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
          });
          req.on("error", reject);
          req.end();
        });
      const res = await waitFor(async () => get(), "https /health", 60_000, proc);
      expect(res.status).toBe(200);
      expect(JSON.parse(res.body).status).toBe("ok");
      // Plain HTTP on the TLS port does not get an answer.
      await expect(fetch(`http://127.0.0.1:${port}/health`)).rejects.toThrow();
    } finally {
      await proc.stop();
    }
  });

  it.each([
    [
      { HOST: "0.0.0.0", API_KEYS: "" },
      /^refusing to serve on a non-loopback HOST without API_KEYS/,
    ],
    [{ PORT: "http" }, /^invalid setting PORT: /],
  ])("refuses to start with %j, one clear line, exit 1", async (env, message) => {
    const proc = startProcess("npm", ["run", "--silent", "start:edge"], {
      DATA_DIR: path.join(dir, "refused"),
      ...env,
    });
    const { code } = await proc.exited;
    expect(code).toBe(1);
    const lines = proc
      .output()
      .trim()
      .split("\n")
      .filter((l) => !l.startsWith("npm warn"));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(message);
  });
});
