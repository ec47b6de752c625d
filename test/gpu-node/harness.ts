/**
 * An in-process GPU node for HTTP tests: the real app, registry and queues, with scripted runtimes,
 * a log that tests can read, and a clock they can move.
 */
import { pino } from "pino";
import { createGpuNodeApp } from "../../gpu-node/app.ts";
import { Lifecycle } from "../../gpu-node/lifecycle/lifecycle.ts";
import { createModelRegistry } from "../../gpu-node/lifecycle/registry.ts";
import { ScriptedHermes, ScriptedPhi3 } from "./scripted-runtime.ts";

export interface HarnessOptions {
  token?: string;
  hermesParallel?: number;
  hermesQueueMax?: number;
  phi3QueueMax?: number;
  maxRequestMs?: number;
  /** Mark both models ready at once (default true). */
  ready?: boolean;
}

export type LogLine = { level: number; msg: string } & Record<string, unknown>;

export function createHarness(options: HarnessOptions = {}) {
  const clock = { ms: 10_000 };
  const now = () => clock.ms;
  const logs: LogLine[] = [];
  const logger = pino({ level: "debug" }, { write: (line: string) => logs.push(JSON.parse(line)) });
  const registry = createModelRegistry({
    hermesPath: "/models/hermes/test.gguf",
    phi3Path: "/models/phi3/test",
    hermesQueueMax: options.hermesQueueMax ?? 8,
    phi3QueueMax: options.phi3QueueMax ?? 8,
    now,
  });
  const hermes = new ScriptedHermes(options.hermesParallel ?? 1);
  const phi3 = new ScriptedPhi3();
  const lifecycle = new Lifecycle();
  const app = createGpuNodeApp({
    settings: {
      token: options.token,
      maxRequestMs: options.maxRequestMs ?? 60_000,
      hermes: { systemPrompt: "SYSTEM PROMPT" },
    },
    logger,
    registry,
    lifecycle,
    version: "9.9.9-test",
    now,
    rssBytes: () => 300 * 1024 * 1024,
  });
  const markReady = () => {
    registry.hermes.setFileExists(true);
    registry.hermes.markReady(hermes);
    registry.phi3.setFileExists(true);
    registry.phi3.markReady(phi3);
  };
  if (options.ready ?? true) markReady();

  const authHeader: Record<string, string> = options.token
    ? { Authorization: `Bearer ${options.token}` }
    : {};

  /** POSTs JSON (with the token, unless headers say otherwise). */
  const post = (
    path: string,
    body: unknown,
    init: { headers?: Record<string, string>; signal?: AbortSignal } = {},
  ) =>
    app.request(
      new Request(`http://gpu-node.test${path}`, {
        method: "POST",
        headers: { "Content-Type": "application/json", ...authHeader, ...init.headers },
        body: typeof body === "string" ? body : JSON.stringify(body),
        ...(init.signal ? { signal: init.signal } : {}),
      }),
    );

  const get = (path: string, headers: Record<string, string> = {}) =>
    app.request(`http://gpu-node.test${path}`, { headers: { ...authHeader, ...headers } });

  return { app, registry, hermes, phi3, lifecycle, logs, clock, markReady, post, get };
}

/** Lets pending promise callbacks and I/O callbacks run. */
export const settle = () => new Promise((resolve) => setImmediate(resolve));
