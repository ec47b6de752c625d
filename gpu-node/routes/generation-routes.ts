/**
 * A generation operation and its streaming twin, from one description: the two OpenAPI routes
 * (same body and headers; JSON answer or NDJSON stream) and their handlers (readiness, admission
 * through the model's gate, the answer). Each route file describes one operation with it.
 */
import { createRoute } from "@hono/zod-openapi";
import type { Context } from "hono";
import type { z } from "zod";
import { STREAM_CONTENT_TYPE, StreamEvent } from "../contract/stream.ts";
import type { ModelSlot, RuntimeBase } from "../lifecycle/registry.ts";
import { recordAnswer } from "../metrics.ts";
import type { GenerateControl } from "../runtime.ts";
import type { GpuNodeEnv, GpuNodeOpenApi, RouteDeps } from "./context.ts";
import { CLIENT_GONE, errorResponses } from "./errors.ts";
import {
  type Generated,
  GenerationHeaders,
  jsonBody,
  readyModel,
  runGeneration,
  streamGeneration,
} from "./generation.ts";

const ERRORS = [400, 401, 413, 415, 422, 429, 503, 504] as const;

export interface GenerationOperation<Body extends z.ZodType, R extends RuntimeBase, T> {
  path: string;
  streamPath: string;
  tag: string;
  summary: string;
  /** What the 200 JSON answer is. */
  answer: string;
  body: Body;
  response: z.ZodType;
  /** The model's slot in the registry, and the message while it is not ready. */
  slot: (deps: RouteDeps) => ModelSlot<R>;
  notLoaded: string;
  /** Refusals that depend on the body alone, before readiness and the gate (e.g. a schema
   * outside the subset): such a request never waits for a slot. */
  check?: (body: z.output<Body>) => void;
  generate: (runtime: R, body: z.output<Body>, control: GenerateControl) => Promise<T>;
  /** The text the stream's pieces add up to. */
  textOf: (value: T) => string;
  /** The JSON answer (also the stream's `done` event). */
  respond: (c: Context<GpuNodeEnv>, generated: Generated<T>, runtime: R) => Record<string, unknown>;
}

export function registerGeneration<Body extends z.ZodType, R extends RuntimeBase, T>(
  app: GpuNodeOpenApi,
  deps: RouteDeps,
  op: GenerationOperation<Body, R, T>,
): void {
  const request = { body: jsonBody(op.body), headers: GenerationHeaders };
  const jsonRoute = createRoute({
    method: "post",
    path: op.path,
    tags: [op.tag],
    summary: op.summary,
    request,
    responses: {
      200: { description: op.answer, content: { "application/json": { schema: op.response } } },
      ...errorResponses(...ERRORS),
      ...CLIENT_GONE,
    },
  });
  const streamRoute = createRoute({
    method: "post",
    path: op.streamPath,
    tags: [op.tag],
    summary: `${op.summary}, streamed: NDJSON text events, then done (or error)`,
    request,
    responses: {
      200: {
        description: "One StreamEvent per line",
        content: { [STREAM_CONTENT_TYPE]: { schema: StreamEvent } },
      },
      ...errorResponses(...ERRORS),
      ...CLIENT_GONE,
    },
  });

  // The routes' types are generic here, so TypeScript cannot see their validated json target;
  // the framework has validated the body against op.body before the handler runs.
  const bodyOf = (c: { req: { valid: (target: never) => unknown } }) =>
    c.req.valid("json" as never) as z.output<Body>;

  app.openapi(jsonRoute, async (c) => {
    const body = bodyOf(c);
    op.check?.(body);
    const { runtime, gate } = readyModel(op.slot(deps), op.notLoaded);
    const generated = await runGeneration(c, deps, gate, (control) =>
      op.generate(runtime, body, control),
    );
    const answer = op.respond(c, generated, runtime);
    recordAnswer(deps.metrics, op.tag, answer);
    return c.json(answer, 200);
  });

  app.openapi(streamRoute, async (c) => {
    const body = bodyOf(c);
    op.check?.(body);
    const { runtime, gate } = readyModel(op.slot(deps), op.notLoaded);
    return streamGeneration(c, deps, gate, {
      work: (control) => op.generate(runtime, body, control),
      textOf: op.textOf,
      respond: (generated) => {
        const answer = op.respond(c, generated, runtime);
        recordAnswer(deps.metrics, op.tag, answer);
        return answer;
      },
    });
  });
}
