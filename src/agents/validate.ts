/**
 * Semantic checks of a StartAgent request, shared by every API layer. Everything here ends up in
 * exec(2) (argv, environment) or in a limit, so bad input is refused with invalid_argument and the
 * field named, before anything is created.
 */
import { invalidArgument } from "../errors/gateway-error.js";
import { MAX_PAGE_SIZE } from "./agent-store.js";
import type { AgentLimits, StartAgentSpec, TerminalSize } from "./types.js";
import { validateWatchRules } from "./watch-rules.js";

export const DEFAULT_SIZE: TerminalSize = { cols: 120, rows: 32 };
export const DEFAULT_TERM = "xterm-256color";
export const MAX_TERMINAL_DIMENSION = 1000;

/** The largest values a caller may ask for (ProcessLimits: "values above the server's maxima"). */
export const LIMIT_MAXIMA: Required<AgentLimits> = {
  addressSpaceBytes: 2 ** 47, // 128 TiB, the x86-64 user address space
  cpuSeconds: 7 * 24 * 3600,
  fileSizeBytes: 2 ** 40, // 1 TiB
  openFiles: 1 << 20,
  processes: 1 << 16,
  wallTimeMs: 30 * 24 * 3600 * 1000,
  idleTimeMs: 30 * 24 * 3600 * 1000,
};

/**
 * Variables that change how the loader, the shell or Node start a program: a caller who may only set
 * environment must not gain code execution in helpers agentgate runs (prlimit, setpriv, bwrap).
 */
const DENIED_ENV = /^(LD_.*|DYLD_.*|NODE_OPTIONS|BASH_ENV|ENV|SHELLOPTS|BASHOPTS|PS4|IFS|GCONV_PATH)$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_ARGV = 4096;
const MAX_ARG_BYTES = 128 * 1024;
const MAX_ENV = 256;
const MAX_LABELS = 64;

export function validateSize(size: TerminalSize, param = "size"): void {
  for (const k of ["cols", "rows"] as const) {
    const v = size[k];
    if (!Number.isInteger(v) || v < 1 || v > MAX_TERMINAL_DIMENSION)
      throw invalidArgument(`${param}.${k} must be from 1 to ${MAX_TERMINAL_DIMENSION}, got ${v}`, `${param}.${k}`);
  }
}

function noNul(value: string, param: string): void {
  if (value.includes("\0")) throw invalidArgument(`${param} contains a NUL byte`, param);
}

export function validateLimits(limits: AgentLimits): void {
  for (const [key, max] of Object.entries(LIMIT_MAXIMA) as [keyof AgentLimits, number][]) {
    const v = limits[key];
    if (v === undefined) continue;
    if (!Number.isSafeInteger(v) || v < 1 || v > max)
      throw invalidArgument(`limits.${key} must be from 1 to ${max}, got ${v}`, `limits.${key}`);
  }
}

export function validateStartSpec(spec: StartAgentSpec): void {
  const argv = spec.argv ?? [];
  if (argv.length === 0) {
    if (!spec.prompt?.trim())
      throw invalidArgument("argv is empty and there is no prompt: name a program or give Codex a prompt", "argv");
    noNul(spec.prompt, "prompt");
    if (spec.model) noNul(spec.model, "model");
    if (spec.model && !/^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/.test(spec.model))
      throw invalidArgument(`model ${JSON.stringify(spec.model)} is not a model name`, "model");
  } else {
    if (argv.length > MAX_ARGV) throw invalidArgument(`argv has more than ${MAX_ARGV} elements`, "argv");
    if (!argv[0]) throw invalidArgument("argv[0] must name a program", "argv");
    argv.forEach((a, i) => noNul(a, `argv[${i}]`));
    if (argv.reduce((n, a) => n + Buffer.byteLength(a), 0) > MAX_ARG_BYTES)
      throw invalidArgument(`argv is longer than ${MAX_ARG_BYTES} bytes`, "argv");
  }
  if (spec.workingDirectory !== undefined && spec.workingDirectory !== "") {
    noNul(spec.workingDirectory, "working_directory");
    if (!spec.workingDirectory.startsWith("/"))
      throw invalidArgument("working_directory must be an absolute path", "working_directory");
  }
  const env = Object.entries(spec.env ?? {});
  if (env.length > MAX_ENV) throw invalidArgument(`at most ${MAX_ENV} environment variables`, "env");
  for (const [name, value] of env) {
    if (!ENV_NAME.test(name))
      throw invalidArgument(`environment variable name ${JSON.stringify(name)} is not valid`, "env");
    if (DENIED_ENV.test(name)) throw invalidArgument(`environment variable ${name} may not be set`, "env");
    noNul(value, `env.${name}`);
  }
  if (spec.size) validateSize(spec.size);
  if (spec.term && !/^[A-Za-z0-9._+-]{1,64}$/.test(spec.term))
    throw invalidArgument(`term ${JSON.stringify(spec.term)} is not a terminal name`, "term");
  validateLimits(spec.limits ?? {});
  validateWatchRules(spec.watchRules ?? []);
  if ((spec.name?.length ?? 0) > 200) throw invalidArgument("name is longer than 200 characters", "name");
  if (spec.name) noNul(spec.name, "name");
  const labels = Object.entries(spec.labels ?? {});
  if (labels.length > MAX_LABELS) throw invalidArgument(`at most ${MAX_LABELS} labels`, "labels");
  for (const [k, v] of labels) {
    if (!/^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$/.test(k))
      throw invalidArgument(
        `label key ${JSON.stringify(k)} must be 1-63 letters, digits, '.', '_', '/' or '-'`,
        "labels",
      );
    if (v.length > 256 || v.includes("\0"))
      throw invalidArgument(`label ${k}: values are at most 256 characters, without NUL`, "labels");
  }
}

export function validatePageSize(pageSize: number | undefined): void {
  if (pageSize !== undefined && (pageSize < 0 || pageSize > MAX_PAGE_SIZE))
    throw invalidArgument(`page_size must be from 0 to ${MAX_PAGE_SIZE}`, "page_size");
}
