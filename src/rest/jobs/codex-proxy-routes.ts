/**
 * The seed apphub codex-proxy API (docs/jobs.md "REST: the seed codex-proxy API") over the job domain:
 *
 * - `POST /v1/codex/jobs`: queue a job -> 202 `{jobId, status, createdAt}`.
 * - `GET /v1/codex/jobs/{jobId}`: the job in the seed's shape (statuses pending|running|succeeded|failed;
 *   agentgate's own status in `agentgateStatus`).
 * - `DELETE /v1/codex/jobs/{jobId}`: cancel (an agentgate extension).
 * - `POST /v1/codex/generate`: submit and wait (the job is canceled when the client goes away) -> 200
 *   with the results, or 502 `{message, exitCode, stdout, stderr}`: the seed's failure shape, not the
 *   OpenAI error object, because seed clients parse exactly those fields. Requests that are refused
 *   before anything runs (validation) still answer with the OpenAI error object and a 4xx.
 *
 * Field names are camelCase, as in the seed. Every check of the job itself (modes, timeouts, context
 * file paths and caps, exec options, callback URLs) is the domain's (jobs/validate-spec.ts); the
 * schema below only fixes the JSON types.
 */
import type { FastifyInstance } from "fastify";
import type { JobManager } from "../../jobs/job-manager.js";
import type { CodexSandboxPolicy, ContextFile, JobMode, JobRecord, JobSpec } from "../../jobs/types.js";
import { disconnectSignal, isoOrNull, textOrNull } from "./job-rest-helpers.js";

export interface CodexProxyRoutesDeps {
  jobs: JobManager;
}

const TAGS = ["codex-proxy"];

/** Optional fields may be null: the seed's Python clients send `None` for what they leave out. */
const str = { type: ["string", "null"] } as const;
const int = { type: ["integer", "null"] } as const;

const JobRequestSchema = {
  type: "object",
  properties: {
    mode: { type: ["string", "null"], description: "workflow | job | job-with-bundle | workflow-with-jobs" },
    operatorRequest: str,
    metadataSummary: str,
    additionalNotes: str,
    timeoutMs: { ...int, description: "0 or from 1000 to 86400000; default CODEX_PROXY_TIMEOUT_MS" },
    contextFiles: {
      type: ["array", "null"],
      items: {
        type: "object",
        properties: { path: { type: "string" }, contents: { type: "string" } },
        required: ["path", "contents"],
      },
    },
    // agentgate extensions
    prompt: { ...str, description: "a free prompt instead of mode/operatorRequest" },
    systemPrompt: str,
    model: str,
    labels: { type: ["object", "null"], additionalProperties: { type: "string" } },
    callbackUrl: str,
    sandboxPolicy: { type: ["string", "null"], enum: ["read-only", "workspace-write", "danger-full-access", null] },
    execOptions: { type: ["array", "null"], items: { type: "string" } },
    idleTimeoutMs: int,
  },
} as const;

export interface JobRequestBody {
  mode?: string | null;
  operatorRequest?: string | null;
  metadataSummary?: string | null;
  additionalNotes?: string | null;
  timeoutMs?: number | null;
  contextFiles?: ContextFile[] | null;
  prompt?: string | null;
  systemPrompt?: string | null;
  model?: string | null;
  labels?: Record<string, string> | null;
  callbackUrl?: string | null;
  sandboxPolicy?: CodexSandboxPolicy | null;
  execOptions?: string[] | null;
  idleTimeoutMs?: number | null;
}

const JobIdParams = {
  type: "object",
  properties: { jobId: { type: "string", maxLength: 200 } },
  required: ["jobId"],
} as const;

/** The request body as a JobSpec (nulls dropped; the domain validates the rest). */
export function toJobSpec(b: JobRequestBody): JobSpec {
  const spec: JobSpec = {};
  const set = <K extends keyof JobSpec>(k: K, v: JobSpec[K] | null | undefined) => {
    if (v !== null && v !== undefined) spec[k] = v;
  };
  set("mode", b.mode as JobMode | undefined);
  set("operatorRequest", b.operatorRequest);
  set("metadataSummary", b.metadataSummary);
  set("additionalNotes", b.additionalNotes);
  set("timeoutMs", b.timeoutMs);
  set("contextFiles", b.contextFiles);
  set("prompt", b.prompt);
  set("systemPrompt", b.systemPrompt);
  set("model", b.model);
  set("labels", b.labels);
  set("callbackUrl", b.callbackUrl);
  set("sandboxPolicy", b.sandboxPolicy);
  set("execOptions", b.execOptions);
  set("idleTimeoutMs", b.idleTimeoutMs);
  return spec;
}

export type SeedStatus = "pending" | "running" | "succeeded" | "failed";

/** agentgate's statuses in the seed's four: canceled and interrupted jobs are failed ones. */
export function seedStatus(job: JobRecord): SeedStatus {
  return job.status === "canceled" || job.status === "interrupted" ? "failed" : job.status;
}

/** The error as the seed shows it; for canceled and interrupted jobs it says which. */
export function seedError(job: JobRecord): string | null {
  if (job.status === "canceled") return `job canceled: ${job.error || "canceled by request"}`;
  if (job.status === "interrupted") return `job interrupted: ${job.error || "agentgate stopped while it ran"}`;
  return textOrNull(job.error);
}

/** GET /v1/codex/jobs/{jobId}: the seed's fields first, then agentgate's extras. */
export function seedJobView(job: JobRecord) {
  return {
    jobId: job.id,
    status: seedStatus(job),
    stdout: job.stdout,
    stderr: job.stderr,
    output: job.output ?? null,
    summary: job.summary,
    error: seedError(job),
    exitCode: job.exitCode ?? null,
    workspace: textOrNull(job.workspace),
    outputPath: textOrNull(job.outputPath),
    durationMs: job.durationMs,
    createdAt: job.createdAt.toISOString(),
    startedAt: isoOrNull(job.startedAt),
    completedAt: isoOrNull(job.completedAt),
    updatedAt: job.updatedAt.toISOString(),
    // agentgate extensions
    agentgateStatus: job.status,
    failureReason: job.failureReason ?? null,
    threadId: textOrNull(job.threadId),
    finalMessage: job.finalMessage,
    queuePosition: job.queuePosition,
    stdoutTruncated: job.stdoutTruncated,
    stderrTruncated: job.stderrTruncated,
  };
}

export async function registerCodexProxyRoutes(app: FastifyInstance, deps: CodexProxyRoutesDeps): Promise<void> {
  const { jobs } = deps;

  app.post<{ Body: JobRequestBody }>(
    "/v1/codex/jobs",
    {
      schema: {
        tags: TAGS,
        summary: "Queue a Codex job (seed apphub codex-proxy); poll GET /v1/codex/jobs/{jobId}",
        body: JobRequestSchema,
      },
    },
    async (request, reply) => {
      const job = await jobs.submit(toJobSpec(request.body));
      reply.code(202);
      return {
        jobId: job.id,
        status: seedStatus(job),
        createdAt: job.createdAt.toISOString(),
        agentgateStatus: job.status,
      };
    },
  );

  app.get<{ Params: { jobId: string } }>(
    "/v1/codex/jobs/:jobId",
    {
      schema: { tags: TAGS, summary: "A Codex job in the seed's shape", params: JobIdParams },
    },
    async (request) => seedJobView(await jobs.get(request.params.jobId)),
  );

  app.delete<{ Params: { jobId: string } }>(
    "/v1/codex/jobs/:jobId",
    {
      schema: {
        tags: TAGS,
        summary: "Cancel a Codex job (agentgate extension); answers the job as GET does",
        params: JobIdParams,
      },
    },
    async (request) => seedJobView(await jobs.cancel(request.params.jobId, "canceled through DELETE /v1/codex/jobs")),
  );

  app.post<{ Body: JobRequestBody }>(
    "/v1/codex/generate",
    {
      schema: {
        tags: TAGS,
        summary: "Run a Codex job and wait for it (seed apphub codex-proxy); 502 {message, exitCode, stdout, stderr}",
        body: JobRequestSchema,
      },
    },
    async (request, reply) => {
      const job = await jobs.run(toJobSpec(request.body), { cancelOnDisconnect: true }, disconnectSignal(reply));
      if (job.status === "succeeded") {
        return {
          workspace: textOrNull(job.workspace),
          outputPath: textOrNull(job.outputPath),
          output: job.output ?? null,
          stdout: job.stdout,
          stderr: job.stderr,
          summary: job.summary,
          durationMs: job.durationMs,
          // agentgate extensions
          jobId: job.id,
          threadId: textOrNull(job.threadId),
        };
      }
      reply.code(502);
      return {
        message: seedError(job) ?? `the job ended ${job.status}`,
        exitCode: job.exitCode ?? null,
        stdout: job.stdout,
        stderr: job.stderr,
        // agentgate extensions
        jobId: job.id,
        agentgateStatus: job.status,
        failureReason: job.failureReason ?? null,
      };
    },
  );
}
