/**
 * A lock file that keeps two processes from opening the same PGlite directory (PGlite is a single
 * Postgres backend writing straight to the files: two of them would corrupt the cluster).
 *
 * The file holds JSON {pid, hostname, bootId, procStart, token, since}. An existing lock is stale, and is
 * taken over, when:
 *   - same host and the pid is not running, or is running but started at another time (pid reused, e.g.
 *     pid 1 in a restarted container), or the host rebooted since (boot id differs);
 *   - another host (e.g. a recreated container on a shared volume): its holder refreshes the file's mtime
 *     every 5 s, so a lock untouched for 30 s is considered abandoned.
 * Otherwise opening fails with DatabaseLockedError naming the directory and the holder.
 */
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import os from "node:os";

export const LOCK_REFRESH_MS = 5_000;
export const FOREIGN_LOCK_STALE_MS = 30_000;

export interface LockOwner {
  pid: number;
  hostname: string;
  bootId?: string;
  procStart?: string;
  token: string;
  since: string;
}

export class DatabaseLockedError extends Error {
  readonly code = "EDBLOCKED";
  constructor(
    readonly dir: string,
    readonly lockFile: string,
    readonly owner: Partial<LockOwner>,
    reason: string,
  ) {
    super(
      `The PGlite data directory ${dir} is in use by another process ` +
        `(pid ${owner.pid ?? "?"} on ${owner.hostname ?? "?"}, since ${owner.since ?? "?"}; ${reason}). ` +
        `Stop that process or point DATA_DIR elsewhere; if you are sure nothing uses it, delete ${lockFile}.`,
    );
    this.name = "DatabaseLockedError";
  }
}

export interface DirLock {
  readonly file: string;
  release(): void;
}

const held = new Map<string, LockOwner>();
let exitHookInstalled = false;

/** Takes the lock `file` guarding `dir`, or throws DatabaseLockedError. */
export function acquireDirLock(file: string, dir: string, opts: { onLost?: (msg: string) => void } = {}): DirLock {
  if (held.has(file)) {
    throw new DatabaseLockedError(dir, file, held.get(file)!, "already open in this process");
  }
  const me: LockOwner = {
    pid: process.pid,
    hostname: os.hostname(),
    bootId: bootId(),
    procStart: procStart(process.pid),
    token: randomBytes(8).toString("hex"),
    since: new Date().toISOString(),
  };
  const body = JSON.stringify(me);
  for (let attempt = 0; ; attempt++) {
    try {
      const fd = fs.openSync(file, "wx", 0o644);
      try {
        fs.writeSync(fd, body);
      } finally {
        fs.closeSync(fd);
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      if (attempt >= 3) throw new DatabaseLockedError(dir, file, {}, "other openers keep taking the lock");
    }
    // Someone's lock is there: decide whether it is live.
    let raw: string;
    let mtimeMs: number;
    try {
      raw = fs.readFileSync(file, "utf8");
      mtimeMs = fs.statSync(file).mtimeMs;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue; // released meanwhile
      throw err;
    }
    const verdict = judge(raw, mtimeMs);
    if (verdict.live) throw new DatabaseLockedError(dir, file, verdict.owner, verdict.reason);
    takeOver(file, raw);
  }
  held.set(file, me);
  installExitHook();

  const timer = setInterval(() => {
    try {
      const current = fs.readFileSync(file, "utf8");
      if (!current.includes(me.token)) {
        opts.onLost?.(`lock file ${file} was replaced by another process`);
        return;
      }
      const now = new Date();
      fs.utimesSync(file, now, now);
    } catch (err) {
      opts.onLost?.(`cannot refresh lock file ${file}: ${(err as Error).message}`);
    }
  }, LOCK_REFRESH_MS);
  timer.unref();

  let released = false;
  return {
    file,
    release() {
      if (released) return;
      released = true;
      clearInterval(timer);
      held.delete(file);
      removeIfOurs(file, me.token);
    },
  };
}

interface Verdict {
  live: boolean;
  owner: Partial<LockOwner>;
  reason: string;
}

/** Exported for tests. */
export function judge(raw: string, mtimeMs: number, now = Date.now()): Verdict {
  let owner: Partial<LockOwner>;
  try {
    owner = JSON.parse(raw) as Partial<LockOwner>;
  } catch {
    // Being written right now by another opener, or garbage left by a crash.
    const fresh = now - mtimeMs < 2_000;
    return { live: fresh, owner: {}, reason: fresh ? "lock being written" : "unreadable lock" };
  }
  const age = now - mtimeMs;
  if (owner.hostname !== os.hostname()) {
    return age < FOREIGN_LOCK_STALE_MS
      ? { live: true, owner, reason: `lock refreshed ${Math.round(age / 1000)} s ago` }
      : { live: false, owner, reason: `lock from another host not refreshed for ${Math.round(age / 1000)} s` };
  }
  const myBoot = bootId();
  if (owner.bootId && myBoot && owner.bootId !== myBoot) {
    return { live: false, owner, reason: "host rebooted since" };
  }
  if (owner.pid === process.pid) {
    // Our own pid: either a lock this process holds (another path to the same directory) or one left
    // by a previous run that had the same pid (pid 1 in a restarted container).
    const ours = [...held.values()].some((o) => o.token === owner.token);
    return ours
      ? { live: true, owner, reason: "already open in this process" }
      : { live: false, owner, reason: "left by a previous run with the same pid" };
  }
  if (typeof owner.pid !== "number" || !pidAlive(owner.pid)) {
    return { live: false, owner, reason: "process not running" };
  }
  const start = procStart(owner.pid);
  if (owner.procStart && start && owner.procStart !== start) {
    return { live: false, owner, reason: "pid reused by another process" };
  }
  return { live: true, owner, reason: "process is running" };
}

function takeOver(file: string, staleRaw: string): void {
  // Move the stale file aside, then check we moved what we judged: if another opener replaced it in
  // between, put theirs back and let the loop re-evaluate.
  const aside = `${file}.stale-${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    fs.renameSync(file, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  const moved = fs.readFileSync(aside, "utf8");
  if (moved !== staleRaw) {
    try {
      fs.linkSync(aside, file);
    } catch {
      /* a third opener got there first; the loop sees its lock */
    }
  }
  fs.rmSync(aside, { force: true });
}

function removeIfOurs(file: string, token: string): void {
  try {
    if (fs.readFileSync(file, "utf8").includes(token)) fs.rmSync(file, { force: true });
  } catch {
    /* already gone */
  }
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on("exit", () => {
    for (const [file, owner] of held) removeIfOurs(file, owner.token);
  });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Process start time in clock ticks since boot (Linux), to tell a reused pid apart. */
function procStart(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return fields[19];
  } catch {
    return undefined;
  }
}

let cachedBootId: string | null | undefined;
function bootId(): string | undefined {
  if (cachedBootId === undefined) {
    try {
      cachedBootId = fs.readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
    } catch {
      cachedBootId = null;
    }
  }
  return cachedBootId ?? undefined;
}
