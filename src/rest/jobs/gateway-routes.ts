/**
 * The codex gateway's `POST /completion` (docs/jobs.md "REST: the codex gateway's routes") over
 * the job domain: the messages become `System:/User:/Assistant:` blocks of a free-prompt job, which
 * runs to its end while its Codex events are collected; the answer is the gateway's shape
 * (snake_case, as the seed). The job is canceled when the client goes away.
 *
 * Unlike the seed (weakness 13), callers do not choose where or how Codex runs: `cwd`, `env`, `secure`
 * and `persistent` are refused with a 400 saying why. Fields with no effect here (`objective`,
 * `nudge_prompt`, `nudge_interval_ms`) are accepted and ignored with a log line.
 */
import type { FastifyInstance } from "fastify";
import type { JobManager } from "../../jobs/job-manager.js";
import {
  checkSeedFields,
  GATEWAY_TAGS,
  MAX_EVENTS,
  MessagesSchema,
  renderMessages,
  RunFieldsSchema,
  runResponse,
  runSpec,
  threadOfReference,
  type ChatMessage,
  type RunFields,
} from "./gateway-common.js";
import { disconnectSignal, runCollecting } from "./job-rest-helpers.js";

export interface GatewayRoutesDeps {
  jobs: JobManager;
}

const CompletionRequestSchema = {
  type: "object",
  properties: {
    messages: MessagesSchema,
    ...RunFieldsSchema,
    session_id: { type: ["string", "null"] },
    resume_session_id: { type: ["string", "null"] },
  },
  required: ["messages"],
} as const;

export interface CompletionRequestBody extends RunFields {
  messages: ChatMessage[];
  session_id?: string | null;
  resume_session_id?: string | null;
}

export async function registerGatewayRoutes(app: FastifyInstance, deps: GatewayRoutesDeps): Promise<void> {
  const { jobs } = deps;

  app.post<{ Body: CompletionRequestBody }>(
    "/completion",
    {
      schema: {
        tags: GATEWAY_TAGS,
        summary: "Run Codex on a conversation and wait for the answer (seed codex gateway)",
        body: CompletionRequestSchema,
      },
    },
    async (request, reply) => {
      const b = request.body;
      checkSeedFields(b, request.log, "/completion");
      const spec = runSpec(renderMessages(b.messages), b);
      // session_id / resume_session_id: a Codex thread id, or a gateway_session_id to continue.
      const field = b.resume_session_id ? "resume_session_id" : b.session_id ? "session_id" : undefined;
      if (field) spec.resumeThreadId = await threadOfReference(jobs, b[field] as string, field);

      const run = await runCollecting(jobs, spec, disconnectSignal(reply), {
        maxEvents: MAX_EVENTS,
        cancelReason: "the /completion caller went away",
      });
      return runResponse(run);
    },
  );
}
