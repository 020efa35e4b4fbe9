/**
 * REST for the seed's clients (docs/endpoints.md "REST"): `GET /endpoints` (cached endpoints, `?q=`
 * ranks by similarity), `POST /endpoints` (the fields of DreamEndpoint; 202 while it is dreamed, 200
 * for a cache hit), `GET /endpoints/{id}`, `DELETE /endpoints/{id}`. Bodies and answers are the
 * EndpointService messages in their JSON form with proto field names, so REST and RPC agree.
 */
import { fromJson, type JsonValue } from "@bufbuild/protobuf";
import type { FastifyInstance } from "fastify";
import { DreamEndpointRequestSchema } from "../../../gen/agentgate/v1/endpoint_service_pb.js";
import type { EndpointCatalog } from "../../endpoints/endpoint-catalog.js";
import { ENDPOINT_STATUSES, type EndpointStatus } from "../../endpoints/types.js";
import { GatewayError, invalidArgument } from "../../errors/gateway-error.js";
import { endpointJson, toDreamRequest } from "../../rpc/endpoint-convert.js";

const TAGS = ["endpoints"];

interface ListQuery {
  q?: string;
  status?: string | string[];
  method?: string;
  label?: string | string[];
  limit?: string;
  page_token?: string;
  min_similarity?: string;
}

export async function registerEndpointRoutes(app: FastifyInstance, deps: { catalog: EndpointCatalog }): Promise<void> {
  const { catalog } = deps;

  app.get<{ Querystring: ListQuery }>(
    "/endpoints",
    { schema: { tags: TAGS, summary: "List dreamed endpoints (?q= ranks them by similarity to a description)" } },
    async (request) => {
      const q = request.query;
      const page = await catalog.list({
        query: typeof q.q === "string" ? q.q : "",
        statuses: list(q.status).map(toStatus),
        method: typeof q.method === "string" ? q.method : "",
        labels: Object.fromEntries(list(q.label).map(toLabel)),
        pageSize: q.limit === undefined ? 0 : int(q.limit, "limit", 1, 500),
        pageToken: typeof q.page_token === "string" ? q.page_token : "",
        minSimilarity: q.min_similarity === undefined ? 0 : fraction(q.min_similarity, "min_similarity"),
      });
      return {
        object: "list",
        data: page.endpoints.map((e) => endpointJson(e, false)),
        next_page_token: page.nextPageToken || null,
        has_more: page.nextPageToken !== "",
      };
    },
  );

  app.post<{ Body: unknown }>(
    "/endpoints",
    {
      schema: {
        tags: TAGS,
        summary: "Dream an endpoint: answered from the semantic cache, or queued as a Codex job (202)",
        body: { type: "object" },
      },
    },
    async (request, reply) => {
      const endpoint = await catalog.dream(toDreamRequest(parseDreamBody(request.body)));
      return reply.code(endpoint.cacheHit ? 200 : 202).send(endpointJson(endpoint));
    },
  );

  app.get<{ Params: { id: string } }>(
    "/endpoints/:id",
    { schema: { tags: TAGS, summary: "One dreamed endpoint with its versions" } },
    async (request) => endpointJson(await catalog.get(request.params.id)),
  );

  app.delete<{ Params: { id: string } }>(
    "/endpoints/:id",
    { schema: { tags: TAGS, summary: "Delete a dreamed endpoint (its dreaming job is canceled)" } },
    async (request) => {
      await catalog.delete(request.params.id);
      return { id: request.params.id, object: "endpoint", deleted: true };
    },
  );
}

/** The body as a DreamEndpointRequest; `ttl` may also be a number of seconds. */
function parseDreamBody(body: unknown) {
  if (typeof body !== "object" || body === null || Array.isArray(body))
    throw invalidArgument("the request body must be a JSON object");
  const json = { ...(body as Record<string, unknown>) };
  if (typeof json.ttl === "number") json.ttl = `${json.ttl}s`;
  try {
    return fromJson(DreamEndpointRequestSchema, json as JsonValue);
  } catch (err) {
    throw new GatewayError("invalid_argument", `invalid endpoint request: ${(err as Error).message}`);
  }
}

const list = (v: string | string[] | undefined): string[] =>
  v === undefined ? [] : (Array.isArray(v) ? v : [v]).flatMap((s) => s.split(",")).filter(Boolean);

function toStatus(s: string): EndpointStatus {
  const v = s.trim().toLowerCase() as EndpointStatus;
  if (!ENDPOINT_STATUSES.includes(v))
    throw invalidArgument(`status must be one of ${ENDPOINT_STATUSES.join(", ")}`, "status");
  return v;
}

function toLabel(s: string): [string, string] {
  const i = s.indexOf(":");
  if (i <= 0) throw invalidArgument("label filters are key:value", "label");
  return [s.slice(0, i), s.slice(i + 1)];
}

function int(s: string, name: string, min: number, max: number): number {
  const n = Number(s);
  if (!Number.isInteger(n) || n < min || n > max)
    throw invalidArgument(`${name} must be a whole number from ${min} to ${max}`, name);
  return n;
}

function fraction(s: string, name: string): number {
  const n = Number(s);
  if (!Number.isFinite(n) || n < 0 || n > 1) throw invalidArgument(`${name} must be between 0 and 1`, name);
  return n;
}
