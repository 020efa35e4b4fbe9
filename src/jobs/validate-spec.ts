/** Checks a JobSpec before it is queued: every problem is a clear invalid_argument naming the field. */
import { validateCallbackUrl } from "../callbacks/callback-sender.js";
import { GatewayError, invalidArgument } from "../errors/gateway-error.js";
import { validateExecOptions } from "./exec-options.js";
import { validateContextFiles, type WorkspaceLimits } from "./job-workspace.js";
import { validateLimits } from "../agents/validate.js";
import type { SandboxDriverName } from "../sandbox/types.js";
import { JOB_MODES, type JobSpec } from "./types.js";

const SANDBOXES: readonly SandboxDriverName[] = ["none", "bwrap", "nsjail"];

const MAX_TEXT = 1024 * 1024;
const MAX_TIMEOUT_MS = 24 * 3600 * 1000;
const THREAD_ID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const MODEL = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}$/;

export function validateJobSpec(spec: JobSpec, limits: WorkspaceLimits): void {
  const text = (v: string | undefined, field: string) => {
    if (v !== undefined && Buffer.byteLength(v) > MAX_TEXT)
      throw invalidArgument(`${field} is longer than ${MAX_TEXT} bytes`, field);
    if (v?.includes("\0")) throw invalidArgument(`${field} contains a NUL byte`, field);
  };
  text(spec.operatorRequest, "operatorRequest");
  text(spec.metadataSummary, "metadataSummary");
  text(spec.additionalNotes, "additionalNotes");
  text(spec.prompt, "prompt");
  text(spec.systemPrompt, "systemPrompt");

  const hasRequest = !!spec.operatorRequest?.trim();
  const hasPrompt = !!spec.prompt?.trim();
  if (hasRequest === hasPrompt)
    throw invalidArgument(
      "exactly one of operatorRequest (with mode) and prompt is required",
      hasRequest ? "prompt" : "operatorRequest",
    );
  if (hasRequest && !spec.mode)
    throw invalidArgument(`mode is required with operatorRequest (one of ${JOB_MODES.join(", ")})`, "mode");
  if (spec.mode && !JOB_MODES.includes(spec.mode))
    throw invalidArgument(`mode must be one of ${JOB_MODES.join(", ")}`, "mode");
  if (spec.mode && hasPrompt) throw invalidArgument("mode goes with operatorRequest, not with prompt", "mode");
  if (
    spec.timeoutMs !== undefined &&
    spec.timeoutMs !== 0 &&
    (spec.timeoutMs < 1000 || spec.timeoutMs > MAX_TIMEOUT_MS)
  )
    throw invalidArgument(`timeoutMs must be from 1000 to ${MAX_TIMEOUT_MS}`, "timeoutMs");
  if (
    spec.idleTimeoutMs !== undefined &&
    spec.idleTimeoutMs !== 0 &&
    (spec.idleTimeoutMs < 100 || spec.idleTimeoutMs > MAX_TIMEOUT_MS)
  )
    throw invalidArgument(`idleTimeoutMs must be from 100 to ${MAX_TIMEOUT_MS}`, "idleTimeoutMs");
  if (spec.model !== undefined && spec.model !== "" && !MODEL.test(spec.model))
    throw invalidArgument("model is not a valid model id", "model");
  if (spec.resumeThreadId && !THREAD_ID.test(spec.resumeThreadId))
    throw invalidArgument("resumeThreadId must be a Codex thread id (a UUID)", "resumeThreadId");
  validateContextFiles(spec.contextFiles ?? [], limits);
  validateExecOptions(spec.execOptions ?? []);
  if (spec.callbackUrl) validateCallbackUrl(spec.callbackUrl);
  const labels = Object.entries(spec.labels ?? {});
  if (labels.length > 64) throw invalidArgument("at most 64 labels", "labels");
  for (const [k, v] of labels)
    if (!/^[A-Za-z0-9_.\-/]{1,63}$/.test(k) || v.length > 256)
      throw invalidArgument(
        `label ${JSON.stringify(k)} is invalid (keys: 1-63 of [A-Za-z0-9_.-/], values up to 256 chars)`,
        "labels",
      );

  if (spec.sandbox !== undefined && !SANDBOXES.includes(spec.sandbox))
    throw invalidArgument(`sandbox must be one of ${SANDBOXES.join(", ")}`, "sandbox");
  const sandboxed = spec.sandbox !== undefined && spec.sandbox !== "none";
  if (spec.sandboxPolicy === "danger-full-access" && !sandboxed)
    throw new GatewayError(
      "failed_precondition",
      "sandbox_policy danger-full-access runs Codex without its own sandbox: allowed only inside agentgate's sandbox",
      { param: "sandboxPolicy" },
    );
  if (spec.sandbox === "nsjail")
    throw new GatewayError("failed_precondition", "the nsjail sandbox is not supported for jobs; use bwrap", {
      param: "sandbox",
      code: "sandbox_unsupported",
    });
  // Limits apply only inside the sandbox (prlimit); a job's clocks are timeoutMs and idleTimeoutMs, not wall/idle limits.
  if (spec.sandbox === "bwrap" && spec.limits) validateLimits(spec.limits);
  if (spec.sandbox === "bwrap" && spec.resumeThreadId)
    throw new GatewayError(
      "failed_precondition",
      "a job in agentgate's sandbox cannot resume a thread: its Codex has a CODEX_HOME of its own, which ends with the job",
      { param: "resumeThreadId", code: "sandbox_resume_unsupported" },
    );
}
