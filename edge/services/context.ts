/**
 * The per-request ServiceContext. Cheap by design (it is built for every request): no timer and
 * no combined AbortSignal unless something asks for `signal`. The GPU client takes the client's
 * own signal and the request's deadline and arms one timer per call for whichever ends first.
 */
import type { Context } from "hono";
import type { AppDeps, AppEnv, ServiceContext } from "../deps.ts";

export function requestContext(
  c: Context<AppEnv>,
  deps: AppDeps,
  newId: () => string,
): ServiceContext {
  const { settings } = deps;
  const deadline = Date.now() + settings.REQUEST_TIMEOUT_MS;
  const raw = c.req.raw;
  let combined: AbortSignal | undefined;
  return {
    db: typeof deps.db === "function" ? deps.db(c) : deps.db,
    gpu: deps.gpu,
    logger: deps.logger,
    clock: deps.clock,
    mirror: deps.mirror,
    settings,
    requestId: c.get("requestId"),
    deadline,
    get clientSignal() {
      return raw.signal;
    },
    get signal() {
      if (!combined) {
        const controller = new AbortController();
        const left = Math.max(0, deadline - Date.now());
        const timer = setTimeout(() => {
          const reason = new Error("request deadline reached");
          reason.name = "TimeoutError";
          controller.abort(reason);
        }, left);
        (timer as { unref?: () => void }).unref?.();
        const client = raw.signal;
        if (client.aborted) controller.abort(client.reason);
        else
          client.addEventListener("abort", () => controller.abort(client.reason), { once: true });
        combined = controller.signal;
      }
      return combined;
    },
    newId,
    ...(deps.metrics ? { metrics: deps.metrics } : {}),
  };
}
