/**
 * Serving dreamed endpoints: `ANY /dream/<path>` runs the READY endpoint that matches (404 when none
 * does, 400 for a request its operation refuses, 502/504 when the handler fails or times out) and
 * `GET /dream/openapi.json` documents every served endpoint. Answers carry `agentgate-endpoint-id`,
 * `agentgate-endpoint-version` and, for an endpoint past its expiry, `agentgate-endpoint-stale: true`.
 */
import type { FastifyInstance } from "fastify";
import { isStale } from "../../endpoints/endpoint-catalog.js";
import type { EndpointInvoker } from "../../endpoints/endpoint-invoker.js";
import type { EndpointStore } from "../../endpoints/endpoint-store.js";
import { buildOpenApiDocument } from "../../endpoints/openapi-check.js";
import { VERSION } from "../../version.js";
import { disconnectSignal } from "../jobs/job-rest-helpers.js";

export const DREAM_PREFIX = "/dream";

export async function registerDreamRoutes(
  app: FastifyInstance,
  deps: { invoker: EndpointInvoker; store: EndpointStore },
): Promise<void> {
  app.get("/dream/openapi.json", { schema: { hide: true } }, async () => {
    const served = await deps.store.served();
    return buildOpenApiDocument(
      served.flatMap((e) =>
        e.served.operation
          ? [
              {
                id: e.id,
                method: e.method,
                path: e.path,
                description: e.description,
                operation: e.served.operation,
                stale: isStale(e),
              },
            ]
          : [],
      ),
      { title: "agentgate dreamed endpoints", version: VERSION, serverUrl: DREAM_PREFIX },
    );
  });

  app.route<{ Querystring: Record<string, string | string[]> }>({
    method: ["GET", "POST", "PUT", "PATCH", "DELETE"],
    url: "/dream/*",
    schema: { hide: true },
    handler: async (request, reply) => {
      const rawPath = request.url.split("?")[0]!.slice(DREAM_PREFIX.length);
      const result = await deps.invoker.invoke(
        {
          method: request.method,
          path: rawPath,
          query: request.query ?? {},
          headers: request.headers,
          body: request.body === null || request.body === "" ? undefined : request.body,
        },
        disconnectSignal(reply),
      );
      reply
        .code(result.status)
        .header("agentgate-endpoint-id", result.endpointId)
        .header("agentgate-endpoint-version", String(result.version))
        .header("server-timing", `handler;dur=${result.handlerMs.toFixed(1)}`);
      if (result.stale) reply.header("agentgate-endpoint-stale", "true");
      return reply.type("application/json").send(JSON.stringify(result.body));
    },
  });
}
