/**
 * The codex gateway's `POST /completion` (docs/jobs.md "REST: the codex gateway's /completion") over
 * the job domain: the messages become `System:/User:/Assistant:` blocks of a free-prompt job, which
 * runs to its end while its Codex events are collected; the answer is the gateway's shape
 * (snake_case, as the seed). The job is canceled when the client goes away.
 *
 * Unlike the seed (weakness 13), callers do not choose where or how Codex runs: `cwd`, `env`, `secure`
 * and `persistent` are refused with a 400 saying why. Fields with no effect here (`objective`,
 * `nudge_prompt`, `nudge_interval_ms`) are accepted and ignored with a log line.
 */
import type { FastifyInstance } from "fastify";
import { GatewayError, invalidArgument } from "../../errors/gateway-error.js";
import type { JobManager } from "../../jobs/job-manager.js";
import type { JobSpec } from "../../jobs/types.js";
import { disconnectSignal, HIDE_FROM_OPENAPI, runCollecting, textOrNull } from "./job-rest-helpers.js";

export interface GatewayRoutesDeps {
  jobs: JobManager;
}

const TAGS = ["codex-gateway"];
/** Codex events returned in `events`; more are dropped (and `events_truncated` says so). */
const MAX_EVENTS = 2000;
const THREAD_ID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Seed fields refused, and why. */
const REFUSED: Record<string, string> = {
  cwd: "cwd is not accepted: every run gets its own private workspace (callers choosing the directory Codex works in was seed weakness 13)",
  env: "env is not accepted: callers may not set Codex's environment (PATH, LD_PRELOAD ...; seed weakness 13)",
  secure: "secure is not accepted: agentgate has no separate secure sessions; every route needs the AUTH_TOKEN instead",
  persistent:
    "persistent is not accepted: runs are not kept alive between requests; continue a run with resume_session_id (its codex_session_id) or session_id (its gateway_session_id)",
};
/** Seed fields accepted with no effect. */
const IGNORED = ["objective", "nudge_prompt", "nudge_interval_ms"];

const text = { type: ["string", "null"] } as const;
const int = { type: ["integer", "null"] } as const;

const CompletionRequestSchema = {
  type: "object",
  properties: {
    messages: {
      type: "array",
      minItems: 1,
      items: {
        type: "object",
        properties: {
          role: { type: "string" },
          content: {
            anyOf: [
              { type: "string" },
              {
                type: "array",
                items: { type: "object", properties: { type: { type: "string" }, text: { type: "string" } } },
              },
            ],
          },
        },
        required: ["role", "content"],
      },
    },
    system_prompt: text,
    model: text,
    timeout_ms: int,
    max_duration_ms: int,
    idle_timeout_ms: int,
    session_id: text,
    resume_session_id: text,
  },
  required: ["messages"],
} as const;

type Content = string | { type?: string; text?: string }[];

export interface CompletionRequestBody {
  messages: { role: string; content: Content }[];
  system_prompt?: string | null;
  model?: string | null;
  timeout_ms?: number | null;
  max_duration_ms?: number | null;
  idle_timeout_ms?: number | null;
  session_id?: string | null;
  resume_session_id?: string | null;
  [field: string]: unknown;
}

const ROLE_LABELS: Record<string, string> = {
  system: "System",
  developer: "System",
  user: "User",
  assistant: "Assistant",
  tool: "Tool",
};

/** The messages as the seed gateway rendered them: `Role: text` blocks separated by blank lines. */
export function renderMessages(messages: CompletionRequestBody["messages"]): string {
  return messages
    .map((m, i) => {
      const label = ROLE_LABELS[m.role];
      if (!label)
        throw invalidArgument(
          `messages[${i}].role must be one of ${Object.keys(ROLE_LABELS).join(", ")}`,
          `messages[${i}].role`,
        );
      const body =
        typeof m.content === "string"
          ? m.content
          : m.content
              .map((p, j) => {
                if (p.type !== undefined && p.type !== "text" && p.type !== "input_text")
                  throw invalidArgument(
                    `messages[${i}].content[${j}]: only text parts are supported`,
                    `messages[${i}].content[${j}].type`,
                  );
                return p.text ?? "";
              })
              .join("");
      return `${label}: ${body}`;
    })
    .join("\n\n");
}

export async function registerGatewayRoutes(app: FastifyInstance, deps: GatewayRoutesDeps): Promise<void> {
  const { jobs } = deps;

  /** session_id / resume_session_id: a Codex thread id, or a gateway_session_id (a job id) to continue. */
  const threadToResume = async (b: CompletionRequestBody): Promise<string | undefined> => {
    const field = b.resume_session_id ? "resume_session_id" : b.session_id ? "session_id" : undefined;
    if (!field) return undefined;
    const ref = b[field] as string;
    if (THREAD_ID.test(ref)) return ref;
    let earlier;
    try {
      earlier = await jobs.get(ref);
    } catch (err) {
      if (err instanceof GatewayError && err.kind === "not_found")
        throw new GatewayError(
          "not_found",
          `${field} ${JSON.stringify(ref)} is neither a Codex session id nor a known gateway_session_id`,
          {
            param: field,
            code: "session_not_found",
          },
        );
      throw err;
    }
    if (!earlier.threadId)
      throw invalidArgument(`session ${ref} has no Codex session to resume (it never started one)`, field);
    return earlier.threadId;
  };

  app.post<{ Body: CompletionRequestBody }>(
    "/completion",
    {
      schema: {
        hide: HIDE_FROM_OPENAPI,
        tags: TAGS,
        summary: "Run Codex on a conversation and wait for the answer (seed codex gateway)",
        body: CompletionRequestSchema,
      },
    },
    async (request, reply) => {
      const b = request.body;
      for (const [field, why] of Object.entries(REFUSED))
        if (b[field] !== undefined && b[field] !== null && b[field] !== false)
          throw invalidArgument(why, field, "unsupported_field");
      const ignored = IGNORED.filter((f) => b[f] !== undefined && b[f] !== null);
      if (ignored.length) request.log.info({ fields: ignored }, "/completion: fields with no effect here were ignored");

      const spec: JobSpec = { prompt: renderMessages(b.messages) };
      if (b.system_prompt) spec.systemPrompt = b.system_prompt;
      if (b.model) spec.model = b.model;
      const timeout = b.timeout_ms ?? b.max_duration_ms;
      if (timeout !== null && timeout !== undefined) spec.timeoutMs = timeout;
      if (b.idle_timeout_ms !== null && b.idle_timeout_ms !== undefined) spec.idleTimeoutMs = b.idle_timeout_ms;
      const resume = await threadToResume(b);
      if (resume) spec.resumeThreadId = resume;

      const { job, codexEvents, eventsTruncated } = await runCollecting(jobs, spec, disconnectSignal(reply), {
        maxEvents: MAX_EVENTS,
        cancelReason: "the /completion caller went away",
      });
      const u = job.usage;
      return {
        gateway_session_id: job.id,
        run_id: job.id,
        codex_session_id: textOrNull(job.threadId),
        status: job.status === "succeeded" ? "completed" : "failed",
        content: job.finalMessage,
        tool_calls: [],
        events: codexEvents,
        usage: {
          input_tokens: u?.inputTokens ?? 0,
          output_tokens: u?.outputTokens ?? 0,
          cached_input_tokens: u?.cachedInputTokens ?? 0,
          reasoning_output_tokens: u?.reasoningOutputTokens ?? 0,
        },
        model: spec.model ?? null,
        // agentgate extensions
        error: textOrNull(job.error),
        agentgate_status: job.status,
        failure_reason: job.failureReason ?? null,
        events_truncated: eventsTruncated,
        session_url: `/v1/codex/jobs/${job.id}`,
      };
    },
  );
}
