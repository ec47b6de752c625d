/**
 * End to end with real processes: `npm start` (edge + GPU node on the tiny models) on PGlite and on
 * a real Postgres database, every endpoint of the contract, the feedback loop through the record,
 * and failure of the GPU node mid-request with recovery.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import Ajv from "ajv";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { TRADE_PROPOSAL_JSON_SCHEMA } from "../../gpu-node/contract/index.ts";
import { writeTinyModels } from "../../gpu-node/models/tiny/cli.ts";
import { TEST_DATABASE_URL } from "../support/db.ts";
import { freePort, type Proc, startProcess, waitFor } from "../support/process.ts";

const validProposal = new Ajv().compile(TRADE_PROPOSAL_JSON_SCHEMA);
type Json = Record<string, unknown>;

let dir: string;
let models: { hermes: string; phi3: string };
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "e2e-"));
  models = await writeTinyModels(path.join(dir, "models"), 7);
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** A database of its own on the real server, dropped afterwards. */
async function createDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  if (!TEST_DATABASE_URL) throw new Error("TEST_DATABASE_URL is not set");
  const name = `e2e_${Date.now().toString(36)}_${Math.floor(Math.random() * 1e6)}`;
  const admin = postgres(TEST_DATABASE_URL, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(TEST_DATABASE_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const a = postgres(TEST_DATABASE_URL as string, { max: 1, onnotice: () => {} });
      await a.unsafe(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}

function serviceEnv(ports: { edge: number; gpu: number }, extra: Record<string, string>) {
  return {
    PORT: String(ports.edge),
    GPU_NODE_PORT: String(ports.gpu),
    GPU_NODE_URL: `http://127.0.0.1:${ports.gpu}`,
    GPU_NODE_TOKEN: "e2e-secret",
    HERMES_MODEL_PATH: models.hermes,
    PHI3_MODEL_DIR: models.phi3,
    HERMES_THREADS: "1",
    PHI3_THREADS: "1",
    HERMES_CTX: "512",
    DATA_DIR: path.join(dir, `data-${ports.edge}`),
    DATABASE_URL: "",
    ...extra,
  };
}

async function post(base: string, route: string, body: unknown): Promise<Response> {
  return fetch(`${base}${route}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
}

async function exportLines(base: string, kind: "log" | "feedback"): Promise<Json[]> {
  const res = await fetch(`${base}/feedback/phi3/export?kind=${kind}`);
  expect(res.status).toBe(200);
  const text = await res.text();
  return text
    .trim()
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Json);
}

const waitHealthy = (base: string, proc: Proc) =>
  waitFor(
    async () => {
      const res = await fetch(`${base}/health`);
      return res.status === 200 ? ((await res.json()) as Json) : undefined;
    },
    "/health ok",
    90_000,
    proc,
  );

const databases = TEST_DATABASE_URL ? (["pglite", "postgres"] as const) : (["pglite"] as const);

describe.each(databases)("npm start on the tiny models (%s)", (kind) => {
  it("serves the whole contract and learns from a correction", async () => {
    const db = kind === "postgres" ? await createDatabase() : undefined;
    const ports = { edge: await freePort(), gpu: await freePort() };
    const proc = startProcess("npm", ["start"], serviceEnv(ports, { DATABASE_URL: db?.url ?? "" }));
    const base = `http://127.0.0.1:${ports.edge}`;
    try {
      const health = await waitHealthy(base, proc);
      expect(health).toMatchObject({
        status: "ok",
        hermes_loaded: true,
        phi3_loaded: true,
        phi3_model_file_exists: true,
        device: "cpu",
        edge: { database: "ok", database_kind: kind, gpu_node: "ok" },
      });

      const hermes = await post(base, "/generate/", { prompt: "Hello there", max_length: 16 });
      expect(hermes.status).toBe(200);
      expect(typeof ((await hermes.json()) as Json).generated_text).toBe("string");
      const hermes2 = await post(base, "/generate/hermes/", { prompt: "Hi", max_length: 8 });
      expect(hermes2.status).toBe(200);

      for (const [route, body] of [
        ["/generate/phi3/", { prompt: "AAPL gapped down", max_length: 80 }],
        ["/generate/", { prompt: "MSFT at highs", model_id: "phi3", max_length: 80 }],
      ] as const) {
        const res = await post(base, route, body);
        expect(res.status, route).toBe(200);
        expect(validProposal(await res.json()), route).toBe(true);
        expect(res.headers.get("x-transaction-id")).toMatch(/^[0-9a-f-]{36}$/);
      }

      const first = await post(base, "/propose_trade_adjustments/", {
        prompt: "TSLA dropped 8% after a delivery miss; adjust my long?",
        max_length: 60,
      });
      expect(first.status).toBe(200);
      const proposed = (await first.json()) as Json;
      expect(validProposal(proposed.phi3_proposal)).toBe(true);
      expect(typeof proposed.hermes_assessment).toBe("string");

      const corrected = {
        ticker: "TSLA",
        action: "adjust",
        side: "LONG",
        new_stop_pct: 7.5,
        new_target_pct: null,
        confidence: 0.8,
        rationale: "Delivery miss is priced in; widen the stop.",
      };
      const fb = await post(base, "/feedback/phi3/", {
        transaction_id: proposed.transaction_id,
        feedback_type: "correction",
        feedback_content: { comment: "stop too tight" },
        corrected_proposal: corrected,
      });
      expect(fb.status).toBe(200);

      const second = await post(base, "/propose_trade_adjustments/", {
        prompt: "TSLA bounced 3%; move my stop?",
        max_length: 60,
      });
      expect(second.status).toBe(200);
      const secondTx = ((await second.json()) as Json).transaction_id;

      const log = await exportLines(base, "log");
      expect(log).toHaveLength(4);
      const last = log.find((l) => l.transaction_id === secondTx) as Json;
      expect(last.augmented_prompt).toContain(JSON.stringify(corrected));
      expect(last.augmented_prompt).toContain("TSLA dropped 8% after a delivery miss");
      expect(last.example_ids).toHaveLength(1);
      expect(typeof last.hermes_assessment).toBe("string");
      const feedback = await exportLines(base, "feedback");
      expect(feedback).toEqual([
        expect.objectContaining({
          transaction_id: proposed.transaction_id,
          feedback_type: "correction",
          corrected_proposal: corrected,
        }),
      ]);

      // Ctrl-C in a terminal signals the whole group: both services stop.
      if (proc.child.pid) process.kill(-proc.child.pid, "SIGINT");
      await proc.exited;
      await expect(fetch(`${base}/health`)).rejects.toThrow();
      await expect(fetch(`http://127.0.0.1:${ports.gpu}/v1/health`)).rejects.toThrow();
    } finally {
      await proc.stop();
      await db?.drop();
    }
  });
});

describe("the GPU node dies mid-request and comes back", () => {
  let edge: Proc;
  let gpu: Proc;
  let ports: { edge: number; gpu: number };
  let base: string;
  // A context large enough for a generation that is still running when the node is killed.
  const startGpu = () =>
    startProcess("npx", ["tsx", "gpu-node/main.ts"], serviceEnv(ports, { HERMES_CTX: "4096" }));

  beforeAll(async () => {
    ports = { edge: await freePort(), gpu: await freePort() };
    base = `http://127.0.0.1:${ports.edge}`;
    edge = startProcess("npm", ["run", "--silent", "start:edge"], serviceEnv(ports, {}));
    gpu = startGpu();
  });
  afterAll(async () => {
    await gpu?.stop();
    await edge?.stop();
  });

  it("answers 503, keeps what it acknowledged, and recovers without a restart", async () => {
    await waitHealthy(base, edge);
    const kept = await post(base, "/generate/phi3/", { prompt: "NVDA?", max_length: 60 });
    expect(kept.status).toBe(200);
    const keptTx = kept.headers.get("x-transaction-id");

    // A long generation; once the node reports it running, the node is killed under it.
    const inFlight = post(base, "/generate/hermes/", {
      prompt: "Tell a long story",
      max_length: 3900,
    });
    await waitFor(
      async () => {
        const res = await fetch(`http://127.0.0.1:${ports.gpu}/v1/health`, {
          headers: { authorization: "Bearer e2e-secret" },
        });
        const health = (await res.json()) as {
          models: { hermes: { queue?: { running: number } } };
        };
        return (health.models.hermes.queue?.running ?? 0) > 0;
      },
      "the generation to be running on the GPU node",
      10_000,
    );
    await gpu.stop("SIGKILL");
    const failed = await inFlight;
    expect(failed.status).toBe(503);
    expect(((await failed.json()) as Json).code).toBe("gpu_node_unavailable");

    const down = await post(base, "/generate/phi3/", { prompt: "x" });
    expect(down.status).toBe(503);
    const health = await fetch(`${base}/health`);
    expect(health.status).toBe(503);
    expect(((await health.json()) as { edge: Json }).edge.gpu_node).toBe("unreachable");
    const log = await exportLines(base, "log");
    expect(log.map((l) => l.transaction_id)).toEqual([keptTx]);

    gpu = startGpu();
    await waitHealthy(base, gpu);
    const again = await post(base, "/generate/phi3/", { prompt: "AMD?", max_length: 60 });
    expect(again.status).toBe(200);
    expect(validProposal(await again.json())).toBe(true);
  });
});
