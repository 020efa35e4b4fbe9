/**
 * Host-side checks and ownership for the directories a sandbox binds.
 *
 * bwrap 0.8.0 resolves bind sources after setpriv has dropped to the agent's uid (it realpath()s
 * even `--bind-fd /proc/self/fd/N`), so every parent of the workspace must be searchable by that
 * uid: a workspace under a 0700 directory fails with "Can't find source path ... Permission denied".
 * We check that up front and name the directory. The workspace itself is chowned to the agent's
 * uid so the program can write it.
 */
import { lstatSync, readdirSync, lchownSync, realpathSync, statSync } from "node:fs";
import path from "node:path";
import { GatewayError } from "../errors/gateway-error.js";

/** Trees a workspace may never be in or be: chowning them to an agent would hand it the host. */
const SYSTEM_TREES = [
  "/usr",
  "/etc",
  "/bin",
  "/sbin",
  "/lib",
  "/lib32",
  "/lib64",
  "/boot",
  "/dev",
  "/proc",
  "/sys",
  "/run",
];
/** Directories that may contain workspaces but never be one. */
const SHARED_DIRS = ["/", "/var", "/var/lib", "/home", "/root", "/tmp", "/opt", "/srv", "/mnt", "/media"];

export function isWithin(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
}

/** The real path of an existing directory, or invalid_argument. */
export function resolveDirectory(dir: string, what: string): string {
  let real: string;
  try {
    real = realpathSync(dir);
  } catch {
    throw new GatewayError("invalid_argument", `${what} ${dir} does not exist`, { param: what });
  }
  if (!statSync(real).isDirectory())
    throw new GatewayError("invalid_argument", `${what} ${dir} is not a directory`, { param: what });
  return real;
}

/** Refuses a workspace that is a system directory, a shared parent directory or a hidden path. */
export function checkWorkspacePlacement(workspace: string, hidden: string[]): void {
  const bad =
    SYSTEM_TREES.some((t) => isWithin(workspace, t)) || SHARED_DIRS.includes(workspace) || hidden.includes(workspace);
  if (bad) {
    throw new GatewayError(
      "invalid_argument",
      `${workspace} cannot be a sandbox workspace (system, shared or hidden directory)`,
      {
        param: "workspace",
      },
    );
  }
}

/**
 * Fails unless uid (with gid = uid and no supplementary groups, as setpriv --clear-groups leaves it)
 * can search every directory above `target`.
 */
export function checkReachable(target: string, uid: number, what: string): void {
  for (let dir = path.dirname(target); ; dir = path.dirname(dir)) {
    const st = statSync(dir);
    const bit = st.uid === uid ? 0o100 : st.gid === uid ? 0o010 : 0o001;
    if (!(st.mode & bit)) {
      throw new GatewayError(
        "failed_precondition",
        `${what} ${target} is not reachable by sandbox uid ${uid}: ${dir} is not searchable (mode ${(st.mode & 0o7777).toString(8)}); ` +
          `keep workspaces under directories with o+x (e.g. 0711)`,
        { code: "sandbox_path_unreachable" },
      );
    }
    if (dir === "/") return;
  }
}

/**
 * Gives `root` and everything below it to uid:gid without following symlinks (lchown; symlinked
 * directories are not entered), skipping `skip` subtrees (hidden paths inside the workspace stay
 * agentgate's). Entries that already have the right owner are left alone, so a second run is cheap.
 * Hard links to files outside the tree would be chowned too; fs.protected_hardlinks (Debian's
 * default) stops an unprivileged uid from creating those, and inside the sandbox link(2) across
 * mounts fails with EXDEV.
 */
export function chownTree(root: string, uid: number, gid: number, skip: string[] = []): void {
  const visit = (p: string): void => {
    if (skip.some((s) => isWithin(p, s))) return;
    const st = lstatSync(p);
    if (st.uid !== uid || st.gid !== gid) lchownSync(p, uid, gid);
    if (!st.isDirectory()) return;
    for (const name of readdirSync(p)) visit(path.join(p, name));
  };
  visit(root);
}
