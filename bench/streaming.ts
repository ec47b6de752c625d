/**
 * 6. Streaming: time to first token and tokens/s of one streamed Hermes answer, read directly from
 * the GPU node's NDJSON stream (GPU_ROUTES.hermesGenerateStream) and through the edge's
 * POST /v1/chat/completions with stream: true (SSE), alternating in rounds on one connection at a
 * time, so that a noisy machine hits both alike. The difference is what the edge adds to each
 * piece (its SSE re-encoding and the extra HTTP hop).
 *
 * The GPU side is the real GPU node with the tiny models (CPU) when it serves streaming with
 * `messages`; otherwise (its streaming routes are not built yet) the stand-in GPU node, whose
 * pieces cost nothing: then the numbers measure the edge's plumbing alone, and the result's
 * target says so.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { join } from "node:path";
import { GPU_ROUTES } from "../gpu-node/contract/index.ts";
import {
  freePort,
  type Proc,
  startTsx,
  waitForHttp,
  waitForJsonLine,
} from "../test/support/process.ts";
import { startTinyGpuNode, TINY_TOKEN } from "./lib/gpu-node.ts";
import { round, summarize } from "./lib/stats.ts";
import type { Benchmark, BenchOptions, BenchResult } from "./lib/types.ts";

interface Sample {
  path: "direct" | "edge";
  round: number;
  ttft_ms: number;
  total_ms: number;
  tokens: number;
  /** (tokens - 1) / (last piece - first piece): the decode rate once streaming. */
  tokens_per_s: number;
  pieces: number;
}

const MESSAGES = [
  { role: "user", content: "Summarise the risk of holding NVDA through earnings, step by step." },
];

/** The stand-in's pace: one piece every 10 ms (100 pieces/s), like a fast small model. */
const STAND_IN_PIECE_MS = 10;

interface Timed {
  first?: number;
  last?: number;
  pieces: number;
  tokens?: number;
}

/** Reads a body line by line (NDJSON or SSE), calling `onLine` with the time each arrived. */
async function readLines(res: Response, onLine: (line: string, at: number) => void) {
  if (!res.body) throw new Error("no body");
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    const at = performance.now();
    buffer += value;
    let i = buffer.indexOf("\n");
    while (i >= 0) {
      const line = buffer.slice(0, i).trim();
      buffer = buffer.slice(i + 1);
      if (line) onLine(line, at);
      i = buffer.indexOf("\n");
    }
  }
}

async function direct(url: string, maxTokens: number): Promise<Timed & { t0: number }> {
  const t0 = performance.now();
  const res = await fetch(`${url}${GPU_ROUTES.hermesGenerateStream}`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${TINY_TOKEN}` },
    body: JSON.stringify({ messages: MESSAGES, max_tokens: maxTokens }),
  });
  if (!res.ok) throw new Error(`GPU node stream answered ${res.status}: ${await res.text()}`);
  const t: Timed & { t0: number } = { t0, pieces: 0 };
  await readLines(res, (line, at) => {
    const event = JSON.parse(line) as {
      type: string;
      text?: string;
      response?: { usage: { completion_tokens: number } };
    };
    if (event.type === "text" && event.text) {
      t.first ??= at;
      t.last = at;
      t.pieces++;
    } else if (event.type === "done") {
      t.tokens = event.response?.usage.completion_tokens;
    } else if (event.type === "error") {
      throw new Error(`GPU node stream failed: ${line}`);
    }
  });
  return t;
}

async function viaEdge(url: string, maxTokens: number): Promise<Timed & { t0: number }> {
  const t0 = performance.now();
  const res = await fetch(`${url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      model: "hermes",
      messages: MESSAGES,
      max_tokens: maxTokens,
      stream: true,
      stream_options: { include_usage: true },
    }),
  });
  if (!res.ok) throw new Error(`edge answered ${res.status}: ${await res.text()}`);
  const t: Timed & { t0: number } = { t0, pieces: 0 };
  await readLines(res, (line, at) => {
    if (!line.startsWith("data: ") || line === "data: [DONE]") return;
    const chunk = JSON.parse(line.slice(6)) as {
      error?: unknown;
      choices?: { delta: { content?: string } }[];
      usage?: { completion_tokens: number } | null;
    };
    if (chunk.error) throw new Error(`edge stream failed: ${line}`);
    if (chunk.choices?.[0]?.delta.content) {
      t.first ??= at;
      t.last = at;
      t.pieces++;
    }
    if (chunk.usage) t.tokens = chunk.usage.completion_tokens;
  });
  return t;
}

function toSample(path: Sample["path"], n: number, t: Timed & { t0: number }): Sample {
  if (t.first === undefined || t.last === undefined || t.tokens === undefined) {
    throw new Error(`${path}: the stream had no text or no usage`);
  }
  const span = (t.last - t.first) / 1000;
  return {
    path,
    round: n,
    ttft_ms: round(t.first - t.t0),
    total_ms: round(t.last - t.t0),
    tokens: t.tokens,
    tokens_per_s: span > 0 ? round((t.tokens - 1) / span, 1) : Number.NaN,
    pieces: t.pieces,
  };
}

/** The real GPU node with the tiny models, if it streams Hermes with `messages`; else undefined. */
async function tinyNodeIfStreaming(scratch: string, options: BenchOptions) {
  const node = await startTinyGpuNode(await mkdtemp(join(scratch, "gpu-")));
  try {
    await direct(node.url, 2);
    return node;
  } catch (err) {
    options.logger.warn(
      { err: (err as Error).message },
      "the GPU node does not stream Hermes with messages yet: measuring against the stand-in",
    );
    await node.stop();
    return undefined;
  }
}

export const streaming: Benchmark = {
  id: "streaming",
  title: "Streaming: time to first token and tokens/s, edge /v1 SSE vs the GPU node's stream",
  async run(options: BenchOptions): Promise<BenchResult> {
    const rounds = options.quick ? 3 : 15;
    const maxTokens = options.quick ? 16 : 64;
    const children: Proc[] = [];
    const stops: (() => Promise<void>)[] = [];
    try {
      let gpuUrl: string;
      let target: string;
      const tiny = await tinyNodeIfStreaming(options.scratch, options);
      if (tiny) {
        stops.push(() => tiny.stop());
        gpuUrl = tiny.url;
        target = "GPU node (tiny models, CPU) -> edge (Node entry, PGlite)";
      } else {
        const standIn = startTsx(["bench/servers/stand-in.ts"], {
          GPU_NODE_TOKEN: TINY_TOKEN,
          STAND_IN_STREAM_DELAY_MS: String(STAND_IN_PIECE_MS),
        });
        children.push(standIn);
        gpuUrl = (await waitForJsonLine<{ url: string }>(standIn)).url;
        target =
          "STAND-IN GPU node (the real node's streaming routes are not on this branch) -> edge (Node entry, PGlite)";
      }
      const dataDir = await mkdtemp(join(options.scratch, "edge-"));
      stops.push(() => rm(dataDir, { recursive: true, force: true }));
      const port = await freePort();
      const edge = startTsx(
        ["edge/node.ts"],
        {
          PORT: String(port),
          HOST: "127.0.0.1",
          GPU_NODE_URL: gpuUrl,
          GPU_NODE_TOKEN: TINY_TOKEN,
          DATA_DIR: dataDir,
          DATABASE_URL: "",
          JSONL_MIRROR: "false",
          API_KEYS: "",
          LOG_LEVEL: "info",
        },
        { stdout: "ignore", keepChars: 20_000 },
      );
      children.push(edge);
      const edgeUrl = `http://127.0.0.1:${port}`;
      await waitForHttp(`${edgeUrl}/health`, edge);

      // Warm both paths (JIT, connection pools, the database's first inserts, the model's first
      // prefill).
      for (let i = 0; i < 3; i++) {
        await direct(gpuUrl, maxTokens);
        await viaEdge(edgeUrl, maxTokens);
      }
      const samples: Sample[] = [];
      for (let n = 0; n < rounds; n++) {
        samples.push(toSample("direct", n, await direct(gpuUrl, maxTokens)));
        samples.push(toSample("edge", n, await viaEdge(edgeUrl, maxTokens)));
      }
      const rows = (["direct", "edge"] as const).map((path) => {
        const mine = samples.filter((s) => s.path === path);
        const ttft = summarize(mine.map((s) => s.ttft_ms));
        const rate = summarize(mine.map((s) => s.tokens_per_s).filter(Number.isFinite));
        return [
          path === "direct" ? "GPU node stream (NDJSON)" : "edge /v1 (SSE)",
          mine.length,
          round(ttft.p50, 2),
          round(ttft.p90, 2),
          round(rate.p50, 1),
          mine[0]?.tokens ?? null,
        ];
      });
      const ttftDirect = Number(rows[0]?.[2]);
      const ttftEdge = Number(rows[1]?.[2]);
      return {
        id: "streaming",
        title: this.title,
        command: "npm run bench -- --only streaming",
        target,
        tables: [
          {
            title: `One streamed Hermes answer of up to ${maxTokens} tokens, ${rounds} rounds each, alternating`,
            columns: [
              "path",
              "runs",
              "TTFT p50 (ms)",
              "TTFT p90 (ms)",
              "tokens/s after the first, p50",
              "tokens",
            ],
            rows,
          },
        ],
        notes: [
          `The edge added ${round(ttftEdge - ttftDirect, 2)} ms to the median time to first token in this run.`,
          "TTFT: from sending the request to the first piece of text. tokens/s: (tokens - 1) / " +
            "(last piece - first piece), the rate once streaming.",
          tiny
            ? "Tiny random-weight models on the CPU: a piece every ~1 ms, so this measures the edge's cost per piece (the extra hop, SSE re-encoding, recording the completion) against a very fast generator; no real model was measured."
            : `Against the stand-in, which sends one piece every ${STAND_IN_PIECE_MS} ms: the tokens/s column shows whether the edge keeps that pace, not a model's speed. The edge also records each completion (PGlite) before its last chunk; that is after the last piece, outside both columns.`,
        ],
        data: { samples, maxTokens, rounds },
      };
    } finally {
      for (const child of children.reverse()) await child.stop();
      for (const stop of stops.reverse()) await stop();
    }
  },
};
