/**
 * `codex exec` command lines for jobs. A job's own `exec_options` come from API callers, so they
 * are checked against an allowlist: options that would widen what Codex may do on the host
 * (`--dangerously-bypass-approvals-and-sandbox`, `--add-dir`, `-c shell_environment_policy...`,
 * `--cd`, profiles that load other config) are refused. The server's CODEX_PROXY_EXEC_OPTS are
 * trusted as configuration.
 */
import { GatewayError, invalidArgument } from "../errors/gateway-error.js";
import type { CodexSandboxPolicy } from "./types.js";

/** Options that take no value. */
const FLAGS = new Set(["--ephemeral", "--skip-git-repo-check", "--json", "--oss"]);
/** Options that take one value (also accepted as `--opt=value`). */
const WITH_VALUE = new Set(["-m", "--model", "-s", "--sandbox", "--color", "--local-provider"]);
/** `-c key=value` keys a caller may set: model behaviour only. */
const CONFIG_KEYS = new Set([
  "model_reasoning_effort",
  "model_reasoning_summary",
  "model_verbosity",
  "web_search",
  "hide_agent_reasoning",
  "show_raw_agent_reasoning",
]);
const SANDBOX_VALUES = new Set<string>(["read-only", "workspace-write", "danger-full-access"]);
const MAX_OPTIONS = 32;

/** Throws invalid_argument naming the first option that is not allowed. */
export function validateExecOptions(options: string[]): void {
  if (options.length > MAX_OPTIONS)
    throw invalidArgument(`at most ${MAX_OPTIONS} exec options are accepted`, "exec_options");
  // Values too (`-m`, `-c` take the next element): a NUL byte cannot reach an argv.
  const nul = options.findIndex((o) => o.includes("\0"));
  if (nul >= 0) throw invalidArgument(`exec option ${nul} contains a NUL byte`, `exec_options[${nul}]`);
  for (let i = 0; i < options.length; i++) {
    const opt = options[i]!;
    const bad = (why: string) =>
      invalidArgument(`exec option ${JSON.stringify(opt)} is not allowed: ${why}`, `exec_options[${i}]`);
    if (FLAGS.has(opt)) continue;
    const [name, inline] =
      opt.startsWith("--") && opt.includes("=")
        ? [opt.slice(0, opt.indexOf("=")), opt.slice(opt.indexOf("=") + 1)]
        : [opt, undefined];
    if (WITH_VALUE.has(name)) {
      const value = inline ?? options[++i];
      if (value === undefined || value.startsWith("-")) throw bad("it needs a value");
      if ((name === "-s" || name === "--sandbox") && !SANDBOX_VALUES.has(value))
        throw bad(`the sandbox must be one of ${[...SANDBOX_VALUES].join(", ")}`);
      if ((name === "-s" || name === "--sandbox") && value === "danger-full-access")
        throw new GatewayError(
          "failed_precondition",
          "danger-full-access runs Codex without its own sandbox: allowed only inside agentgate's sandbox",
          { param: `exec_options[${i}]` },
        );
      continue;
    }
    if (name === "-c" || name === "--config") {
      const kv = inline ?? options[++i];
      const key = kv?.split("=")[0]?.trim();
      if (!kv || !kv.includes("=") || !key) throw bad("it needs key=value");
      if (!CONFIG_KEYS.has(key))
        throw bad(`config key ${JSON.stringify(key)} is not in the allowlist (${[...CONFIG_KEYS].join(", ")})`);
      continue;
    }
    throw bad("it is not in the allowlist");
  }
}

/** Whether options already name a sandbox (then no default is added, as seed 002 does). */
function namesSandbox(options: string[]): boolean {
  return options.some((o) => o === "-s" || o === "--sandbox" || o.startsWith("--sandbox="));
}

export interface CodexArgsInput {
  serverOptions: string[];
  jobOptions: string[];
  sandbox: CodexSandboxPolicy;
  model?: string;
  outputSchemaFile?: string;
  resumeThreadId?: string;
}

/**
 * exec [options] [resume <thread>] -   (the prompt comes on stdin). Options go before `resume`:
 * the CLI accepts `-s` only there.
 */
export function codexArgs(i: CodexArgsInput): string[] {
  const options = [...i.serverOptions, ...i.jobOptions];
  const args = ["exec", "--json", "--skip-git-repo-check", ...options];
  if (!namesSandbox(options)) args.push("--sandbox", i.sandbox);
  if (i.model && !options.some((o) => o === "-m" || o === "--model" || o.startsWith("--model=")))
    args.push("-m", i.model);
  if (i.outputSchemaFile) args.push("--output-schema", i.outputSchemaFile);
  if (i.resumeThreadId) args.push("resume", i.resumeThreadId);
  args.push("-");
  return args;
}

/**
 * Options without any `-s X` / `--sandbox X` / `--sandbox=X`: inside agentgate's sandbox Codex's own
 * sandbox cannot work (it cannot nest), so the runner names `danger-full-access` itself.
 */
export function withoutSandboxOptions(options: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < options.length; i++) {
    const o = options[i]!;
    if (o === "-s" || o === "--sandbox") {
      i++; // and its value
      continue;
    }
    if (o.startsWith("--sandbox=")) continue;
    out.push(o);
    // Another option's value is never mistaken for an option (`-m -s` names a model "-s").
    if ((WITH_VALUE.has(o) || o === "-c" || o === "--config") && i + 1 < options.length) out.push(options[++i]!);
  }
  return out;
}
