/**
 * Runs the real Codex CLI (the bundled @openai/codex) against an agentgate or a mock:
 *
 *   if (!codexCliAvailable()) ...skip...
 *   const r = await runCodexExec({ baseUrl: `${url}/v1`, apiKey: "k", model: "qwen3:8b", prompt: "hi", cwd });
 *   r.exitCode, r.events (the --json JSONL), r.lastAgentMessage
 *
 * config.toml is written with src/codex/codex-config.ts, so every run also exercises what
 * `agentgate codex-config` gives users. Each run gets a fresh CODEX_HOME, removed afterwards.
 *
 * Where that home lives matters: Codex refuses to create its helper binaries (the `apply_patch`
 * alias on PATH) when CODEX_HOME is inside the temp dir it sees ($TMPDIR, else /tmp), and then runs
 * degraded. So the home goes under node_modules/.cache, and TMPDIR is set to a sibling directory,
 * which can never contain the home even when the checkout itself lies under /tmp.
 */
import { groupMembers } from "../../src/backends/codex/codex-process.js";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { mergeCodexConfig, renderCodexConfig, type CodexProviderTuning } from "../../src/codex/codex-config.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
export const CODEX_JS = path.join(ROOT, "node_modules/@openai/codex/bin/codex.js");
const RUNS_DIR = path.join(ROOT, "node_modules/.cache/agentgate-codex-test");
const ENV_KEY = "AGENTGATE_API_KEY";

let available: boolean | undefined;

/**
 * Whether the bundled CLI is installed and runs (it is an optional dependency: its platform
 * binary may be missing). Checked once per process.
 */
export function codexCliAvailable(): boolean {
  if (available === undefined) {
    available =
      existsSync(CODEX_JS) &&
      spawnSync(process.execPath, [CODEX_JS, "--version"], { stdio: ["ignore", "pipe", "ignore"], timeout: 15_000 })
        .status === 0;
  }
  return available;
}

/** The variable the config.toml written here names as the provider's `env_key` (sent as the Bearer key). */
export const CODEX_API_KEY_ENV = ENV_KEY;

export interface CodexRunDirs {
  /** Remove this when done: it holds both of the others. */
  runDir: string;
  /** An empty CODEX_HOME (write config.toml into it). */
  codexHome: string;
  /** The TMPDIR to give Codex: a sibling of the home, never containing it. */
  tmpDir: string;
}

/**
 * A fresh run directory laid out as runCodexExec uses it (see the top of this file for why the home
 * is not under the temp dir), for callers that start Codex themselves, e.g. through agentgate's jobs.
 */
export function createCodexRunDirs(): CodexRunDirs {
  const runDir = path.join(RUNS_DIR, randomBytes(6).toString("hex"));
  const codexHome = path.join(runDir, "home");
  const tmpDir = path.join(runDir, "tmp");
  mkdirSync(codexHome, { recursive: true });
  mkdirSync(tmpDir, { recursive: true });
  return { runDir, codexHome, tmpDir };
}

/**
 * Writes `<dir>/codex`, an executable launcher that runs the bundled CLI with this Node, for a
 * CODEX_BIN (which takes one executable, no arguments). Returns its path.
 */
export function writeCodexLauncher(dir: string): string {
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, "codex");
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  writeFileSync(file, `#!/bin/sh\nexec ${q(process.execPath)} ${q(CODEX_JS)} "$@"\n`, { mode: 0o755 });
  return file;
}

/** One line of `codex exec --json`: thread.started, turn.*, item.*, error. */
export interface CodexEvent {
  type: string;
  thread_id?: string;
  item?: { id: string; type: string; text?: string; message?: string; [k: string]: unknown };
  usage?: Record<string, number>;
  error?: { message: string };
  message?: string;
  [k: string]: unknown;
}

export interface CodexExecOptions {
  /** agentgate's (or a mock's) OpenAI base, ending in /v1. */
  baseUrl: string;
  /** Sent by Codex as `Authorization: Bearer <apiKey>`; must be non-empty. */
  apiKey: string;
  model: string;
  prompt: string;
  /** The agent's working directory (need not be a git repo). */
  cwd: string;
  /** Provider keys in config.toml, e.g. { stream_idle_timeout_ms: 3000, request_max_retries: 0 }. */
  provider?: CodexProviderTuning;
  /** A user's config.toml that ours is merged into, as `agentgate codex-config --write` does. */
  existingConfig?: string;
  /** `-c key=value` overrides, e.g. { "features.multi_agent": false }. Strings are TOML-quoted. */
  config?: Record<string, string | number | boolean>;
  /** More `codex exec` arguments, e.g. ["-s", "workspace-write"] or ["--strict-config"]. */
  args?: string[];
  /** Extra environment for the CLI. */
  env?: Record<string, string>;
  /** The whole run; then the process group is killed. Default 60 s. */
  timeoutMs?: number;
  /**
   * Leave CODEX_HOME (rollouts, config.toml) for the caller to inspect; the caller then removes
   * path.dirname(codexHome), which also holds the run's TMPDIR.
   */
  keepCodexHome?: boolean;
}

export interface CodexExecResult {
  events: CodexEvent[];
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  codexHome: string;
  /** The text of the last agent_message item, if any. */
  lastAgentMessage: string | undefined;
}

/** `codex exec --json --skip-git-repo-check` with stdin ignored (an open pipe would block exec). */
export async function runCodexExec(opts: CodexExecOptions): Promise<CodexExecResult> {
  const runDir = path.join(RUNS_DIR, randomBytes(6).toString("hex"));
  const codexHome = path.join(runDir, "home");
  const tmpDir = path.join(runDir, "tmp");
  mkdirSync(codexHome, { recursive: true });
  mkdirSync(tmpDir, { recursive: true });
  const settings = { baseUrl: opts.baseUrl, model: opts.model, envKey: ENV_KEY, provider: opts.provider };
  writeFileSync(
    path.join(codexHome, "config.toml"),
    opts.existingConfig === undefined ? renderCodexConfig(settings) : mergeCodexConfig(opts.existingConfig, settings),
  );
  const overrides = Object.entries(opts.config ?? {}).flatMap(([k, v]) => [
    "-c",
    `${k}=${typeof v === "string" ? JSON.stringify(v) : String(v)}`,
  ]);
  const argv = [
    CODEX_JS,
    "exec",
    "--json",
    "--skip-git-repo-check",
    ...overrides,
    ...(opts.args ?? []),
    "--",
    opts.prompt,
  ];
  // Only what Codex needs: nothing from the runner (OPENAI_API_KEY, CODEX_*) leaks in.
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: process.env.HOME ?? runDir,
    LANG: "C.UTF-8",
    CODEX_HOME: codexHome,
    TMPDIR: tmpDir,
    [ENV_KEY]: opts.apiKey,
    ...opts.env,
  };
  const child = spawn(process.execPath, argv, {
    cwd: opts.cwd,
    env,
    stdio: ["ignore", "pipe", "pipe"],
    // Its own process group: codex.js, the native binary and any command it runs die together.
    detached: true,
  });
  const killGroup = () => {
    try {
      process.kill(-child.pid!, "SIGKILL");
    } catch {
      // already gone
    }
  };
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
  child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    killGroup();
  }, opts.timeoutMs ?? 60_000);
  try {
    const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>(
      (resolve, reject) => {
        child.once("error", reject);
        // "close", not "exit": all output has been read.
        child.once("close", (code, signal) => resolve({ code, signal }));
      },
    );
    const events: CodexEvent[] = [];
    for (const line of stdout.split("\n")) {
      if (!line.startsWith("{")) continue;
      try {
        events.push(JSON.parse(line) as CodexEvent);
      } catch {
        // not an event line
      }
    }
    const messages = events.filter((e) => e.type === "item.completed" && e.item?.type === "agent_message");
    return {
      events,
      exitCode: code,
      signal,
      timedOut,
      stdout,
      stderr,
      codexHome,
      lastAgentMessage: messages.at(-1)?.item?.text,
    };
  } finally {
    clearTimeout(timer);
    // Commands the agent left running in the background. Not `kill(-pid)`: the leader is reaped, so
    // with no member left the group id may already be another test's process.
    for (const pid of groupMembers(child.pid!)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
    if (!opts.keepCodexHome) rmSync(runDir, { recursive: true, force: true });
  }
}
