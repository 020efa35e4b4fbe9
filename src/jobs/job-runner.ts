/**
 * Runs one job: a private workspace, `codex exec --json --skip-git-repo-check` in it with the
 * rendered instructions on stdin (stdin then closed), the event stream parsed as it comes, output
 * captured with caps, then the results read back from `output/`. Timeouts, idle timeouts and
 * cancellation stop Codex's whole process group (CodexProcess), grandchildren included.
 *
 * With `spec.sandbox === "bwrap"` Codex runs inside agentgate's own sandbox (docs/sandbox.md), on
 * pipes (the driver's `terminal: false` launch): the workspace is /workspace, Codex gets its own
 * CODEX_HOME there whose provider is this agentgate, its own sandbox is replaced by
 * `danger-full-access` (it cannot nest), and it runs under a uid from the uid pool. The launch
 * shell execs into setpriv, prlimit and bwrap, so the process group CodexProcess signals is
 * bwrap's; --die-with-parent takes the sandbox's pid namespace with it, and at the end every
 * process left under the job's uid is killed before the uid goes back to the pool.
 */
import { chmodSync, statSync } from "node:fs";
import fs from "node:fs/promises";
import { constants as osConstants } from "node:os";
import path from "node:path";
import { GatewayError } from "../errors/gateway-error.js";
import type { CodexProcess as CodexProcessType, CodexProcessOptions } from "../backends/codex/codex-process.js";
import { CodexProcess } from "../backends/codex/codex-process.js";
import type { ExecUsage } from "../backends/codex/exec-events.js";
import type { CodexCommand } from "../backends/codex/locate-codex.js";
import {
  createJobWorkspace,
  readJobResults,
  readOutputFiles,
  removeJobWorkspace,
  renderInstructions,
  writeContextFiles,
  type JobWorkspace,
  type WorkspaceLimits,
} from "./job-workspace.js";
import type { JobOutcome, JobProgress } from "./job-store.js";
import { codexArgs, withoutSandboxOptions } from "./exec-options.js";
import type { CodexSandboxPolicy, JobRecord, JobSpec, JobUsage } from "./types.js";
import { SANDBOX_WORKSPACE } from "../sandbox/bwrap-args.js";
import { BwrapDriver, type BwrapDriverOptions } from "../sandbox/bwrap-driver.js";
import { codexReadOnlyPaths, provisionCodexHome } from "../sandbox/codex-home-provision.js";
import type { SandboxLaunch } from "../sandbox/types.js";
import { killUidProcesses, type UidPool } from "../sandbox/uid-pool.js";
import type { SystemTools } from "../system/system-tools.js";
import { OUTPUT_DIR_ENV } from "./job-workspace.js";

/** What jobs with `sandbox: "bwrap"` need (jobs-module.ts builds it from the configuration). */
export interface JobSandboxConfig {
  tools: SystemTools;
  /** Sandbox uids; shared with the agent supervisor, so no two live sandboxes ever share one. */
  uidPool: UidPool;
  /** Host paths that must not be visible inside (DATA_DIR at least). */
  hiddenPaths: string[];
  /** This agentgate's "host:port" (empty until it listens): Codex's provider inside the sandbox. */
  replicaAddress(): string;
  /** AUTH_TOKEN, handed to Codex inside so it can call agentgate. */
  authToken?: string;
  /** The model the sandbox's config.toml names when neither the job nor defaultModel does (MODEL). */
  providerModel?: string;
  /** More host paths shown read-only at the same place (the Codex CLI's own are added). */
  readOnlyPaths?: string[];
  /** More environment for Codex inside; agentgate's own environment is never passed in. Trusted. */
  env?: Record<string, string>;
  driverOptions?: BwrapDriverOptions;
}

/** One sandboxed run's resources, released once (endSandbox()). */
interface SandboxRun {
  launch?: SandboxLaunch;
  uid?: number;
  ended?: Promise<void>;
}

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
  /** Needed for jobs with `sandbox: "bwrap"` (they fail with spawn_failed without it). */
  sandbox?: JobSandboxConfig;
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
  private driver: BwrapDriver | undefined;

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
    const sandboxed = spec.sandbox === "bwrap";
    const sb: SandboxRun = {};
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
      const codex = this.c.codex();
      // Inside bwrap Codex's own sandbox cannot nest: it runs danger-full-access and the outer one enforces.
      const args = codexArgs({
        serverOptions: sandboxed ? withoutSandboxOptions(this.c.serverExecOptions) : this.c.serverExecOptions,
        jobOptions: sandboxed ? withoutSandboxOptions(spec.execOptions ?? []) : (spec.execOptions ?? []),
        sandbox: sandboxed ? "danger-full-access" : (spec.sandboxPolicy ?? this.c.defaultSandbox),
        model: spec.model || this.c.defaultModel,
        outputSchemaFile: schemaFile && sandboxed ? `${SANDBOX_WORKSPACE}/${path.basename(schemaFile)}` : schemaFile,
        resumeThreadId: spec.resumeThreadId,
      });
      const where = sandboxed
        ? this.prepareSandbox(sb, spec, ws, codex, args)
        : { command: codex, args, cwd: ws.dir, env: { ...this.c.env, [OUTPUT_DIR_ENV]: ws.outputDir } };
      const opts: CodexProcessOptions = {
        ...where,
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
      await this.endSandbox(sb);
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
      // Nothing of a sandboxed run may outlive it, nor change the workspace while it is read below.
      await this.endSandbox(sb);
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
      // Codex's model endpoint is agentgate on the host: unreachable from a sandbox without network.
      const hint =
        sandboxed && !spec.networkAllowed
          ? " (note: the job ran in agentgate's sandbox without network, where Codex cannot reach its model endpoint unless networkAllowed is set)"
          : "";
      if (turnFailed !== undefined)
        return { ...base(), exitCode, status: "failed", failureReason: "turn_failed", error: turnFailed + hint };
      if (exit.code !== 0) {
        // bwrap reports a program killed by signal N as exit code 128 + N.
        const signal =
          exit.signal ?? (sandboxed && exit.code !== null && exit.code > 128 ? signalName(exit.code - 128) : undefined);
        const how = exit.signal
          ? `was killed by ${exit.signal}`
          : signal
            ? `was killed by ${signal} (exit code ${exit.code})`
            : `exited with code ${exit.code}`;
        const tail = proc.stderrText.trim().split("\n").slice(-3).join(" | ");
        const limit = signal === "SIGXCPU" || signal === "SIGXFSZ";
        return {
          ...base(),
          exitCode,
          status: "failed",
          failureReason: limit ? "resource_limit" : "exit_code",
          error: `codex ${how}${tail ? `: ${tail}` : ""}${limit ? "" : hint}`,
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
      const collected = spec.collectOutputFiles ? await readOutputFiles(ws) : undefined;
      return {
        ...base(),
        exitCode,
        status: "succeeded",
        output: results.output,
        ...(collected ? { outputFiles: collected.files } : {}),
        summary: results.summary,
        error: "",
      };
    } finally {
      clearTimeout(timer);
      clearTimeout(idleTimer);
      cancel.removeEventListener("abort", onCancel);
      await this.endSandbox(sb);
      await this.cleanup(ws);
    }
  }

  /**
   * Provisions CODEX_HOME, takes a uid and prepares the bwrap launch of Codex with the job's
   * workspace as /workspace; returns what CodexProcess then spawns. Everything taken is recorded in `sb`
   * for endSandbox(), also when this throws.
   */
  private prepareSandbox(
    sb: SandboxRun,
    spec: JobSpec,
    ws: JobWorkspace,
    codex: CodexCommand,
    args: string[],
  ): Pick<CodexProcessOptions, "command" | "args" | "cwd" | "env"> {
    const s = this.c.sandbox;
    if (!s)
      throw new GatewayError("failed_precondition", "this agentgate is not configured to run jobs in its sandbox", {
        code: "sandbox_unavailable",
      });
    // The sandbox uid must be able to reach its workspace: the jobs directory needs o+x (not o+r).
    const root = path.dirname(ws.dir);
    const mode = statSync(root).mode & 0o7777;
    if ((mode & 0o011) !== 0o011) chmodSync(root, mode | 0o011);
    // Before prepare(): it chowns the workspace tree, .codex included, to the sandbox uid.
    const codexEnv = provisionCodexHome({
      workspace: ws.dir,
      replicaAddress: s.replicaAddress(),
      model: spec.model || this.c.defaultModel || s.providerModel || "qwen3:8b",
      authToken: s.authToken,
    });
    // As root a uid from the pool is required; as another user the sandbox runs as that user.
    if (process.getuid?.() === 0) sb.uid = s.uidPool.acquire();
    this.driver ??= new BwrapDriver(s.tools, s.driverOptions);
    sb.launch = this.driver.prepare({
      driver: "bwrap",
      argv: [codex.command, ...codex.prefix, ...args],
      workspace: ws.dir,
      env: {
        LANG: process.env.LANG || "C.UTF-8",
        ...s.env,
        ...codexEnv,
        [OUTPUT_DIR_ENV]: `${SANDBOX_WORKSPACE}/${path.basename(ws.outputDir)}`,
      },
      network: spec.networkAllowed ?? false,
      limits: withoutClocks(spec.limits ?? {}),
      hiddenPaths: s.hiddenPaths,
      readOnlyPaths: [...codexReadOnlyPaths(codex), ...(s.readOnlyPaths ?? [])],
      uid: sb.uid,
      terminal: false,
    });
    return {
      command: { command: sb.launch.file, prefix: sb.launch.args, source: "bwrap" },
      args: [],
      cwd: sb.launch.cwd,
      env: sb.launch.env,
    };
  }

  /** Kills whatever still runs under the job's uid, removes the launch's files, returns the uid. Idempotent. */
  private endSandbox(sb: SandboxRun): Promise<void> {
    sb.ended ??= (async () => {
      try {
        if (sb.uid !== undefined) await killUidProcesses(sb.uid);
      } finally {
        sb.launch?.cleanup();
        // Safe even if something survived: the pool never hands out a uid that still owns processes.
        if (sb.uid !== undefined) this.c.sandbox?.uidPool.release(sb.uid);
      }
    })();
    return sb.ended;
  }

  private async cleanup(ws: JobWorkspace | undefined): Promise<void> {
    if (ws && !this.c.keepWorkspaces) await removeJobWorkspace(ws);
  }
}

function withoutClocks(l: NonNullable<JobSpec["limits"]>) {
  const { wallTimeMs: _w, idleTimeMs: _i, ...rest } = l;
  return rest;
}

function signalName(n: number): NodeJS.Signals | undefined {
  return (Object.entries(osConstants.signals) as [NodeJS.Signals, number][]).find(([, v]) => v === n)?.[0];
}

function describe(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
