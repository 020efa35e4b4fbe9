/**
 * What the Codex CLI needs to run inside agentgate's bwrap sandbox, shared by agents
 * (src/agents/agent-supervisor.ts) and jobs (src/jobs/job-runner.ts): its own CODEX_HOME in the
 * workspace whose provider is this agentgate, and the host paths of the CLI to show read-only.
 * docs/sandbox.md ("Codex inside the sandbox") has the reasoning.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import type { CodexCommand } from "../backends/codex/locate-codex.js";
import { DEFAULT_ENV_KEY, renderCodexConfig } from "../codex/codex-config.js";
import { GatewayError } from "../errors/gateway-error.js";
import { SANDBOX_WORKSPACE } from "./bwrap-args.js";

/** CODEX_HOME of Codex inside bwrap (the workspace is mounted at /workspace). */
export const SANDBOX_CODEX_HOME = `${SANDBOX_WORKSPACE}/.codex`;

export interface CodexHomeProvision {
  /** The workspace on the host (it appears as /workspace inside). */
  workspace: string;
  /** "host:port" of this agentgate (its replica address); empty while it is not listening. */
  replicaAddress: string;
  /** The model config.toml names. */
  model: string;
  /** agentgate's AUTH_TOKEN; without one a placeholder (agentgate then checks nothing). */
  authToken?: string;
}

/**
 * Writes `<workspace>/.codex` (0700) with a config.toml whose provider is this agentgate, for the
 * Codex CLI inside bwrap, and returns the program's env for it (CODEX_HOME and the provider key).
 * The operator's ~/.codex (auth.json, their config) is deliberately not copied: the sandbox is for
 * untrusted work, and anything in CODEX_HOME is readable by the program. The program gets only
 * agentgate's own token, which lets it do what it could do anyway through the network it needs:
 * call this agentgate.
 *
 * Call it before the driver's prepare(): bwrap's prepare chowns the workspace tree, .codex
 * included, to the sandbox uid.
 */
export function provisionCodexHome(p: CodexHomeProvision): Record<string, string> {
  if (!p.replicaAddress)
    throw new GatewayError(
      "failed_precondition",
      "Codex in the sandbox calls agentgate back, but agentgate's address is not known yet (it is not listening)",
      { code: "replica_address_unknown" },
    );
  const config = renderCodexConfig({ baseUrl: `http://${dialable(p.replicaAddress)}/v1`, model: p.model });
  const home = path.join(p.workspace, ".codex");
  try {
    fs.mkdirSync(home, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
  }
  // A workspace that is not fresh may hold anything an earlier program left: never follow a symlink.
  const st = fs.lstatSync(home);
  if (!st.isDirectory() || st.isSymbolicLink())
    throw new GatewayError("failed_precondition", `${home} exists and is not a directory`, {
      code: "codex_home_invalid",
    });
  fs.chmodSync(home, 0o700);
  // A new file renamed over config.toml replaces a symlink there instead of writing through it.
  const tmp = path.join(home, `.config.toml.${process.pid}.${Date.now()}`);
  const fd = fs.openSync(
    tmp,
    fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW,
    0o600,
  );
  try {
    fs.writeSync(fd, config);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, path.join(home, "config.toml"));
  return { CODEX_HOME: SANDBOX_CODEX_HOME, [DEFAULT_ENV_KEY]: p.authToken || "agentgate-without-auth-token" };
}

/**
 * Host directories a sandbox must show read-only for this Codex command: the command's directory
 * and, for the bundled CLI (a Node script), its node_modules/@openai directory (the script and the
 * platform package beside it). Paths under /usr are in every sandbox already.
 */
export function codexReadOnlyPaths(codex: CodexCommand): string[] {
  return [
    path.dirname(codex.command),
    ...codex.prefix.map((script) => path.dirname(path.dirname(path.dirname(script)))),
  ].filter((p) => !p.startsWith("/usr/"));
}

/** "host:port" a process on this host can dial: a wildcard bind is recorded under the host name. */
export function dialable(address: string): string {
  const i = address.lastIndexOf(":");
  const host = address.slice(0, i);
  return host === os.hostname() || host === "0.0.0.0"
    ? `127.0.0.1${address.slice(i)}`
    : host === "[::]"
      ? `[::1]${address.slice(i)}`
      : address;
}
