/**
 * The codex gateway's `/triggers` CRUD (docs/jobs.md "REST: the codex gateway's routes") over the
 * TriggerScheduler; records in the seed's shape (gateway-trigger-convert.ts):
 *
 * - `GET /triggers` -> `{trigger_file: null, triggers}`; `POST /triggers` -> 201 `{trigger}`
 *   (a body `id` names the trigger, 409 when taken).
 * - `PATCH|PUT /triggers/{id}` -> `{trigger}`: the fields given change, as the seed merged them.
 * - `DELETE /triggers/{id}` -> `{trigger_id}`.
 *
 * `?trigger_file=` / `?file=` are refused: the seed resolved them as host paths to read and write
 * (weakness 14); triggers live in agentgate's database.
 */
import type { FastifyInstance, FastifyRequest } from "fastify";
import { GatewayError, invalidArgument } from "../../errors/gateway-error.js";
import type { JobManager } from "../../jobs/job-manager.js";
import type { TriggerScheduler } from "../../jobs/triggers/trigger-scheduler.js";
import { checkSeedFields, GATEWAY_TAGS, threadOfReference } from "./gateway-common.js";
import { triggerFromGateway, triggerToGateway } from "./gateway-trigger-convert.js";

export interface GatewayTriggerRoutesDeps {
  jobs: JobManager;
  triggers: TriggerScheduler;
  now?: () => Date;
}

/** Every trigger is listed (the seed had no paging); pages of the store's maximum size. */
const LIST_PAGE_SIZE = 500;

const BodySchema = { type: "object" } as const;
type Body = Record<string, unknown>;

function refuseTriggerFile(request: FastifyRequest<{ Querystring: Record<string, string | undefined> }>): void {
  for (const q of ["trigger_file", "file"])
    if (request.query[q] !== undefined)
      throw invalidArgument(
        `${q} is not accepted: triggers are kept in agentgate's database, not in files a caller names`,
        q,
        "unsupported_field",
      );
}

export async function registerGatewayTriggerRoutes(
  app: FastifyInstance,
  deps: GatewayTriggerRoutesDeps,
): Promise<void> {
  const { jobs, triggers } = deps;
  const now = deps.now ?? (() => new Date());
  const common = { tags: GATEWAY_TAGS };

  /** gateway_session_id when the body has the field: "" clears it, else the thread it names. */
  const resumeThread = async (b: Body): Promise<string | undefined> => {
    if (!("gateway_session_id" in b)) return undefined;
    const ref = b.gateway_session_id;
    if (ref === null || ref === "") return "";
    if (typeof ref !== "string") throw invalidArgument("gateway_session_id must be a string", "gateway_session_id");
    return threadOfReference(jobs, ref, "gateway_session_id");
  };

  app.get<{ Querystring: Record<string, string | undefined> }>(
    "/triggers",
    { schema: { ...common, summary: "List triggers (seed codex gateway)" } },
    async (request) => {
      refuseTriggerFile(request);
      const all = [];
      let pageToken = "";
      do {
        const page = await triggers.list({ pageSize: LIST_PAGE_SIZE, pageToken: pageToken || undefined });
        all.push(...page.triggers);
        pageToken = page.nextPageToken;
      } while (pageToken);
      const at = now();
      return { trigger_file: null, triggers: all.map((t) => triggerToGateway(t, at)) };
    },
  );

  app.post<{ Querystring: Record<string, string | undefined>; Body: Body }>(
    "/triggers",
    { schema: { ...common, summary: "Create a trigger (seed codex gateway)", body: BodySchema } },
    async (request, reply) => {
      refuseTriggerFile(request);
      const b = request.body;
      checkSeedFields(b, request.log, "/triggers");
      const idField = b.id ?? b.trigger_id;
      if (idField !== undefined && idField !== null && typeof idField !== "string")
        throw invalidArgument("id must be a string", "id");
      const id = typeof idField === "string" && idField !== "" ? idField : undefined;
      const { input } = triggerFromGateway(b, { id, resumeThreadId: await resumeThread(b) });
      const t = await triggers.create(input, { id });
      reply.code(201);
      return { trigger: triggerToGateway(t, now()) };
    },
  );

  const update = async (
    request: FastifyRequest<{ Params: { id: string }; Querystring: Record<string, string | undefined>; Body: Body }>,
  ) => {
    refuseTriggerFile(request);
    const b = request.body;
    checkSeedFields(b, request.log, "/triggers/{id}");
    const old = await triggers.get(request.params.id);
    const { input, mask } = triggerFromGateway(b, { old, resumeThreadId: await resumeThread(b) });
    if (mask.length === 0) return { trigger: triggerToGateway(old, now()) };
    const t = await triggers.update(old.id, input, mask);
    return { trigger: triggerToGateway(t, now()) };
  };
  for (const method of ["PATCH", "PUT"] as const)
    app.route<{ Params: { id: string }; Querystring: Record<string, string | undefined>; Body: Body }>({
      method,
      url: "/triggers/:id",
      schema: { ...common, summary: "Change a trigger's fields (seed codex gateway)", body: BodySchema },
      handler: update,
    });

  app.delete<{ Params: { id: string }; Querystring: Record<string, string | undefined> }>(
    "/triggers/:id",
    { schema: { ...common, summary: "Delete a trigger (seed codex gateway)" } },
    async (request) => {
      refuseTriggerFile(request);
      await triggers.delete(request.params.id);
      return { trigger_id: request.params.id };
    },
  );

  // The seed answered 405 for other methods on /triggers; Fastify's 404 would hide the route.
  app.route({
    method: ["PATCH", "PUT", "DELETE"],
    url: "/triggers",
    schema: { hide: true },
    handler: async () => {
      throw new GatewayError("invalid_argument", "a trigger id is required: /triggers/{id}", {
        param: "id",
        httpStatus: 405,
      });
    },
  });
}
