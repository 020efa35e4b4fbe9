/**
 * The bwrap command line for one agent, as a pure function of already-resolved host paths (the
 * driver does the file-system work). Every value is a separate argv element; nothing here is ever
 * parsed by a shell.
 *
 * The root is minimal (notes/pty-sandbox.md §7): only /usr (merged-/usr Debian, with the usual
 * symlinks), /etc, the workspace at /workspace and any read-only extras exist. Everything else on
 * the host (/root, /home, /var, agentgate's data directory ...) is simply absent. A hidden path
 * only needs work when it lies inside something that is bound; it is then covered with an empty,
 * read-only tmpfs (a directory) or /dev/null (a file: reads fail with EACCES, as bwrap's mounts are
 * nodev).
 */
import path from "node:path";
import { GatewayError } from "../errors/gateway-error.js";
import { isWithin } from "./workspace.js";

export const SANDBOX_WORKSPACE = "/workspace";

/** Caps on the in-memory file systems: their pages are host RAM and no rlimit covers them. */
export const TMPFS_BYTES = {
  "/tmp": 256 * 1024 * 1024,
  "/dev/shm": 64 * 1024 * 1024,
  "/run": 16 * 1024 * 1024,
  "/home": 16 * 1024 * 1024,
} as const;

export interface HiddenPath {
  path: string;
  isDirectory: boolean;
}

export interface BwrapPlan {
  /** Real path of the workspace directory on the host. */
  workspace: string;
  /** Real paths bound read-only at the same place. */
  readOnlyPaths: string[];
  /** Real, existing paths that must not be visible. */
  hidden: HiddenPath[];
  env: Record<string, string>;
  network: boolean;
}

interface Bind {
  src: string;
  dest: string;
  /** A system directory the sandbox cannot work without. */
  system?: boolean;
}

/** Places where a read-only extra would collide with the sandbox's own mounts. */
const RESERVED_DESTS = [SANDBOX_WORKSPACE, "/proc", "/dev"];

export function bwrapFlags(plan: BwrapPlan): string[] {
  for (const p of plan.readOnlyPaths) {
    if (p === "/" || RESERVED_DESTS.some((r) => isWithin(p, r))) {
      throw new GatewayError("invalid_argument", `${p} cannot be bound read-only into the sandbox`, {
        param: "readOnlyPaths",
      });
    }
  }
  const binds: Bind[] = [
    { src: "/usr", dest: "/usr", system: true },
    { src: "/etc", dest: "/etc", system: true },
    { src: plan.workspace, dest: SANDBOX_WORKSPACE },
    ...plan.readOnlyPaths.map((p) => ({ src: p, dest: p })),
  ];
  const env: Record<string, string> = {
    PATH: "/usr/bin:/bin",
    HOME: SANDBOX_WORKSPACE,
    TERM: "xterm-256color",
    ...plan.env,
  };
  const size = (dest: keyof typeof TMPFS_BYTES) => ["--size", String(TMPFS_BYTES[dest]), "--tmpfs", dest];
  return [
    // Namespaces: user, ipc, pid, net, uts, cgroup. --unshare-user is explicit so bwrap fails rather
    // than silently running without one; --disable-userns stops nested user namespaces (ENOSPC).
    "--unshare-all",
    ...(plan.network ? ["--share-net"] : []),
    ...["--unshare-user", "--disable-userns"],
    // PR_SET_PDEATHSIG: the sandbox (a pid namespace, so the whole tree) dies with bwrap and its parent.
    "--die-with-parent",
    ...["--seccomp", "3"],
    ...["--ro-bind", "/usr", "/usr"],
    ...["--symlink", "usr/bin", "/bin"],
    ...["--symlink", "usr/lib", "/lib"],
    ...["--symlink", "usr/lib64", "/lib64"],
    ...["--symlink", "usr/sbin", "/sbin"],
    ...["--ro-bind", "/etc", "/etc"],
    ...size("/tmp"),
    ...size("/run"),
    ...size("/home"),
    ...["--bind", plan.workspace, SANDBOX_WORKSPACE],
    ...plan.readOnlyPaths.flatMap((p) => ["--ro-bind", p, p]),
    ...["--dev", "/dev"],
    ...size("/dev/shm"),
    ...["--proc", "/proc"],
    ...hiddenOverlays(binds, plan.hidden),
    // bwrap 0.8.0 leaves its root tmpfs and /dev writable (unbounded host RAM, and `rm -rf /` would
    // delete the /bin symlinks); only the mounts above stay writable.
    ...["--remount-ro", "/dev"],
    ...["--remount-ro", "/"],
    ...["--chdir", SANDBOX_WORKSPACE],
    ...["--cap-drop", "ALL"],
    ...["--hostname", "sandbox"],
    "--clearenv",
    ...Object.entries(env).flatMap(([k, v]) => ["--setenv", k, v]),
  ];
}

/** Mount options that make each hidden path inside a bound tree empty and read-only. */
export function hiddenOverlays(binds: Bind[], hidden: HiddenPath[]): string[] {
  const out: string[] = [];
  for (const b of binds) {
    const clash = hidden.find((h) => isWithin(b.src, h.path) && (b.system || b.src === h.path));
    if (clash) {
      throw new GatewayError(
        "invalid_argument",
        `hidden path ${clash.path} would hide ${b.src}, which the sandbox shows`,
        {
          param: "hiddenPaths",
        },
      );
    }
    // A workspace or read-only extra inside a hidden directory is fine: only that subtree is bound.
    // Below it, a hidden path inside another one is already covered (and its mountpoint would no
    // longer exist under the outer overlay).
    const inside = hidden.filter((h) => isWithin(h.path, b.src));
    const seen = new Set<string>();
    for (const h of inside) {
      if (seen.has(h.path) || inside.some((o) => o.path !== h.path && isWithin(h.path, o.path))) continue;
      seen.add(h.path);
      const dest = path.join(b.dest, path.relative(b.src, h.path));
      out.push(
        ...(h.isDirectory
          ? ["--perms", "0000", "--tmpfs", dest, "--remount-ro", dest]
          : ["--ro-bind", "/dev/null", dest]),
      );
    }
  }
  return out;
}
