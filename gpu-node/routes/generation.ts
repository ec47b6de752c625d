/**
 * Running one generation for a route: the model's gate admits it (or refuses with 429), under one
 * signal that fires on the caller's deadline, a client that goes away, or the end of the shutdown
 * grace; the ways it can stop become ServiceErrors. Both the JSON routes and the NDJSON streaming
 * routes (contract/stream.ts) go through here.
 */
import type { Context } from "hono";
import { z } from "zod";
import { ServiceError } from "../contract/errors.ts";
import { DEADLINE_HEADER, type Timings } from "../contract/index.ts";
import { STREAM_CONTENT_TYPE, type StreamEvent } from "../contract/stream.ts";
import type { ModelSlot, RuntimeBase } from "../lifecycle/registry.ts";
import { RequestAbortedError, requestSignal } from "../lifecycle/request-signal.ts";
import type { GenerateControl, GenerationTimings } from "../runtime.ts";
import type { ModelGate } from "../scheduler/gate.ts";
import { type GpuNodeEnv, type RouteDeps, round } from "./context.ts";
import { errorBody, toServiceError } from "./errors.ts";

export type Work<T> = (control: GenerateControl) => Promise<T>;

export interface Generated<T> {
  value: T;
  queueMs: number;
}

/** The caller's deadline (DEADLINE_HEADER, validated by the route), capped by the node's. */
function deadlineOf(c: Context<GpuNodeEnv>, deps: RouteDeps): number {
  const header = c.req.header(DEADLINE_HEADER);
  const asked = header === undefined ? Number.POSITIVE_INFINITY : Number(header.trim());
  return Math.min(asked, deps.settings.maxRequestMs);
}

function signalFor(c: Context<GpuNodeEnv>, deps: RouteDeps, client: AbortSignal) {
  const deadlineMs = deadlineOf(c, deps);
  return requestSignal({
    client,
    shutdown: deps.lifecycle.abortSignal,
    timeoutMs: deadlineMs - (deps.now() - c.get("startedAt")),
    deadlineMs,
  });
}

/** Why the work stopped, for the caller: the signal's reason wins over what the runtime threw. */
function stopped(error: unknown, signal: AbortSignal): unknown {
  const reason: unknown = signal.aborted ? signal.reason : undefined;
  if (!(reason instanceof RequestAbortedError)) return error;
  switch (reason.kind) {
    case "deadline":
      return new ServiceError("gpu_node_timeout", `Generation stopped: ${reason.message}.`, {
        deadline_ms: reason.deadlineMs,
      });
    case "shutdown":
      return new ServiceError("shutting_down", "The GPU node is shutting down.");
    case "client":
      return new ServiceError("request_aborted", "Client disconnected; generation stopped.");
  }
}

/** Runs the work once admitted; answers with its value or throws a ServiceError. */
export async function runGeneration<T>(
  c: Context<GpuNodeEnv>,
  deps: RouteDeps,
  gate: ModelGate,
  work: Work<T>,
): Promise<Generated<T>> {
  const abort = signalFor(c, deps, c.req.raw.signal);
  try {
    return await gate.run((signal) => work({ signal }), abort.signal);
  } catch (error) {
    throw stopped(error, abort.signal);
  } finally {
    abort.dispose();
  }
}

export function timings(
  c: Context<GpuNodeEnv>,
  deps: RouteDeps,
  runtime: GenerationTimings,
  queueMs: number,
): Timings {
  return {
    queue_ms: round(queueMs),
    prompt_ms: round(runtime.prompt_ms),
    generate_ms: round(runtime.generate_ms),
    total_ms: round(deps.now() - c.get("startedAt")),
  };
}

export interface StreamSpec<T> {
  work: Work<T>;
  /** The text the pieces add up to (Hermes' text, Phi-3's raw JSON). */
  textOf: (value: T) => string;
  /** The non-streaming route's answer, sent as the `done` event. */
  respond: (generated: Generated<T>) => Record<string, unknown>;
}

/**
 * The NDJSON answer of a streaming route. Failures before the first piece of text (queue full,
 * not loaded, prompt too long...) are thrown, so they become ordinary error responses; after it,
 * the stream ends with an `error` event instead of `done`. A client that closes the stream aborts
 * the generation, which stops its sequence within one decode step.
 */
export async function streamGeneration<T>(
  c: Context<GpuNodeEnv>,
  deps: RouteDeps,
  gate: ModelGate,
  spec: StreamSpec<T>,
): Promise<Response> {
  const cancelled = new AbortController();
  const abort = signalFor(c, deps, AbortSignal.any([c.req.raw.signal, cancelled.signal]));
  const log = c.get("log");
  let sent = "";
  let early: string[] = [];
  let write: ((event: StreamEvent) => void) | undefined;
  let markStarted!: () => void;
  const started = new Promise<void>((resolve) => {
    markStarted = resolve;
  });
  const onText = (piece: string) => {
    if (piece === "") return;
    sent += piece;
    if (write) write({ type: "text", text: piece });
    else {
      early.push(piece);
      markStarted();
    }
  };
  const settled = gate
    .run((signal) => spec.work({ signal, onText }), abort.signal)
    .then(
      (generated) => ({ ok: true as const, generated }),
      (error: unknown) => ({ ok: false as const, error: stopped(error, abort.signal) }),
    );
  const first = await Promise.race([started.then(() => undefined), settled]);
  if (first && !first.ok) {
    abort.dispose();
    throw first.error;
  }

  const encoder = new TextEncoder();
  let open = true;
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      write = (event) => {
        if (!open) return;
        try {
          controller.enqueue(encoder.encode(`${JSON.stringify(event)}\n`));
        } catch {
          open = false;
        }
      };
      for (const piece of early) write({ type: "text", text: piece });
      early = [];
      void settled.then((outcome) => {
        if (outcome.ok) {
          const full = spec.textOf(outcome.generated.value);
          // A runtime that does not stream (or not all of it) sends the rest here.
          if (full.startsWith(sent) && full.length > sent.length) {
            write?.({ type: "text", text: full.slice(sent.length) });
          } else if (!full.startsWith(sent)) {
            log.warn("streamed pieces differ from the final text");
          }
          write?.({ type: "done", response: spec.respond(outcome.generated) });
        } else {
          const failure = toServiceError(outcome.error, log);
          if (failure.code === "request_aborted") log.info({ code: failure.code }, failure.message);
          else write?.({ type: "error", ...errorBody(c.get("requestId"), failure) });
        }
        write = undefined;
        abort.dispose();
        if (open) {
          open = false;
          controller.close();
        }
      });
    },
    cancel() {
      open = false;
      cancelled.abort();
    },
  });
  return new Response(body, {
    status: 200,
    headers: { "Content-Type": STREAM_CONTENT_TYPE, "Cache-Control": "no-store" },
  });
}

/** The runtime and gate of a model that is ready, or 503 model_not_loaded with why not. */
export function readyModel<R extends RuntimeBase>(slot: ModelSlot<R>, message: string) {
  const ready = slot.ready();
  if (ready) return ready;
  throw new ServiceError("model_not_loaded", message, {
    model: slot.key,
    state: slot.state,
    reason: slot.unavailableReason(),
  });
}

/** Request headers every generation route reads (validated like the body). */
export const GenerationHeaders = z.object({
  [DEADLINE_HEADER.toLowerCase()]: z
    .string()
    .regex(/^\s*[1-9]\d{0,15}\s*$/, `${DEADLINE_HEADER} must be a positive integer (milliseconds)`)
    .optional(),
});

/** A JSON request body of the contract (required, application/json). */
export const jsonBody = <S extends z.ZodType>(schema: S) => ({
  content: { "application/json": { schema } },
  required: true,
});
