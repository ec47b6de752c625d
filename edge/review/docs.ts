/**
 * /docs: Scalar's API reference, its script served by the edge itself (from the npm package
 * @scalar/api-reference, through the runtime's StaticAssets), so the page works offline and on
 * Workers. No default fonts (they would come from Scalar's CDN).
 */
import type { OpenAPIHono } from "@hono/zod-openapi";
import { Scalar } from "@scalar/hono-api-reference";
import type { AppEnv, StaticAssets } from "../deps.ts";
import { ApiError } from "../errors.ts";

export const API_REFERENCE_JS = "/docs/assets/api-reference.js";

export function registerDocs(app: OpenAPIHono<AppEnv>, assets: StaticAssets | undefined): void {
  app.get(
    "/docs",
    Scalar({
      url: "/openapi.json",
      pageTitle: "LLM sidecar API",
      cdn: API_REFERENCE_JS,
      withDefaultFonts: false,
      telemetry: false,
      // No "Ask AI" (Scalar's hosted agent) and no promotional developer tools: offline page.
      agent: { disabled: true },
      showDeveloperTools: "never",
    }),
  );
  app.get(API_REFERENCE_JS, async (c) => {
    const body = assets ? await assets.apiReferenceJs() : undefined;
    if (body === undefined) {
      throw new ApiError("not_found", "The API reference's script is not bundled with this edge.");
    }
    c.header("content-type", "text/javascript; charset=utf-8");
    c.header("cache-control", "public, max-age=86400");
    return c.body(body);
  });
}
