/**
 * Postgres goes down under load and comes back: a private server this test starts and stops
 * itself (never the shared one). The Node edge (real HTTP, postgres-js with the DB_* limits)
 * answers 503 database_unavailable while the server is down instead of waiting for it, /health
 * answers too, the edge recovers by itself, every acknowledged proposal and feedback item is in
 * the database afterwards, and no log line carries a prompt or feedback text.
 */
import { Writable } from "node:stream";
import pino from "pino";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startEdge } from "../../edge/node-runtime/server.ts";
import {
  type PrivatePostgres,
  privatePostgresUnavailable,
  startPrivatePostgres,
} from "../support/private-postgres.ts";
import { type StandInGpuNode, startStandInGpuNode } from "../support/stand-in-gpu-node.ts";

const unavailable = privatePostgresUnavailable();
if (unavailable && process.env.CI)
  throw new Error(`db-outage test cannot run in CI: ${unavailable}`);

/** Text that must never reach a log line. */
const SECRET = "zqxsecretprompt";

interface Outcome {
  kind: "phi3" | "feedback" | "health";
  startedAt: number;
  endedAt: number;
  status: number;
  code?: string;
}

describe.skipIf(unavailable !== undefined)(
  `database outage under load, private Postgres${unavailable ? ` (skipped: ${unavailable})` : ""}`,
  () => {
    let pg: PrivatePostgres;
    let gpu: StandInGpuNode;
    let edge: Awaited<ReturnType<typeof startEdge>>;
    const logs: string[] = [];

    beforeAll(async () => {
      pg = await startPrivatePostgres();
      gpu = await startStandInGpuNode();
      const sink = new Writable({
        write(chunk, _enc, done) {
          logs.push(String(chunk));
          done();
        },
      });
      edge = await startEdge(
        {
          DATABASE_URL: pg.url,
          GPU_NODE_URL: gpu.url,
          PORT: "0",
          JSONL_MIRROR: "false",
          LOG_LEVEL: "info",
        },
        { logger: pino({ level: "info" }, sink) },
      );
    }, 120_000);

    afterAll(async () => {
      await edge?.close();
      await gpu?.close();
      await pg?.destroy();
    });

    it("answers 503 while down, /health answers, recovers, loses no acknowledged row", async () => {
      const acknowledged = { proposals: new Set<string>(), feedback: new Set<string>() };
      const outcomes: Outcome[] = [];
      let stop = false;
      let seq = 0;
      const post = (path: string, body: unknown) =>
        fetch(`${edge.url}${path}`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body),
        });
      const record = async (kind: Outcome["kind"], send: () => Promise<Response>) => {
        const startedAt = Date.now();
        const res = await send();
        const body = (await res.json()) as Record<string, unknown>;
        outcomes.push({
          kind,
          startedAt,
          endedAt: Date.now(),
          status: res.status,
          code: typeof body.code === "string" ? body.code : undefined,
        });
        return { res, body };
      };
      const worker = async () => {
        while (!stop) {
          const n = seq++;
          const { res } = await record("phi3", () =>
            post("/generate/phi3/", { prompt: `AAPL ${SECRET} ${n}?` }),
          );
          const tx = res.headers.get("x-transaction-id");
          if (res.status === 200 && tx) {
            acknowledged.proposals.add(tx);
            const marker = `${SECRET}-${n}`;
            const fb = await record("feedback", () =>
              post("/feedback/phi3/", {
                transaction_id: tx,
                feedback_type: "qualitative_comment",
                feedback_content: { note: marker },
              }),
            );
            if (fb.res.status === 200) acknowledged.feedback.add(marker);
          }
        }
      };
      const workers = Array.from({ length: 6 }, () => worker());
      const waitFor = async (what: string, ok: () => boolean, limitMs = 60_000) => {
        const until = Date.now() + limitMs;
        while (!ok()) {
          if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      };

      // Healthy first.
      await waitFor("some acknowledged feedback", () => acknowledged.feedback.size >= 10);

      // The outage: a crash (no clean shutdown), long enough to tell a bounded 503 from waiting.
      await pg.stop("immediate");
      const downAt = Date.now();
      const health = await record("health", () => fetch(`${edge.url}/health`));
      const healthBody = health.body as { edge?: { database?: string } };
      await new Promise((r) => setTimeout(r, 8_000));
      await pg.start();
      const upAt = Date.now();

      // Recovery without a restart of the edge.
      const before = acknowledged.feedback.size;
      await waitFor(
        "acknowledged feedback after recovery",
        () => acknowledged.feedback.size >= before + 10,
      );
      stop = true;
      await Promise.all(workers);

      // /health answered while the database was still down, saying so.
      expect(health.res.status).toBe(503);
      expect(healthBody.edge?.database).toBe("error");
      expect(outcomes.find((o) => o.kind === "health")?.endedAt).toBeLessThan(upAt);

      // Nothing was ever a 500, and every failure was the database's 503.
      for (const o of outcomes) {
        expect([200, 503]).toContain(o.status);
        if (o.status === 503 && o.kind !== "health") expect(o.code).toBe("database_unavailable");
      }
      // Requests that started while the server was down were answered while it was still down
      // (none waited for it to come back), except those that started in the last 3 s before it
      // did, which may legitimately see it again.
      const during = outcomes.filter(
        (o) => o.kind !== "health" && o.startedAt >= downAt && o.startedAt < upAt - 3_000,
      );
      expect(during.length).toBeGreaterThan(5);
      for (const o of during) {
        expect(
          o.endedAt,
          `${o.kind} started ${o.startedAt - downAt} ms into the outage`,
        ).toBeLessThan(upAt);
        expect(o.status).toBe(503);
      }

      // Every acknowledged row is in the database.
      const sql = postgres(pg.url, { max: 1, onnotice: () => {} });
      try {
        const txs = [...acknowledged.proposals];
        const found = await sql<{ n: number }[]>`
          select count(*)::int as n from proposals where transaction_id = any(${txs}::uuid[])`;
        expect(found[0]?.n).toBe(txs.length);
        const notes = await sql<{ note: string }[]>`
          select feedback_content->>'note' as note from feedback_items`;
        const stored = new Set(notes.map((r) => r.note));
        for (const marker of acknowledged.feedback) expect(stored.has(marker), marker).toBe(true);
      } finally {
        await sql.end();
      }

      // Database errors were logged, never with the values their queries carried.
      const dbErrors = logs.filter((l) => /database|DB_TIMEOUT|ECONNREFUSED|CONNECT/i.test(l));
      expect(dbErrors.length).toBeGreaterThan(0);
      for (const line of logs) expect(line).not.toContain(SECRET);
    }, 180_000);
  },
);
