/**
 * What the codex gateway's routes share (rest/jobs/gateway-routes.ts `/completion`,
 * gateway-session-routes.ts `/sessions/...`): the seed's request fields agentgate refuses, the
 * rendering of chat messages into one prompt, the answer shape of a run, and turning the session
 * references the seed's clients hold (a Codex thread id or a gateway_session_id) into a thread.
 */
import type { FastifyBaseLogger } from "fastify";
import { GatewayError, invalidArgument } from "../../errors/gateway-error.js";
import type { JobManager } from "../../jobs/job-manager.js";
import type { JobSpec } from "../../jobs/types.js";
import { textOrNull, type RunResult } from "./job-rest-helpers.js";

export const GATEWAY_TAGS = ["codex-gateway"];
/** Codex events returned in `events`; more are dropped (and `events_truncated` says so). */
export const MAX_EVENTS = 2000;
export const THREAD_ID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

/** Seed fields refused, and why. */
const REFUSED: Record<string, string> = {
  cwd: "cwd is not accepted: every run gets its own private workspace (callers choosing the directory Codex works in was seed weakness 13)",
  workspace:
    "workspace is not accepted: every run gets its own private workspace (callers choosing the directory Codex works in was seed weakness 13)",
  env: "env is not accepted: callers may not set Codex's environment (PATH, LD_PRELOAD ...; seed weakness 13)",
  secure: "secure is not accepted: agentgate has no separate secure sessions; every route needs the AUTH_TOKEN instead",
  persistent:
    "persistent is not accepted: runs are not kept alive between requests; continue a run with resume_session_id (its codex_session_id) or session_id (its gateway_session_id)",
};
/** Seed fields accepted with no effect. */
const IGNORED = ["objective", "nudge_prompt", "nudge_interval_ms", "metadata", "json_mode"];

/** Throws a 400 for a refused seed field that is set; logs the ignored ones. */
export function checkSeedFields(body: Record<string, unknown>, log: FastifyBaseLogger, route: string): void {
  for (const [field, why] of Object.entries(REFUSED))
    if (body[field] !== undefined && body[field] !== null && body[field] !== false)
      throw invalidArgument(why, field, "unsupported_field");
  const ignored = IGNORED.filter((f) => body[f] !== undefined && body[f] !== null);
  if (ignored.length) log.info({ fields: ignored }, `${route}: fields with no effect here were ignored`);
}

type Content = string | { type?: string; text?: string }[];
export interface ChatMessage {
  role: string;
  content: Content;
}

const text = { type: ["string", "null"] } as const;
const int = { type: ["integer", "null"] } as const;

export const MessagesSchema = {
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
} as const;

/** The fields of a run that every gateway route takes (JSON types only; the job domain checks values). */
export const RunFieldsSchema = {
  system_prompt: text,
  model: text,
  timeout_ms: int,
  max_duration_ms: int,
  idle_timeout_ms: int,
} as const;

export interface RunFields {
  system_prompt?: string | null;
  model?: string | null;
  timeout_ms?: number | null;
  max_duration_ms?: number | null;
  idle_timeout_ms?: number | null;
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
export function renderMessages(messages: ChatMessage[]): string {
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

/** A free-prompt job from the run fields (system prompt, model, time limits). */
export function runSpec(prompt: string, b: RunFields): JobSpec {
  const spec: JobSpec = { prompt };
  if (b.system_prompt) spec.systemPrompt = b.system_prompt;
  if (b.model) spec.model = b.model;
  const timeout = b.timeout_ms ?? b.max_duration_ms;
  if (timeout !== null && timeout !== undefined) spec.timeoutMs = timeout;
  if (b.idle_timeout_ms !== null && b.idle_timeout_ms !== undefined) spec.idleTimeoutMs = b.idle_timeout_ms;
  return spec;
}

/** The seed's answer to a run (`/completion`, `/sessions/{id}/prompt|nudge`), plus agentgate's extensions. */
export function runResponse({ job, codexEvents, eventsTruncated }: RunResult): Record<string, unknown> {
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
    model: job.spec.model ?? null,
    // agentgate extensions
    error: textOrNull(job.error),
    agentgate_status: job.status,
    failure_reason: job.failureReason ?? null,
    events_truncated: eventsTruncated,
    session_url: `/v1/codex/jobs/${job.id}`,
  };
}

/**
 * A session reference as the seed's clients hold one: a Codex thread id (returned as given), or a
 * gateway_session_id, which is the id of an agentgate job (its thread). `param` names the field in errors.
 */
export async function threadOfReference(jobs: JobManager, ref: string, param: string): Promise<string> {
  if (THREAD_ID.test(ref)) return ref;
  let earlier;
  try {
    earlier = await jobs.get(ref);
  } catch (err) {
    if (err instanceof GatewayError && err.kind === "not_found")
      throw new GatewayError(
        "not_found",
        `${param} ${JSON.stringify(ref)} is neither a Codex session id nor a known gateway_session_id`,
        { param, code: "session_not_found" },
      );
    throw err;
  }
  if (!earlier.threadId)
    throw new GatewayError("not_found", `session ${ref} has no Codex session (its run never started one)`, {
      param,
      code: "session_not_found",
    });
  return earlier.threadId;
}

/** An integer query parameter: `def` when absent, a 400 naming it when not an integer in [min, max]. */
export function intQuery(value: unknown, name: string, o: { def: number; min: number; max: number }): number {
  if (value === undefined || value === "") return o.def;
  const n = typeof value === "string" && /^-?\d+$/.test(value) ? Number(value) : NaN;
  if (!Number.isSafeInteger(n) || n < o.min || n > o.max)
    throw invalidArgument(`${name} must be an integer from ${o.min} to ${o.max}`, name);
  return n;
}

/** A boolean query parameter as the seed parsed them (1/true/yes/on and 0/false/no/off). */
export function boolQuery(value: unknown, name: string): boolean {
  if (value === undefined || value === "") return false;
  const v = typeof value === "string" ? value.toLowerCase() : "";
  if (["1", "true", "yes", "on"].includes(v)) return true;
  if (["0", "false", "no", "off"].includes(v)) return false;
  throw invalidArgument(`${name} must be true or false`, name);
}

/** An ISO 8601 time query parameter, undefined when absent. */
export function timeQuery(value: unknown, name: string): Date | undefined {
  if (value === undefined || value === "") return undefined;
  const d = typeof value === "string" ? new Date(value) : new Date(NaN);
  if (!Number.isFinite(d.getTime())) throw invalidArgument(`${name} must be an ISO 8601 time`, name);
  return d;
}
