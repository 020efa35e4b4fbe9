/**
 * The codex gateway's session routes (docs/jobs.md "REST: the codex gateway's routes") over the
 * SessionCatalog (Codex's rollout files merged with agentgate's job records) and the job domain:
 *
 * - `GET /sessions?limit=&since=`: `{sessions, count}`, most recently updated first.
 * - `GET /sessions/{id}?tail_lines=&include_stderr=&include_events=`: one session with its runs.
 * - `POST /sessions/{id}/prompt`: `{prompt | messages, system_prompt, model, timeout_ms ...}`, runs
 *   `codex exec resume <thread>` and answers like `/completion`.
 * - `POST /sessions/{id}/nudge`: the same with the prompt optional (default: a "continue" nudge).
 *
 * A session is a Codex thread: `{id}` is its thread id (`codex_session_id`), or the
 * `gateway_session_id` a run answered with (the id of an agentgate job in that thread). The seed's
 * `session_id` is the thread id here, so one id names the session whichever way it started.
 */
import type { FastifyInstance } from "fastify";
import { invalidArgument } from "../../errors/gateway-error.js";
import type { JobManager } from "../../jobs/job-manager.js";
import {
  DEFAULT_NUDGE_PROMPT,
  type SessionCatalog,
  type SessionDetail,
  type SessionSummary,
} from "../../jobs/session-catalog.js";
import type { JobRecord, JobStatus } from "../../jobs/types.js";
import {
  boolQuery,
  checkSeedFields,
  GATEWAY_TAGS,
  intQuery,
  MAX_EVENTS,
  MessagesSchema,
  renderMessages,
  RunFieldsSchema,
  runResponse,
  runSpec,
  threadOfReference,
  timeQuery,
  type ChatMessage,
  type RunFields,
} from "./gateway-common.js";
import { disconnectSignal, isoOrNull, runCollecting, textOrNull } from "./job-rest-helpers.js";

export interface GatewaySessionRoutesDeps {
  jobs: JobManager;
  sessions: SessionCatalog;
}

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 200;
const DEFAULT_TAIL_LINES = 200;
const MAX_TAIL_LINES = 2000;
/** Characters of a run's prompt shown in `prompt_preview`. */
const PREVIEW_CHARS = 200;

const FollowUpSchema = {
  type: "object",
  properties: {
    prompt: { type: ["string", "null"] },
    messages: MessagesSchema,
    ...RunFieldsSchema,
  },
} as const;

interface FollowUpBody extends RunFields {
  prompt?: string | null;
  messages?: ChatMessage[];
}

interface SessionQuery {
  limit?: string;
  since?: string;
  page_token?: string;
}

interface DetailQuery {
  tail_lines?: string;
  include_stderr?: string;
  include_events?: string;
}

/** The seed's session status: `running` while a run is, `idle` after a good one, else `failed`. */
function sessionStatus(last: JobStatus | undefined): string {
  if (last === undefined || last === "succeeded") return "idle";
  return last === "pending" || last === "running" ? "running" : "failed";
}

function runStatus(s: JobStatus): string {
  if (s === "succeeded") return "completed";
  return s === "pending" || s === "running" ? "running" : "failed";
}

function sessionJson(s: SessionSummary): Record<string, unknown> {
  return {
    session_id: s.id,
    codex_session_id: s.id,
    status: sessionStatus(s.lastJobStatus),
    created_at: s.createdAt.toISOString(),
    updated_at: s.updatedAt.toISOString(),
    last_activity_at: s.updatedAt.toISOString(),
    model: textOrNull(s.model),
    objective: null,
    secure: false,
    worker_state: s.lastJobStatus === "running" ? "running" : "stopped",
    worker_pid: null,
    runs: s.jobIds.length,
    // agentgate extensions
    title: s.title,
    source: s.source,
    cwd: textOrNull(s.cwd),
    rollout_file: textOrNull(s.rolloutFile),
    job_ids: s.jobIds,
    last_agent_message: textOrNull(s.lastAgentMessage),
    message_count: s.messageCount,
    usage: s.usage
      ? {
          input_tokens: s.usage.inputTokens,
          cached_input_tokens: s.usage.cachedInputTokens,
          output_tokens: s.usage.outputTokens,
          reasoning_output_tokens: s.usage.reasoningOutputTokens,
        }
      : null,
  };
}

function runJson(j: JobRecord): Record<string, unknown> {
  const prompt = j.spec.prompt?.trim() ? j.spec.prompt : (j.spec.operatorRequest ?? "");
  return {
    run_id: j.id,
    status: runStatus(j.status),
    started_at: isoOrNull(j.startedAt),
    completed_at: isoOrNull(j.completedAt),
    prompt_preview: [...prompt].slice(0, PREVIEW_CHARS).join(""),
    timeout_ms: j.spec.timeoutMs || null,
    resume_session_id: textOrNull(j.spec.resumeThreadId ?? ""),
    // agentgate extensions
    agentgate_status: j.status,
    created_at: j.createdAt.toISOString(),
    exit_code: j.exitCode ?? null,
    duration_ms: j.durationMs,
    error: textOrNull(j.error),
    content: textOrNull(j.finalMessage),
  };
}

/** The last `n` lines of the runs' captured output, oldest run first. */
function tailLines(texts: string[], n: number): string {
  const lines = texts
    .filter((t) => t !== "")
    .join("\n")
    .split("\n");
  if (lines.at(-1) === "") lines.pop();
  return lines.slice(-n).join("\n");
}

function detailJson(
  d: SessionDetail,
  runs: JobRecord[],
  o: { tailLines: number; includeStderr: boolean; includeEvents: boolean },
): Record<string, unknown> {
  const n = o.tailLines;
  const latest = runs.at(-1);
  const body: Record<string, unknown> = {
    ...sessionJson(d),
    execution_timeout_ms: latest?.spec.timeoutMs || null,
    idle_timeout_ms: latest?.spec.idleTimeoutMs || null,
    runs: runs.map(runJson),
    stdout: {
      tail: tailLines(
        runs.map((r) => r.stdout),
        n,
      ),
      tail_lines: n,
    },
    messages: d.messages.map((m) => ({
      role: m.role,
      content: m.text,
      time: isoOrNull(m.time),
      run_id: m.jobId ?? null,
    })),
  };
  if (o.includeStderr)
    body.stderr = {
      tail: tailLines(
        runs.map((r) => r.stderr),
        n,
      ),
      tail_lines: n,
    };
  if (o.includeEvents)
    body.events = d.events.map((e) => ({ time: isoOrNull(e.time), type: e.type, payload: e.payload }));
  return body;
}

export async function registerGatewaySessionRoutes(
  app: FastifyInstance,
  deps: GatewaySessionRoutesDeps,
): Promise<void> {
  const { jobs, sessions } = deps;
  /** The thread `{id}` names, checked to exist (404 otherwise), and the model it last used. */
  const target = async (id: string) => sessions.resumeTarget(await threadOfReference(jobs, id, "session_id"));

  app.get<{ Querystring: SessionQuery }>(
    "/sessions",
    { schema: { tags: GATEWAY_TAGS, summary: "List Codex sessions (seed codex gateway)" } },
    async (request) => {
      const q = request.query;
      const limit = intQuery(q.limit, "limit", { def: DEFAULT_LIMIT, min: 1, max: MAX_LIMIT });
      const page = await sessions.list({
        pageSize: limit,
        updatedAfter: timeQuery(q.since, "since"),
        pageToken: q.page_token || undefined,
      });
      return {
        sessions: page.sessions.map(sessionJson),
        count: page.sessions.length,
        next_page_token: textOrNull(page.nextPageToken),
      };
    },
  );

  app.get<{ Params: { id: string }; Querystring: DetailQuery }>(
    "/sessions/:id",
    { schema: { tags: GATEWAY_TAGS, summary: "One Codex session with its runs" } },
    async (request) => {
      const q = request.query;
      const o = {
        tailLines: intQuery(q.tail_lines, "tail_lines", { def: DEFAULT_TAIL_LINES, min: 1, max: MAX_TAIL_LINES }),
        includeStderr: boolQuery(q.include_stderr, "include_stderr"),
        includeEvents: boolQuery(q.include_events, "include_events"),
      };
      const thread = await threadOfReference(jobs, request.params.id, "session_id");
      const detail = await sessions.get(thread, {
        tailMessages: o.tailLines,
        includeEvents: o.includeEvents,
        tailEvents: o.tailLines,
      });
      return detailJson(detail, await jobs.jobsOfThread(detail.id), o);
    },
  );

  const followUp = (route: "prompt" | "nudge") =>
    app.post<{ Params: { id: string }; Body: FollowUpBody | undefined }>(
      `/sessions/:id/${route}`,
      {
        schema: {
          tags: GATEWAY_TAGS,
          summary:
            route === "prompt"
              ? "Continue a Codex session with a prompt and wait for the answer"
              : "Nudge a Codex session to continue and wait for the answer",
          body: FollowUpSchema,
        },
      },
      async (request, reply) => {
        const b: FollowUpBody = request.body ?? {};
        checkSeedFields(b, request.log, `/sessions/{id}/${route}`);
        let prompt: string;
        if (b.messages?.length) prompt = renderMessages(b.messages);
        else if (b.prompt?.trim()) prompt = b.prompt;
        else if (route === "nudge") prompt = DEFAULT_NUDGE_PROMPT;
        else throw invalidArgument("messages or prompt is required", "prompt");

        const { threadId, model } = await target(request.params.id);
        const spec = runSpec(prompt, b);
        spec.resumeThreadId = threadId;
        if (!spec.model && model) spec.model = model;
        const run = await runCollecting(jobs, spec, disconnectSignal(reply), {
          maxEvents: MAX_EVENTS,
          cancelReason: `the /sessions/{id}/${route} caller went away`,
        });
        return runResponse(run);
      },
    );
  followUp("prompt");
  followUp("nudge");
}
