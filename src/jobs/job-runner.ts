/**
 * Runs one job: a private workspace, `codex exec --json --skip-git-repo-check` in it with the
 * rendered instructions on stdin (stdin then closed), the event stream parsed as it comes, output
 * captured with caps, then the results read back from `output/`. Timeouts, idle timeouts and
 * cancellation stop Codex's whole process group (CodexProcess), grandchildren included.
 */
import fs from "node:fs/promises";
import path from "node:path";
import type { CodexProcess as CodexProcessType, CodexProcessOptions } from "../backends/codex/codex-process.js";
import { CodexProcess } from "../backends/codex/codex-process.js";
import type { ExecUsage } from "../backends/codex/exec-events.js";
import type { CodexCommand } from "../backends/codex/locate-codex.js";
import {
  createJobWorkspace,
  readJobResults,
  removeJobWorkspace,
  renderInstructions,
  writeContextFiles,
  type JobWorkspace,
  type WorkspaceLimits,
} from "./job-workspace.js";
import type { JobOutcome, JobProgress } from "./job-store.js";
import { codexArgs } from "./exec-options.js";
import type { CodexSandboxPolicy, JobRecord, JobUsage } from "./types.js";

export interface JobRunnerConfig {
  /** Where the Codex CLI is (resolved lazily: a missing CLI fails the job, not the server). */
  codex(): CodexCommand;
  /** `<DATA_DIR>/jobs`: one directory per job. */
  workspaceRoot: string;
  /** CODEX_PROXY_EXEC_OPTS: trusted, not checked against the allowlist. */
  serverExecOptions: string[];
  defaultSandbox: CodexSandboxPolicy;
  defaultTimeoutMs: number;
  defaultModel?: string;
  keepWorkspaces: boolean;
  /** Bytes of stdout and of stderr kept in the record (the newest). */
  outputCapBytes: number;
  workspaceLimits: WorkspaceLimits;
  env: NodeJS.ProcessEnv;
  killGraceMs: number;
}

export interface JobRunHooks {
  output(stream: "stdout" | "stderr", offset: number, data: Buffer): void;
  codexEvent(raw: Record<string, unknown>): void;
  progress(p: JobProgress): void;
}

export interface JobRunInput {
  job: JobRecord;
  /** For a resumed thread: its usage before this job (turn.completed reports the thread's total). */
  previousUsage?: JobUsage;
  /** Aborted with a reason string to cancel. */
  cancel: AbortSignal;
}

/** Keeps the newest `cap` bytes of a stream and counts everything. */
class CappedBuffer {
  private chunks: Buffer[] = [];
  private kept = 0;
  total = 0;
  constructor(private readonly cap: number) {}
  push(chunk: Buffer): void {
    this.total += chunk.length;
    this.chunks.push(chunk);
    this.kept += chunk.length;
    while (this.kept - this.chunks[0]!.length >= this.cap) this.kept -= this.chunks.shift()!.length;
  }
  get truncated(): boolean {
    return this.total > this.cap;
  }
  text(): string {
    const all = Buffer.concat(this.chunks);
    return all.subarray(Math.max(0, all.length - this.cap)).toString("utf8");
  }
}

export function usageOf(u: ExecUsage): JobUsage {
  return {
    inputTokens: u.input_tokens,
    cachedInputTokens: u.cached_input_tokens,
    cacheWriteInputTokens: u.cache_write_input_tokens,
    outputTokens: u.output_tokens,
    reasoningOutputTokens: u.reasoning_output_tokens,
  };
}

function minus(a: JobUsage, b: JobUsage | undefined): JobUsage {
  if (!b) return a;
  const d = (x: number, y: number) => Math.max(0, x - y);
  return {
    inputTokens: d(a.inputTokens, b.inputTokens),
    cachedInputTokens: d(a.cachedInputTokens, b.cachedInputTokens),
    cacheWriteInputTokens: d(a.cacheWriteInputTokens, b.cacheWriteInputTokens),
    outputTokens: d(a.outputTokens, b.outputTokens),
    reasoningOutputTokens: d(a.reasoningOutputTokens, b.reasoningOutputTokens),
  };
}

export class JobRunner {
  constructor(private readonly c: JobRunnerConfig) {}

  async run({ job, previousUsage, cancel }: JobRunInput, hooks: JobRunHooks): Promise<JobOutcome> {
    const spec = job.spec;
    const stdout = new CappedBuffer(this.c.outputCapBytes);
    const stderr = new CappedBuffer(this.c.outputCapBytes);
    let threadId = spec.resumeThreadId ?? "";
    let finalMessage = "";
    let usage: JobUsage | undefined;
    let turnFailed: string | undefined;
    let ws: JobWorkspace | undefined;
    const base = (): Omit<JobOutcome, "status" | "error"> => ({
      stdout: stdout.text(),
      stderr: stderr.text(),
      stdoutTruncated: stdout.truncated,
      stderrTruncated: stderr.truncated,
      summary: "",
      finalMessage,
      usage: usage && minus(usage, previousUsage),
      threadId,
      workspace: ws && this.c.keepWorkspaces ? ws.dir : "",
      outputPath: ws && this.c.keepWorkspaces ? ws.suggestionPath : "",
    });

    let proc: CodexProcessType;
    try {
      ws = await createJobWorkspace(this.c.workspaceRoot, job.id);
      hooks.progress({ workspace: ws.dir, outputPath: ws.suggestionPath });
      await writeContextFiles(ws, spec.contextFiles ?? [], this.c.workspaceLimits);
      const instructions = renderInstructions(spec);
      await fs.writeFile(ws.instructionsPath, instructions, { mode: 0o600 });
      let schemaFile: string | undefined;
      if (spec.outputSchema) {
        schemaFile = path.join(ws.dir, "output-schema.json");
        await fs.writeFile(schemaFile, JSON.stringify(spec.outputSchema), { mode: 0o600 });
      }
      const opts: CodexProcessOptions = {
        command: this.c.codex(),
        args: codexArgs({
          serverOptions: this.c.serverExecOptions,
          jobOptions: spec.execOptions ?? [],
          sandbox: spec.sandboxPolicy ?? this.c.defaultSandbox,
          model: spec.model || this.c.defaultModel,
          outputSchemaFile: schemaFile,
          resumeThreadId: spec.resumeThreadId,
        }),
        cwd: ws.dir,
        env: { ...this.c.env, APPHUB_CODEX_OUTPUT_DIR: ws.outputDir },
        stdin: instructions,
        killGraceMs: this.c.killGraceMs,
        onStdout: (chunk) => {
          hooks.output("stdout", stdout.total, chunk);
          stdout.push(chunk);
          touch();
        },
        onStderr: (chunk) => {
          hooks.output("stderr", stderr.total, chunk);
          stderr.push(chunk);
          touch();
        },
        onJsonLine: (value) => {
          if (typeof value === "object" && value !== null && !Array.isArray(value))
            hooks.codexEvent(value as Record<string, unknown>);
        },
      };
      proc = new CodexProcess(opts);
    } catch (err) {
      await this.cleanup(ws);
      return { ...base(), status: "failed", failureReason: "spawn_failed", error: describe(err) };
    }

    // Timeout, idle timeout and cancellation all end the same way: the group is stopped.
    let stoppedBy: { status: "failed" | "canceled"; reason?: "timeout" | "idle_timeout"; error: string } | undefined;
    const stop = (why: NonNullable<typeof stoppedBy>) => {
      stoppedBy ??= why;
      void proc.stop();
    };
    const timeoutMs = spec.timeoutMs || this.c.defaultTimeoutMs;
    const timer = setTimeout(
      () => stop({ status: "failed", reason: "timeout", error: `the job timed out after ${timeoutMs} ms` }),
      timeoutMs,
    );
    let idleTimer: NodeJS.Timeout | undefined;
    const idleMs = spec.idleTimeoutMs ?? 0;
    function touch(): void {
      if (!idleMs) return;
      clearTimeout(idleTimer);
      idleTimer = setTimeout(
        () =>
          stop({
            status: "failed",
            reason: "idle_timeout",
            error: `Codex wrote nothing for ${idleMs} ms (idle timeout)`,
          }),
        idleMs,
      );
    }
    touch();
    const onCancel = () => stop({ status: "canceled", error: String(cancel.reason ?? "canceled") || "canceled" });
    if (cancel.aborted) onCancel();
    else cancel.addEventListener("abort", onCancel, { once: true });

    try {
      for await (const e of proc.events) {
        if (e.type === "thread.started" && !threadId) {
          threadId = e.thread_id;
          hooks.progress({ threadId });
        } else if (e.type === "item.completed" && e.item.type === "agent_message") finalMessage = e.item.text;
        else if (e.type === "turn.completed") usage = usageOf(e.usage);
        else if (e.type === "turn.failed") turnFailed = e.error.message;
      }
      const exit = await proc.exited;
      if (exit.spawnError)
        return { ...base(), status: "failed", failureReason: "spawn_failed", error: describe(exit.spawnError) };
      const exitCode = exit.code ?? undefined;
      if (stoppedBy)
        return {
          ...base(),
          exitCode,
          status: stoppedBy.status,
          failureReason: stoppedBy.reason,
          error: stoppedBy.error,
        };
      if (turnFailed !== undefined)
        return { ...base(), exitCode, status: "failed", failureReason: "turn_failed", error: turnFailed };
      if (exit.code !== 0) {
        const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
        const tail = proc.stderrText.trim().split("\n").slice(-3).join(" | ");
        return {
          ...base(),
          exitCode,
          status: "failed",
          failureReason: exit.signal === "SIGXCPU" || exit.signal === "SIGXFSZ" ? "resource_limit" : "exit_code",
          error: `codex ${how}${tail ? `: ${tail}` : ""}`,
        };
      }
      // Seed jobs promise output/suggestion.json; a free prompt may write it.
      const results = await readJobResults(ws, { requireSuggestion: spec.mode !== undefined });
      if (results.error)
        return {
          ...base(),
          exitCode,
          status: "failed",
          failureReason: "invalid_output",
          summary: results.summary,
          error: results.error,
        };
      return { ...base(), exitCode, status: "succeeded", output: results.output, summary: results.summary, error: "" };
    } finally {
      clearTimeout(timer);
      clearTimeout(idleTimer);
      cancel.removeEventListener("abort", onCancel);
      await this.cleanup(ws);
    }
  }

  private async cleanup(ws: JobWorkspace | undefined): Promise<void> {
    if (ws && !this.c.keepWorkspaces) await removeJobWorkspace(ws);
  }
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
