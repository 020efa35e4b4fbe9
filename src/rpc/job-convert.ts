/**
 * agentgate.v1 JobService messages <-> the job domain's types (src/jobs/types.ts, session-catalog.ts).
 * Enum values outside the known set, and UNSPECIFIED where a value is required, are invalid_argument.
 */
import { create, fromJson, toJson, type JsonObject, type JsonValue } from "@bufbuild/protobuf";
import { timestampDate, timestampFromDate, ValueSchema, type Timestamp, type Value } from "@bufbuild/protobuf/wkt";
import { SandboxDriver as PbSandbox } from "../../gen/agentgate/v1/agent_service_pb.js";
import { Role as PbRole } from "../../gen/agentgate/v1/completion_service_pb.js";
import {
  CallbackAttemptSchema,
  CodexAgentMessageSchema,
  CodexCommandExecutionSchema,
  CodexEventSchema,
  CodexEventType as PbEventType,
  CodexFileChangeEntrySchema,
  CodexFileChangeKind as PbChangeKind,
  CodexFileChangeSchema,
  CodexItemStatus as PbItemStatus,
  CodexMcpToolCallSchema,
  CodexReasoningSchema,
  CodexSandboxPolicy as PbSandboxPolicy,
  CodexTodoItemSchema,
  CodexTodoListSchema,
  CodexWebSearchSchema,
  JobContextFileSchema,
  JobEventSchema,
  JobFailureReason as PbFailureReason,
  JobMode as PbMode,
  JobOutputChunkSchema,
  JobOutputStream as PbStream,
  JobSchema,
  JobSpecSchema,
  JobStatus as PbStatus,
  JobStatusChangeSchema,
  JobUsageSchema,
  SessionEventSchema,
  SessionMessageSchema,
  SessionSchema,
  SessionSource as PbSessionSource,
  type CodexEvent as PbCodexEvent,
  type Job as PbJob,
  type JobEvent as PbJobEvent,
  type JobSpec as PbJobSpec,
  type JobUsage as PbUsage,
  type Session as PbSession,
} from "../../gen/agentgate/v1/job_service_pb.js";
import { invalidArgument } from "../errors/gateway-error.js";
import type { CodexSessionRole } from "../jobs/codex-sessions.js";
import type { SessionDetail, SessionSource, SessionSummary } from "../jobs/session-catalog.js";
import type {
  CallbackAttempt,
  CodexSandboxPolicy,
  JobFailureReason,
  JobMode,
  JobRecord,
  JobSpec,
  JobStatus,
  JobUsage,
  SequencedJobEvent,
} from "../jobs/types.js";
import type { SandboxDriverName } from "../sandbox/types.js";
import { pbLimits, toLimits } from "./agent-convert.js";

/** A two-way table between a protobuf enum and domain strings. */
function table<P extends number, D extends string>(pairs: [P, D][]) {
  const toDomain = new Map<number, D>(pairs);
  const toPb = new Map<D, P>(pairs.map(([p, d]) => [d, p]));
  return {
    domain: (p: P): D | undefined => toDomain.get(p),
    pb: (d: D): P | undefined => toPb.get(d),
  };
}

const MODES = table<PbMode, JobMode>([
  [PbMode.WORKFLOW, "workflow"],
  [PbMode.JOB, "job"],
  [PbMode.JOB_WITH_BUNDLE, "job-with-bundle"],
  [PbMode.WORKFLOW_WITH_JOBS, "workflow-with-jobs"],
]);
const POLICIES = table<PbSandboxPolicy, CodexSandboxPolicy>([
  [PbSandboxPolicy.READ_ONLY, "read-only"],
  [PbSandboxPolicy.WORKSPACE_WRITE, "workspace-write"],
  [PbSandboxPolicy.DANGER_FULL_ACCESS, "danger-full-access"],
]);
const SANDBOXES = table<PbSandbox, SandboxDriverName>([
  [PbSandbox.NONE, "none"],
  [PbSandbox.BWRAP, "bwrap"],
  [PbSandbox.NSJAIL, "nsjail"],
]);
const STATUSES = table<PbStatus, JobStatus>([
  [PbStatus.PENDING, "pending"],
  [PbStatus.RUNNING, "running"],
  [PbStatus.SUCCEEDED, "succeeded"],
  [PbStatus.FAILED, "failed"],
  [PbStatus.CANCELED, "canceled"],
  [PbStatus.INTERRUPTED, "interrupted"],
]);
const FAILURES = table<PbFailureReason, JobFailureReason>([
  [PbFailureReason.EXIT_CODE, "exit_code"],
  [PbFailureReason.TIMEOUT, "timeout"],
  [PbFailureReason.IDLE_TIMEOUT, "idle_timeout"],
  [PbFailureReason.TURN_FAILED, "turn_failed"],
  [PbFailureReason.INVALID_OUTPUT, "invalid_output"],
  [PbFailureReason.SPAWN_FAILED, "spawn_failed"],
  [PbFailureReason.RESOURCE_LIMIT, "resource_limit"],
]);
const SOURCES = table<PbSessionSource, SessionSource>([
  [PbSessionSource.CODEX_SESSION_FILE, "codex_session_file"],
  [PbSessionSource.AGENTGATE_JOB, "agentgate_job"],
]);
const EVENT_TYPES = table<PbEventType, string>([
  [PbEventType.THREAD_STARTED, "thread.started"],
  [PbEventType.TURN_STARTED, "turn.started"],
  [PbEventType.TURN_COMPLETED, "turn.completed"],
  [PbEventType.TURN_FAILED, "turn.failed"],
  [PbEventType.ITEM_STARTED, "item.started"],
  [PbEventType.ITEM_UPDATED, "item.updated"],
  [PbEventType.ITEM_COMPLETED, "item.completed"],
  [PbEventType.ERROR, "error"],
]);
const ITEM_STATUSES = table<PbItemStatus, string>([
  [PbItemStatus.IN_PROGRESS, "in_progress"],
  [PbItemStatus.COMPLETED, "completed"],
  [PbItemStatus.FAILED, "failed"],
  [PbItemStatus.DECLINED, "declined"],
]);
const CHANGE_KINDS = table<PbChangeKind, string>([
  [PbChangeKind.ADD, "add"],
  [PbChangeKind.DELETE, "delete"],
  [PbChangeKind.UPDATE, "update"],
]);
const ROLES: Record<CodexSessionRole, PbRole> = {
  user: PbRole.USER,
  assistant: PbRole.ASSISTANT,
  system: PbRole.SYSTEM,
  developer: PbRole.SYSTEM,
};

// --- requests -> domain ---

/** An optional enum: UNSPECIFIED is undefined, an unknown value is invalid_argument. */
function optionalEnum<P extends number, D extends string>(
  t: ReturnType<typeof table<P, D>>,
  p: P,
  param: string,
): D | undefined {
  if (p === 0) return undefined;
  const d = t.domain(p);
  if (!d) throw invalidArgument(`${param} is not a known value`, param);
  return d;
}

export function toJobSpec(s: PbJobSpec | undefined): JobSpec {
  if (!s) return {};
  const spec: JobSpec = {};
  const mode = optionalEnum(MODES, s.mode, "spec.mode");
  if (mode) spec.mode = mode;
  if (s.operatorRequest) spec.operatorRequest = s.operatorRequest;
  if (s.metadataSummary) spec.metadataSummary = s.metadataSummary;
  if (s.additionalNotes) spec.additionalNotes = s.additionalNotes;
  if (s.timeoutMs) spec.timeoutMs = s.timeoutMs;
  if (s.contextFiles.length) spec.contextFiles = s.contextFiles.map((f) => ({ path: f.path, contents: f.contents }));
  if (s.prompt) spec.prompt = s.prompt;
  if (s.systemPrompt) spec.systemPrompt = s.systemPrompt;
  if (s.model) spec.model = s.model;
  const policy = optionalEnum(POLICIES, s.sandboxPolicy, "spec.sandbox_policy");
  if (policy) spec.sandboxPolicy = policy;
  const sandbox = optionalEnum(SANDBOXES, s.sandbox, "spec.sandbox");
  if (sandbox) spec.sandbox = sandbox;
  if (s.networkAllowed) spec.networkAllowed = true;
  if (s.limits) spec.limits = toLimits(s.limits);
  if (s.execOptions.length) spec.execOptions = [...s.execOptions];
  if (s.outputSchema) spec.outputSchema = s.outputSchema as Record<string, unknown>;
  if (s.callbackUrl) spec.callbackUrl = s.callbackUrl;
  if (Object.keys(s.labels).length) spec.labels = { ...s.labels };
  if (s.resumeThreadId) spec.resumeThreadId = s.resumeThreadId;
  if (s.idleTimeoutMs) spec.idleTimeoutMs = s.idleTimeoutMs;
  return spec;
}

/** Whether a JobSpec message carries anything (SubmitJob with retry_of_job_id wants none). */
export function isEmptySpec(s: PbJobSpec | undefined): boolean {
  if (!s) return true;
  const spec = toJobSpec(s);
  return Object.keys(spec).length === 0;
}

export function pbStatus(s: JobStatus): PbStatus {
  return STATUSES.pb(s) ?? PbStatus.UNSPECIFIED;
}

export function toStatuses(statuses: PbStatus[]): JobStatus[] {
  return statuses.map((s) => {
    const d = STATUSES.domain(s);
    if (!d)
      throw invalidArgument(
        "statuses must be PENDING, RUNNING, SUCCEEDED, FAILED, CANCELED or INTERRUPTED",
        "statuses",
      );
    return d;
  });
}

export function toSessionSource(p: PbSessionSource): SessionSource | undefined {
  return optionalEnum(SOURCES, p, "source");
}

export function toDate(t: Timestamp | undefined): Date | undefined {
  return t ? timestampDate(t) : undefined;
}

// --- domain -> responses ---

const ts = (d: Date | undefined) => (d ? timestampFromDate(d) : undefined);

export function pbUsage(u: JobUsage | undefined): PbUsage | undefined {
  if (!u) return undefined;
  return create(JobUsageSchema, {
    inputTokens: BigInt(u.inputTokens),
    cachedInputTokens: BigInt(u.cachedInputTokens),
    cacheWriteInputTokens: BigInt(u.cacheWriteInputTokens),
    outputTokens: BigInt(u.outputTokens),
    reasoningOutputTokens: BigInt(u.reasoningOutputTokens),
  });
}

export function pbJobSpec(s: JobSpec): PbJobSpec {
  return create(JobSpecSchema, {
    mode: (s.mode && MODES.pb(s.mode)) || PbMode.UNSPECIFIED,
    operatorRequest: s.operatorRequest ?? "",
    metadataSummary: s.metadataSummary ?? "",
    additionalNotes: s.additionalNotes ?? "",
    timeoutMs: s.timeoutMs ?? 0,
    contextFiles: (s.contextFiles ?? []).map((f) => create(JobContextFileSchema, f)),
    prompt: s.prompt ?? "",
    systemPrompt: s.systemPrompt ?? "",
    model: s.model ?? "",
    sandboxPolicy: (s.sandboxPolicy && POLICIES.pb(s.sandboxPolicy)) || PbSandboxPolicy.UNSPECIFIED,
    sandbox: (s.sandbox && SANDBOXES.pb(s.sandbox)) || PbSandbox.UNSPECIFIED,
    networkAllowed: s.networkAllowed ?? false,
    limits: s.limits && pbLimits(s.limits),
    execOptions: s.execOptions ?? [],
    outputSchema: s.outputSchema as JsonObject | undefined,
    callbackUrl: s.callbackUrl ?? "",
    labels: s.labels ?? {},
    resumeThreadId: s.resumeThreadId ?? "",
    idleTimeoutMs: s.idleTimeoutMs ?? 0,
  });
}

/** Any JSON value as a google.protobuf.Value (undefined stays unset). */
export function pbValue(v: unknown): Value | undefined {
  if (v === undefined) return undefined;
  return fromJson(ValueSchema, v as JsonValue);
}

export function valueJson(v: Value | undefined): JsonValue | undefined {
  return v ? toJson(ValueSchema, v) : undefined;
}

/** One callback delivery attempt (jobs and dreamed endpoints record them alike). */
export function pbCallbackAttempt(a: CallbackAttempt) {
  return create(CallbackAttemptSchema, {
    attempt: a.attempt,
    event: a.event,
    attemptedAt: ts(a.attemptedAt),
    httpStatus: a.httpStatus,
    error: a.error,
    delivered: a.delivered,
    durationMs: Math.max(0, Math.round(a.durationMs)),
    nextAttemptAt: ts(a.nextAttemptAt),
  });
}

export function pbJob(j: JobRecord): PbJob {
  return create(JobSchema, {
    id: j.id,
    status: STATUSES.pb(j.status) ?? PbStatus.UNSPECIFIED,
    spec: pbJobSpec(j.spec),
    createdAt: ts(j.createdAt),
    startedAt: ts(j.startedAt),
    completedAt: ts(j.completedAt),
    updatedAt: ts(j.updatedAt),
    durationMs: BigInt(Math.max(0, Math.round(j.durationMs))),
    exitCode: j.exitCode,
    stdout: j.stdout,
    stderr: j.stderr,
    stdoutTruncated: j.stdoutTruncated,
    stderrTruncated: j.stderrTruncated,
    output: pbValue(j.output),
    summary: j.summary,
    finalMessage: j.finalMessage,
    error: j.error,
    failureReason: (j.failureReason && FAILURES.pb(j.failureReason)) || PbFailureReason.UNSPECIFIED,
    usage: pbUsage(j.usage),
    threadId: j.threadId,
    workspace: j.workspace,
    outputPath: j.outputPath,
    replicaAddress: j.replicaAddress,
    triggerId: j.triggerId,
    retryOfJobId: j.retryOfJobId,
    callbackAttempts: j.callbackAttempts.map(pbCallbackAttempt),
    queuePosition: j.queuePosition,
  });
}

export function pbJobEvent(e: SequencedJobEvent): PbJobEvent {
  const base = { sequence: BigInt(e.sequence), time: timestampFromDate(e.time) };
  const ev = e.event;
  switch (ev.type) {
    case "status":
      return create(JobEventSchema, {
        ...base,
        event: {
          case: "statusChange",
          value: create(JobStatusChangeSchema, {
            previousStatus: STATUSES.pb(ev.previous) ?? PbStatus.UNSPECIFIED,
            status: STATUSES.pb(ev.status) ?? PbStatus.UNSPECIFIED,
            job: pbJob({ ...ev.job, stdout: "", stderr: "" }),
          }),
        },
      });
    case "output":
      return create(JobEventSchema, {
        ...base,
        event: {
          case: "output",
          value: create(JobOutputChunkSchema, {
            stream: ev.stream === "stdout" ? PbStream.STDOUT : PbStream.STDERR,
            offset: BigInt(ev.offset),
            data: ev.data,
          }),
        },
      });
    case "codex":
      return create(JobEventSchema, { ...base, event: { case: "codex", value: pbCodexEvent(ev.event.raw) } });
  }
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === "string" ? v : "");
const count = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? Math.floor(v) : 0);
const itemStatus = (v: unknown) => ITEM_STATUSES.pb(str(v)) ?? PbItemStatus.UNSPECIFIED;

/** One raw `codex exec --json` object as a CodexEvent: the type, the typed payload, and the raw JSON. */
export function pbCodexEvent(raw: Json): PbCodexEvent {
  const type = EVENT_TYPES.pb(str(raw.type)) ?? PbEventType.UNSPECIFIED;
  const item = isObject(raw.item) ? raw.item : undefined;
  return create(CodexEventSchema, {
    type,
    itemId: item ? str(item.id) : "",
    payload: payloadOf(raw, item),
    raw: raw as JsonObject,
  });
}

function payloadOf(raw: Json, item: Json | undefined): PbCodexEvent["payload"] {
  switch (raw.type) {
    case "thread.started":
      return { case: "threadId", value: str(raw.thread_id) };
    case "turn.completed": {
      const u = isObject(raw.usage) ? raw.usage : {};
      return {
        case: "usage",
        value: pbUsage({
          inputTokens: count(u.input_tokens),
          cachedInputTokens: count(u.cached_input_tokens),
          cacheWriteInputTokens: count(u.cache_write_input_tokens),
          outputTokens: count(u.output_tokens),
          reasoningOutputTokens: count(u.reasoning_output_tokens),
        })!,
      };
    }
    case "turn.failed":
      return { case: "errorMessage", value: errorText(raw.error) || "the Codex turn failed" };
    case "error":
      return { case: "errorMessage", value: str(raw.message) };
  }
  if (!item) return { case: undefined };
  switch (item.type) {
    case "agent_message":
      return { case: "agentMessage", value: create(CodexAgentMessageSchema, { text: str(item.text) }) };
    case "reasoning":
      return { case: "reasoning", value: create(CodexReasoningSchema, { text: str(item.text) }) };
    case "command_execution":
      return {
        case: "commandExecution",
        value: create(CodexCommandExecutionSchema, {
          command: str(item.command),
          aggregatedOutput: str(item.aggregated_output),
          exitCode: typeof item.exit_code === "number" && Number.isInteger(item.exit_code) ? item.exit_code : undefined,
          status: itemStatus(item.status),
        }),
      };
    case "file_change":
      return {
        case: "fileChange",
        value: create(CodexFileChangeSchema, {
          changes: (Array.isArray(item.changes) ? item.changes : []).filter(isObject).map((c) =>
            create(CodexFileChangeEntrySchema, {
              path: str(c.path),
              kind: CHANGE_KINDS.pb(str(c.kind)) ?? PbChangeKind.UNSPECIFIED,
            }),
          ),
          status: itemStatus(item.status),
        }),
      };
    case "mcp_tool_call":
      return {
        case: "mcpToolCall",
        value: create(CodexMcpToolCallSchema, {
          server: str(item.server),
          tool: str(item.tool),
          arguments: item.arguments === undefined ? undefined : pbValue(item.arguments),
          result: item.result === undefined || item.result === null ? undefined : pbValue(item.result),
          error: errorText(item.error),
          status: itemStatus(item.status),
        }),
      };
    case "web_search":
      return { case: "webSearch", value: create(CodexWebSearchSchema, { query: str(item.query) }) };
    case "todo_list":
      return {
        case: "todoList",
        value: create(CodexTodoListSchema, {
          items: (Array.isArray(item.items) ? item.items : [])
            .filter(isObject)
            .map((i) => create(CodexTodoItemSchema, { text: str(i.text), completed: i.completed === true })),
        }),
      };
    case "error":
      return { case: "errorMessage", value: str(item.message) };
    default:
      return { case: undefined };
  }
}

/** An error as Codex writes it: a string or `{message}`. */
function errorText(v: unknown): string {
  if (typeof v === "string") return v;
  return isObject(v) ? str(v.message) : "";
}

export function pbSession(s: SessionSummary | SessionDetail): PbSession {
  const detail = "messages" in s ? s : undefined;
  return create(SessionSchema, {
    id: s.id,
    source: SOURCES.pb(s.source) ?? PbSessionSource.UNSPECIFIED,
    title: s.title,
    model: s.model,
    cwd: s.cwd,
    createdAt: ts(s.createdAt),
    updatedAt: ts(s.updatedAt),
    rolloutFile: s.rolloutFile,
    jobIds: s.jobIds,
    lastAgentMessage: s.lastAgentMessage,
    usage: pbUsage(s.usage),
    messageCount: s.messageCount,
    messages: (detail?.messages ?? []).map((m) =>
      create(SessionMessageSchema, { role: ROLES[m.role], text: m.text, time: ts(m.time), jobId: m.jobId ?? "" }),
    ),
    events: (detail?.events ?? []).map((e) =>
      create(SessionEventSchema, { time: ts(e.time), type: e.type, payload: e.payload as JsonObject }),
    ),
  });
}
