/**
 * The job domain's types (proto agentgate.v1 JobService <-> src/rpc/job-convert.ts). A job is one
 * `codex exec --json` run in a private workspace, queued durably in the database.
 */
import type { AgentLimits } from "../agents/types.js";
import type { SandboxDriverName } from "../sandbox/types.js";

export type JobMode = "workflow" | "job" | "job-with-bundle" | "workflow-with-jobs";
export const JOB_MODES: readonly JobMode[] = ["workflow", "job", "job-with-bundle", "workflow-with-jobs"];

/** Codex's own `--sandbox` (`-s`). */
export type CodexSandboxPolicy = "read-only" | "workspace-write" | "danger-full-access";

export interface ContextFile {
  /** Relative to the workspace's `context/` directory. */
  path: string;
  contents: string;
}

export interface JobSpec {
  mode?: JobMode;
  operatorRequest?: string;
  metadataSummary?: string;
  additionalNotes?: string;
  /** 0/undefined: CODEX_PROXY_TIMEOUT_MS. */
  timeoutMs?: number;
  contextFiles?: ContextFile[];
  /** A free prompt instead of the seed fields. */
  prompt?: string;
  systemPrompt?: string;
  model?: string;
  /** Undefined: CODEX_PROXY_DEFAULT_SANDBOX (or one named in execOptions). */
  sandboxPolicy?: CodexSandboxPolicy;
  /** agentgate's own sandbox around Codex; undefined or "none" runs it directly. */
  sandbox?: SandboxDriverName;
  networkAllowed?: boolean;
  limits?: AgentLimits;
  execOptions?: string[];
  /** JSON Schema for the final message (`--output-schema`). */
  outputSchema?: Record<string, unknown>;
  callbackUrl?: string;
  labels?: Record<string, string>;
  /** `codex exec resume <thread>`. */
  resumeThreadId?: string;
  idleTimeoutMs?: number;
  /**
   * Keep the small text files Codex writes directly in `output/` (besides suggestion.json and
   * summary.txt) in the record's `outputFiles`: the workspace itself is removed after the run.
   * Internal (the endpoint dreamer sets it); not part of SubmitJob.
   */
  collectOutputFiles?: boolean;
}

export type JobStatus = "pending" | "running" | "succeeded" | "failed" | "canceled" | "interrupted";
export const FINAL_STATUSES: ReadonlySet<JobStatus> = new Set(["succeeded", "failed", "canceled", "interrupted"]);

export type JobFailureReason =
  "exit_code" | "timeout" | "idle_timeout" | "turn_failed" | "invalid_output" | "spawn_failed" | "resource_limit";

export interface JobUsage {
  inputTokens: number;
  cachedInputTokens: number;
  cacheWriteInputTokens: number;
  outputTokens: number;
  reasoningOutputTokens: number;
}

export interface CallbackAttempt {
  attempt: number;
  event: string;
  attemptedAt: Date;
  httpStatus: number;
  error: string;
  delivered: boolean;
  durationMs: number;
  nextAttemptAt?: Date;
}

export interface JobRecord {
  id: string;
  status: JobStatus;
  spec: JobSpec;
  createdAt: Date;
  startedAt?: Date;
  completedAt?: Date;
  updatedAt: Date;
  durationMs: number;
  exitCode?: number;
  stdout: string;
  stderr: string;
  stdoutTruncated: boolean;
  stderrTruncated: boolean;
  /** Parsed output/suggestion.json; undefined when none. */
  output?: unknown;
  /** With spec.collectOutputFiles: output/ file name -> UTF-8 contents (job-workspace.ts readOutputFiles). */
  outputFiles?: Record<string, string>;
  summary: string;
  finalMessage: string;
  error: string;
  failureReason?: JobFailureReason;
  usage?: JobUsage;
  threadId: string;
  workspace: string;
  outputPath: string;
  replicaAddress: string;
  triggerId: string;
  retryOfJobId: string;
  callbackAttempts: CallbackAttempt[];
  /** Set while pending (computed on read). */
  queuePosition: number;
  /** Idempotency key of SubmitJob. */
  requestId: string;
}

/** What WatchJob streams. */
export type JobEvent =
  | { type: "status"; previous: JobStatus; status: JobStatus; job: JobRecord }
  | { type: "output"; stream: "stdout" | "stderr"; offset: number; data: Buffer }
  | { type: "codex"; event: CodexEventRecord };

/** One parsed `codex exec --json` line (src/backends/codex/exec-events.ts) with its raw object. */
export interface CodexEventRecord {
  type:
    | "thread.started"
    | "turn.started"
    | "turn.completed"
    | "turn.failed"
    | "item.started"
    | "item.updated"
    | "item.completed"
    | "error";
  raw: Record<string, unknown>;
}

export interface SequencedJobEvent {
  sequence: number;
  time: Date;
  event: JobEvent;
}
