/**
 * The "bwrap" driver: notes/pty-sandbox.md §9, as node-pty will spawn it.
 *
 *   /bin/sh -c 'bpf=$1; shift; exec "$@" 3<"$bpf"' agentgate-sandbox <filter file>
 *     setpriv --reuid=U --regid=U --clear-groups --
 *     prlimit --as=.. --cpu=.. --fsize=.. --nofile=.. --nproc=.. --
 *     bwrap <flags from bwrap-args.ts> --
 *     /usr/bin/perl -e <foreground step> -- <argv...>
 *
 * The shell is there only to open the seccomp filter as fd 3 (node-pty cannot pass extra fds) while
 * still privileged, so the filter file can stay private; `exec` leaves no unsandboxed shell on the
 * PTY. Its script is a constant: the filter path and the whole command line are positional
 * parameters, so no input is ever parsed by a shell. setpriv comes first so that prlimit and bwrap
 * already run as the agent's uid (RLIMIT_NPROC only counts for a non-root real uid), and the PTY's
 * child process is bwrap itself: node-pty's pid is bwrap's, and killing it ends the sandbox.
 *
 * With `terminal: false` (jobs, spawned with pipes in a process group of their own) the last step
 * is `/usr/bin/perl -e <close inherited fds> -- <argv...>` instead: there is no terminal to hand
 * over, and the program stays in the launcher's process group, so a signal to that group reaches
 * bwrap and everything in the sandbox that did not leave it (--die-with-parent covers the rest).
 */
import { spawnSync } from "node:child_process";
import { lstatSync, realpathSync } from "node:fs";
import os from "node:os";
import { GatewayError } from "../errors/gateway-error.js";
import type { SystemTools } from "../system/system-tools.js";
import { bwrapFlags, SANDBOX_WORKSPACE, type HiddenPath } from "./bwrap-args.js";
import { inForeground, withInheritedFdsClosed } from "./foreground.js";
import { prlimitOptions } from "./limits.js";
import { buildTiocstiFilter, writeTiocstiFilter } from "./seccomp-filter.js";
import { checkSpec } from "./spec-checks.js";
import type { SandboxDriver, SandboxLaunch, SandboxSpec } from "./types.js";
import { checkReachable, checkWorkspacePlacement, chownTree, isWithin, resolveDirectory } from "./workspace.js";

export const LAUNCH_SCRIPT = 'bpf=$1; shift; exec "$@" 3<"$bpf"';
export const LAUNCH_SHELL = "/bin/sh";

/** Hidden whatever the spec says (the minimal root leaves them out anyway; this covers read-only extras). */
const ALWAYS_HIDDEN = ["/root", "/home"];

export interface BwrapDriverOptions {
  /** Where the seccomp filter files go (default os.tmpdir()). */
  tmpDir?: string;
  /** Node-style architecture for the seccomp filter (default process.arch). */
  arch?: string;
}

/**
 * The launch shell's arguments: the constant script, then everything else as positional
 * parameters ($0 names the shell in its error messages, $1 is the filter file, the rest is exec'd).
 */
export function launchArgs(parts: { filter: string; chain: string[]; argv: string[] }): string[] {
  return ["-c", LAUNCH_SCRIPT, "agentgate-sandbox", parts.filter, ...parts.chain, ...parts.argv];
}

export class BwrapDriver implements SandboxDriver {
  readonly name = "bwrap" as const;
  private probed = false;

  constructor(
    private readonly tools: SystemTools,
    private readonly options: BwrapDriverOptions = {},
  ) {}

  prepare(spec: SandboxSpec): SandboxLaunch {
    checkSpec(spec);
    const bwrap = this.tools.require("bwrap", "the bwrap sandbox");
    const limits = prlimitOptions(spec.limits);
    const prlimit = limits.length > 0 ? this.tools.require("prlimit", "sandbox resource limits") : undefined;
    const uid = this.agentUid(spec);
    const setpriv = uid === undefined ? undefined : this.tools.require("setpriv", "running agents under their own uid");
    buildTiocstiFilter(this.options.arch); // refuse an unknown architecture before touching anything

    const workspace = resolveDirectory(spec.workspace, "workspace");
    const hidden = resolveHidden([...ALWAYS_HIDDEN, os.homedir(), ...spec.hiddenPaths]);
    checkWorkspacePlacement(
      workspace,
      hidden.map((h) => h.path),
    );
    const readOnlyPaths = (spec.readOnlyPaths ?? []).map((p) => resolveExisting(p, "readOnlyPaths"));
    const flags = bwrapFlags({ workspace, readOnlyPaths, hidden, env: spec.env, network: spec.network });

    const dropPrivileges =
      uid === undefined ? [] : [setpriv!, `--reuid=${uid}`, `--regid=${uid}`, "--clear-groups", "--"];
    if (uid !== undefined) {
      for (const p of [workspace, ...readOnlyPaths]) checkReachable(p, uid, "sandbox path");
      // The agent must be able to write its workspace; hidden paths inside it stay agentgate's.
      const hiddenInside = hidden.map((h) => h.path).filter((h) => h !== workspace && isWithin(h, workspace));
      chownTree(workspace, uid, uid, hiddenInside);
    }
    this.probe(bwrap, dropPrivileges);

    const filter = writeTiocstiFilter(this.options.arch, this.options.tmpDir);
    return {
      file: LAUNCH_SHELL,
      args: launchArgs({
        filter: filter.path,
        chain: [...dropPrivileges, ...(prlimit ? [prlimit, ...limits, "--"] : []), bwrap, ...flags, "--"],
        // No terminal (a job on pipes): no foreground hand-over, which would need a tty.
        argv: spec.terminal === false ? withInheritedFdsClosed(spec.argv) : inForeground(spec.argv),
      }),
      // The shell and the tools are named by absolute path; bwrap --clearenv drops this anyway.
      env: { PATH: "/usr/bin:/bin" },
      cwd: workspace,
      programCwd: SANDBOX_WORKSPACE,
      cleanup: filter.remove,
    };
  }

  /** The uid to switch to, or undefined to stay the current user (only when not root). */
  private agentUid(spec: SandboxSpec): number | undefined {
    const self = process.getuid?.() ?? 0;
    if (self === 0) {
      // As root, bwrap alone keeps a root real uid: NPROC would not count, and a mistake in the
      // mount plan would be a root-owned mistake.
      if (spec.uid === undefined) {
        throw new GatewayError(
          "invalid_argument",
          "the bwrap sandbox needs a uid from the uid pool when agentgate runs as root",
          {
            param: "uid",
          },
        );
      }
      return spec.uid;
    }
    if (spec.uid === undefined || spec.uid === self) return undefined;
    throw new GatewayError(
      "failed_precondition",
      `running an agent as uid ${spec.uid} needs agentgate to run as root`,
      {
        code: "sandbox_uid_unavailable",
      },
    );
  }

  /**
   * Runs a trivial sandbox once, the way Codex does, so that a host without unprivileged user
   * namespaces (or similar) gets a clear failed_precondition instead of an agent that dies at once.
   */
  private probe(bwrap: string, dropPrivileges: string[]): void {
    if (this.probed) return;
    const [file, ...args] = [
      ...dropPrivileges,
      bwrap,
      ...["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--cap-drop", "ALL"],
      ...["--ro-bind", "/usr", "/usr", "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64"],
      ...["--proc", "/proc", "--dev", "/dev", "--", "/usr/bin/true"],
    ];
    const r = spawnSync(file, args, { encoding: "utf8", timeout: 10_000, cwd: "/" });
    if (r.status !== 0) {
      const why = (r.stderr || r.error?.message || `exit ${r.status ?? r.signal}`).trim();
      throw new GatewayError("failed_precondition", `bwrap cannot create a sandbox on this host: ${why}`, {
        code: "sandbox_unavailable",
      });
    }
    this.probed = true;
  }
}

function resolveExisting(p: string, param: string): string {
  try {
    return realpathSync(p);
  } catch {
    throw new GatewayError("invalid_argument", `${p} does not exist`, { param });
  }
}

/** Real paths of the hidden paths that exist (a missing path has nothing to hide). */
function resolveHidden(paths: string[]): HiddenPath[] {
  const out: HiddenPath[] = [];
  for (const p of paths) {
    let real: string;
    try {
      real = realpathSync(p);
    } catch {
      continue;
    }
    if (!out.some((h) => h.path === real)) out.push({ path: real, isDirectory: lstatSync(real).isDirectory() });
  }
  return out;
}
