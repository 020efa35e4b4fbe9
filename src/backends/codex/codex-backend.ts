/**
 * The Codex CLI as a model: each chat turn is one `codex exec --json` run whose agent messages and
 * reasoning stream back as ChatEvents. Model `codex` is Codex's own default model, `codex/<slug>` runs
 * with `-m <slug>`. A client conversation id keeps one Codex thread (resumed with `codex exec resume`);
 * without one the run is `--ephemeral`. See docs/codex-backend.md.
 */
import fs from "node:fs/promises";
import type { Logger } from "pino";
import type {
  Backend,
  BackendHealth,
  ChatEvent,
  ChatRequest,
  CompletionRequest,
  EmbedResult,
  ModelInfo,
  TextEvent,
  Usage,
} from "../../completion/types.js";
import { GatewayError, invalidArgument } from "../../errors/gateway-error.js";
import type { Queryable } from "../../storage/database.js";
import type { CancelSignal } from "../../util/cancel-signal.js";
import { codexFailure, summariseStderr } from "./codex-errors.js";
import { resolveCodexHome } from "./codex-home.js";
import { CodexProcess } from "./codex-process.js";
import { codexVersion } from "./codex-version.js";
import type { ExecItem, ExecUsage } from "./exec-events.js";
import { KeyedLock } from "./keyed-lock.js";
import { locateCodex, missingCodex, type CodexCommand } from "./locate-codex.js";
import { messagesAfterLastAnswer, renderPrompt } from "./prompt.js";
import { getCodexThread, saveCodexThread, type ThreadTotals } from "./thread-store.js";

export interface CodexBackendOptions {
  name?: string;
  /** CODEX_BIN; unset: the bundled @openai/codex, else `codex` on PATH. */
  bin?: string;
  /** `-s` for every run (CODEX_MODEL_SANDBOX). */
  sandbox: string;
  /** Slugs listed as `codex/<slug>`. */
  models: string[];
  /** A whole turn, from spawn to exit. */
  timeoutMs: number;
  /** Codex's working directory (`<dataDir>/codex-model`), created on demand. */
  workDir: string;
  db: Queryable;
  logger?: Logger;
  /** Codex's environment (default process.env, passed through: CODEX_HOME, provider keys...). */
  env?: NodeJS.ProcessEnv;
  /** SIGTERM -> SIGKILL delay when a run is stopped (default 2000 ms). */
  killGraceMs?: number;
}

/**
 * Linux caps one argv string at 128 KiB (MAX_ARG_STRLEN); longer prompts go through stdin (`-`), which
 * is closed right after the prompt so Codex never waits on it.
 */
const MAX_ARGV_PROMPT_BYTES = 100_000;

export class CodexBackend implements Backend {
  readonly name: string;
  readonly kind = "codex" as const;
  readonly describe: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly locks = new KeyedLock();
  private readonly log: Logger | undefined;
  private readonly created = Math.floor(Date.now() / 1000);

  constructor(private readonly opts: CodexBackendOptions) {
    this.name = opts.name ?? "codex";
    this.describe = `${this.name} (codex exec)`;
    this.env = opts.env ?? process.env;
    this.log = opts.logger?.child({ component: "codex-backend" });
  }

  chat(req: ChatRequest, signal: CancelSignal): AsyncIterable<ChatEvent> {
    return this.chatEvents(req, signal);
  }

  private async *chatEvents(req: ChatRequest, signal: CancelSignal): AsyncIterable<ChatEvent> {
    checkSupported(req);
    const command = locateCodex(this.opts.bin, this.env);
    const codexHome = resolveCodexHome(this.env);
    if (signal.aborted) throw signal.reason;
    const conversation = req.conversationId;
    const release = conversation ? await this.locks.acquire(conversation, signal) : undefined;
    try {
      const thread = conversation ? await getCodexThread(this.opts.db, conversation) : undefined;
      const prompt = renderPrompt(thread ? messagesAfterLastAnswer(req.messages) : req.messages);
      if (!prompt.trim()) {
        throw invalidArgument(
          thread
            ? "nothing to send: the Codex thread already has every message up to the last assistant message; add a new user message"
            : "the messages contain no text to send to Codex",
          "messages",
        );
      }
      await fs.mkdir(this.opts.workDir, { recursive: true });
      const viaStdin = Buffer.byteLength(prompt) > MAX_ARGV_PROMPT_BYTES;
      const args = execArgs({
        sandbox: this.opts.sandbox,
        model: req.model,
        reasoningEffort: req.reasoningEffort,
        ephemeral: !conversation,
        resumeThreadId: thread?.threadId,
        prompt: viaStdin ? "-" : prompt,
      });
      this.log?.debug({ args: args.slice(0, -1), conversation, thread: thread?.threadId }, "codex exec");
      const proc = new CodexProcess({
        command,
        args,
        cwd: this.opts.workDir,
        env: this.env,
        stdin: viaStdin ? prompt : undefined,
        killGraceMs: this.opts.killGraceMs ?? 2_000,
      });
      yield* this.turn(proc, { command, codexHome, conversation, before: thread?.totals, signal });
    } finally {
      release?.();
    }
  }

  /** Streams one run's answer; ends with `done` or throws. The process is gone when this returns. */
  private async *turn(
    proc: CodexProcess,
    ctx: {
      command: CodexCommand;
      codexHome: string;
      conversation?: string;
      before?: ThreadTotals;
      signal: CancelSignal;
    },
  ): AsyncIterable<ChatEvent> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      void proc.stop();
    }, this.opts.timeoutMs);
    const onAbort = { handleEvent: () => void proc.stop() };
    ctx.signal.addEventListener("abort", onAbort, { once: true });
    if (ctx.signal.aborted) void proc.stop(); // aborted while the process was being set up

    let threadId: string | undefined;
    let totals: ExecUsage | undefined;
    let failure: string | undefined;
    let lastError = "";
    const text = new TextAssembler();
    try {
      for await (const e of proc.events) {
        if (e.type === "thread.started") threadId = e.thread_id;
        else if (e.type === "turn.completed") totals = e.usage;
        else if (e.type === "turn.failed") failure = e.error.message;
        else if (e.type === "error") {
          lastError = e.message;
          this.log?.debug({ pid: proc.pid, message: e.message }, "codex notice");
        } else if (e.type !== "turn.started") {
          const delta = text.update(e.item);
          if (delta) yield delta;
          else if (e.type === "item.completed") this.noteItem(e.item);
          if (e.item.type === "error") lastError = e.item.message;
        }
      }
      const exit = await proc.exited;
      if (ctx.signal.aborted) throw ctx.signal.reason;
      if (timedOut) {
        throw new GatewayError(
          "deadline_exceeded",
          `Codex did not finish within ${this.opts.timeoutMs} ms (CODEX_PROXY_TIMEOUT_MS)` +
            (lastError ? `; its last notice: ${lastError}` : ""),
        );
      }
      if (exit.spawnError) {
        const code = exit.spawnError.code;
        if (code === "ENOENT" || code === "EACCES") throw missingCodex(`${ctx.command.source}: ${code}`);
        throw new GatewayError("upstream_error", `could not start Codex: ${exit.spawnError.message}`);
      }
      if (failure !== undefined) throw codexFailure(failure, ctx.codexHome);
      if (!totals) {
        const stderr = summariseStderr(proc.stderrText);
        if (/no rollout found/i.test(stderr) && ctx.conversation) {
          throw new GatewayError(
            "failed_precondition",
            `Codex no longer has the thread of conversation ${ctx.conversation} (${stderr}); start a new conversation id`,
            { code: "codex_thread_missing" },
          );
        }
        const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
        const said = [lastError, stderr].filter(Boolean).join(" | stderr: ");
        throw codexFailure(
          `codex ${how} before finishing the turn${said ? `: ${said}` : " and printed nothing"}`,
          ctx.codexHome,
        );
      }
      if (ctx.conversation && threadId) await saveCodexThread(this.opts.db, ctx.conversation, threadId, totals);
      yield { type: "done", finishReason: "stop", usage: turnUsage(totals, ctx.before) };
    } finally {
      clearTimeout(timer);
      ctx.signal.removeEventListener("abort", onAbort);
      // Also when the consumer stopped reading early: no Codex outlives its request.
      await proc.stop();
    }
  }

  private noteItem(item: ExecItem): void {
    if (item.type === "error") this.log?.warn({ message: item.message }, "codex reported an error item");
    else if (item.type === "command_execution")
      this.log?.debug({ command: item.command, exitCode: item.exit_code }, "codex ran a command");
    else this.log?.debug({ item: item.type }, "codex item");
  }

  complete(req: CompletionRequest, signal: CancelSignal): AsyncIterable<TextEvent> {
    return this.textEvents(req, signal);
  }

  private async *textEvents(req: CompletionRequest, signal: CancelSignal): AsyncIterable<TextEvent> {
    if (req.suffix) throw invalidArgument("the codex model does not support suffix (fill-in-the-middle)", "suffix");
    const chat: ChatRequest = {
      model: req.model,
      messages: [{ role: "user", content: req.prompt }],
      options: req.options,
    };
    for await (const e of this.chatEvents(chat, signal)) {
      if (e.type === "delta" && e.content) yield { type: "delta", text: e.content };
      else if (e.type === "done") yield { type: "done", finishReason: e.finishReason, usage: e.usage };
    }
  }

  embed(): Promise<EmbedResult> {
    return Promise.reject(
      new GatewayError("failed_precondition", "the codex backend does not compute embeddings; use an embedding model", {
        code: "unsupported",
        param: "model",
      }),
    );
  }

  async listModels(): Promise<ModelInfo[]> {
    // Advertise nothing that cannot run: a missing CLI shows up as this backend being unavailable.
    locateCodex(this.opts.bin, this.env);
    return ["", ...this.opts.models].map((id) => ({
      id,
      backend: this.name,
      ownedBy: "openai",
      created: this.created,
      capabilities: ["chat", "completion"],
    }));
  }

  async health(signal: CancelSignal): Promise<BackendHealth> {
    const started = performance.now();
    try {
      const command = locateCodex(this.opts.bin, this.env);
      const version = await codexVersion(command, this.env, signal);
      return { ok: true, detail: `${version} (${command.source})`, latencyMs: performance.now() - started };
    } catch (err) {
      return { ok: false, detail: (err as Error).message, latencyMs: performance.now() - started };
    }
  }
}

function checkSupported(req: ChatRequest): void {
  if (req.tools?.length) {
    throw invalidArgument(
      "the codex model runs its own tools (shell, apply_patch, ...) in its sandbox; client-supplied tools are not supported",
      "tools",
    );
  }
  if (req.messages.some((m) => m.images?.length))
    throw invalidArgument("the codex model does not accept images", "messages");
  if (req.responseFormat && req.responseFormat.type !== "text")
    throw invalidArgument("the codex model supports only text responses", "response_format");
}

export interface ExecArgsInput {
  sandbox: string;
  /** Empty: Codex's configured default model. */
  model: string;
  reasoningEffort?: string;
  ephemeral: boolean;
  resumeThreadId?: string;
  /** The prompt, or "-" to read it from stdin. */
  prompt: string;
}

/**
 * `codex exec` argv. Exec options go before `resume`: the real CLI rejects `-s` after it. The prompt
 * follows `--`, so one that starts with "-" is not read as a flag.
 */
export function execArgs(i: ExecArgsInput): string[] {
  const args = ["exec", "--json", "--skip-git-repo-check", "-s", i.sandbox];
  if (i.model) args.push("-m", i.model);
  if (i.reasoningEffort) args.push("-c", `model_reasoning_effort="${i.reasoningEffort}"`);
  if (i.ephemeral) args.push("--ephemeral");
  if (i.resumeThreadId) args.push("resume", i.resumeThreadId);
  args.push("--", i.prompt);
  return args;
}

/**
 * Turns item snapshots into deltas. Codex 0.169.0 sends each message whole in item.completed, but
 * item.started/updated may carry partial text; either way only the new part is emitted, and separate
 * agent messages are set apart by a blank line.
 */
class TextAssembler {
  private readonly sent = new Map<string, number>();
  private wroteContent = false;
  private wroteReasoning = false;

  update(item: ExecItem): ChatEvent | undefined {
    if (item.type !== "agent_message" && item.type !== "reasoning") return undefined;
    const key = `${item.type}:${item.id}`;
    const already = this.sent.get(key);
    const fresh = already === undefined ? item.text : item.text.slice(already);
    if (!fresh) return undefined;
    this.sent.set(key, item.text.length);
    if (item.type === "agent_message") {
      const sep = already === undefined && this.wroteContent ? "\n\n" : "";
      this.wroteContent = true;
      return { type: "delta", content: sep + fresh };
    }
    const sep = already === undefined && this.wroteReasoning ? "\n\n" : "";
    this.wroteReasoning = true;
    return { type: "delta", reasoning: sep + fresh };
  }
}

/** Codex reports thread totals; a turn's usage is the growth since the totals stored after the last turn. */
export function turnUsage(totals: ExecUsage, before?: ThreadTotals): Usage {
  const keys = ["input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens"] as const;
  // Totals that shrank mean the stored ones are not this thread's history: report what Codex said.
  const base = before && keys.every((k) => totals[k] >= before[k]) ? before : undefined;
  const d = (k: (typeof keys)[number]) => totals[k] - (base?.[k] ?? 0);
  const promptTokens = d("input_tokens");
  const completionTokens = d("output_tokens");
  return {
    promptTokens,
    completionTokens,
    totalTokens: promptTokens + completionTokens,
    cachedTokens: d("cached_input_tokens"),
    reasoningTokens: d("reasoning_output_tokens"),
  };
}
