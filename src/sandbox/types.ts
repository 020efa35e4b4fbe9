/**
 * The contract between the agent supervisor (src/agents/) and the sandbox drivers (src/sandbox/):
 * the supervisor says what to run and under which limits; a driver says how to start it so that
 * node-pty can spawn it (one executable and its argv, never a shell string built from input).
 */

export type SandboxDriverName = "none" | "bwrap" | "nsjail";

/** Per-agent resource limits; unset fields are not limited. Wall and idle time are the supervisor's. */
export interface ProcessLimits {
  addressSpaceBytes?: number;
  cpuSeconds?: number;
  fileSizeBytes?: number;
  openFiles?: number;
  processes?: number;
}

export interface SandboxSpec {
  driver: SandboxDriverName;
  /** The program and its arguments, as given (argv[0] looked up on PATH inside the sandbox). */
  argv: string[];
  /** The agent's writable directory on the host; inside bwrap it appears at `/workspace`. */
  workspace: string;
  /** Environment for the program (the sandbox clears everything else). */
  env: Record<string, string>;
  /** Allow network access (bwrap: `--share-net`); default no network at all. */
  network: boolean;
  limits: ProcessLimits;
  /** Host paths that must not be visible inside (agentgate's DATA_DIR ...). */
  hiddenPaths: string[];
  /**
   * Host paths shown read-only at the same path inside bwrap (the minimal root has only /usr and /etc),
   * e.g. the Codex CLI's package directory under node_modules. Ignored by the `none` driver.
   */
  readOnlyPaths?: string[];
  /** The unprivileged uid/gid to run as (from a per-agent pool), so RLIMIT_NPROC counts per agent. */
  uid?: number;
  /**
   * Whether the program runs on a terminal (default true: agents under node-pty). false is for pipes
   * (jobs): bwrap leaves out the step that makes the program the terminal's foreground group and only
   * closes inherited descriptors above 2 before the exec (foreground.ts).
   */
  terminal?: boolean;
}

/** How to start a sandboxed program (under node-pty, or with pipes when `terminal` is false). */
export interface SandboxLaunch {
  file: string;
  args: string[];
  /** Environment for `file` itself (not the program's: that is inside args for bwrap). */
  env: Record<string, string>;
  /** Working directory for `file` on the host. */
  cwd: string;
  /** The program's working directory as it sees it (`/workspace` under bwrap). */
  programCwd: string;
  /** Removes temporary files the launch needed (the seccomp filter file ...). Idempotent. */
  cleanup(): void;
}

export interface SandboxDriver {
  readonly name: SandboxDriverName;
  /** Throws GatewayError failed_precondition naming the Debian package when a tool is missing. */
  prepare(spec: SandboxSpec): SandboxLaunch;
}
