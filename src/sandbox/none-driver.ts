/**
 * The "none" driver: no isolation at all. The program runs as agentgate's own user, directly in
 * the workspace, with the spec's environment over agentgate's PATH and HOME (so a program such as
 * Codex finds its usual configuration) and a TERM default. Limits still apply
 * through prlimit, except that RLIMIT_NPROC means little here: it counts every process of
 * agentgate's user (and nothing for root), so a per-agent uid is not used.
 */
import type { SystemTools } from "../system/system-tools.js";
import { prlimitOptions } from "./limits.js";
import { checkSpec } from "./spec-checks.js";
import type { SandboxDriver, SandboxLaunch, SandboxSpec } from "./types.js";
import { resolveDirectory } from "./workspace.js";

export class NoneDriver implements SandboxDriver {
  readonly name = "none" as const;

  constructor(private readonly tools: SystemTools) {}

  prepare(spec: SandboxSpec): SandboxLaunch {
    checkSpec(spec);
    const workspace = resolveDirectory(spec.workspace, "workspace");
    const limits = prlimitOptions(spec.limits);
    const argv =
      limits.length > 0
        ? [this.tools.require("prlimit", "agent resource limits"), ...limits, "--", ...spec.argv]
        : spec.argv;
    const env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: process.env.HOME ?? workspace,
      TERM: "xterm-256color",
      ...spec.env,
    };
    return { file: argv[0], args: argv.slice(1), env, cwd: workspace, programCwd: workspace, cleanup: () => {} };
  }
}
