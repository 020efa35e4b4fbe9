/**
 * Hands out one unprivileged uid per live agent (used as its gid too). A distinct uid is what makes
 * RLIMIT_NPROC a per-agent limit: the kernel counts processes per real uid, host-wide.
 *
 * A uid is never handed out while it is still in use: not while the pool has it out, not while
 * any host process still runs under it (a leftover from an earlier run, another pool), and never
 * one that belongs to a real account or a subordinate-id range (/etc/passwd, /etc/group,
 * /etc/subuid, /etc/subgid). Allocation is next-fit, so a released uid is reused as late as
 * possible. One pool per agentgate process: two pools over the same range in different
 * processes only avoid each other through the live-process check, which has a window between
 * acquire() and the spawn, and a pool kills every process of a uid it takes back. So a pool over
 * the default range starts at a random point of it: two agentgates on one host (replicas, test
 * workers running handlers every few milliseconds) then meet only by a 1-in-65,536 chance instead
 * of racing for 200000 at once.
 */
import { readFileSync, readdirSync } from "node:fs";
import { GatewayError } from "../errors/gateway-error.js";

export const DEFAULT_UID_RANGE = { first: 200000, last: 265535 } as const;

export interface UidPoolOptions {
  first?: number;
  last?: number;
  /** Ids that must never be handed out; default: accounts, groups and subordinate ranges on this host. */
  isReserved?: (id: number) => boolean;
  /** Uids that currently own processes; default: a scan of /proc. */
  liveUids?: () => Set<number>;
  /** Start next-fit at a random uid of the range (default: true for the default range only). */
  randomStart?: boolean;
}

export class UidPool {
  readonly first: number;
  readonly last: number;
  private readonly out = new Set<number>();
  private next: number;
  private readonly isReserved: (id: number) => boolean;
  private readonly liveUids: () => Set<number>;

  constructor(options: UidPoolOptions = {}) {
    this.first = options.first ?? DEFAULT_UID_RANGE.first;
    this.last = options.last ?? DEFAULT_UID_RANGE.last;
    // 0 is root; 4294967295 is (uid_t)-1, "no change" to setresuid.
    if (!Number.isInteger(this.first) || !Number.isInteger(this.last) || this.first < 1 || this.last > 0xfffffffe) {
      throw new GatewayError("invalid_argument", `uid range ${this.first}-${this.last} is not within 1-4294967294`);
    }
    if (this.first > this.last)
      throw new GatewayError("invalid_argument", `uid range ${this.first}-${this.last} is empty`);
    const random = options.randomStart ?? (options.first === undefined && options.last === undefined);
    this.next = random ? this.first + Math.floor(Math.random() * (this.last - this.first + 1)) : this.first;
    this.isReserved = options.isReserved ?? hostReservedIds();
    this.liveUids = options.liveUids ?? processUids;
  }

  /** A free uid; resource_exhausted when every uid in the range is out or busy. */
  acquire(): number {
    const live = this.liveUids();
    const size = this.last - this.first + 1;
    for (let i = 0; i < size; i++) {
      const uid = this.next;
      this.next = uid === this.last ? this.first : uid + 1;
      if (this.out.has(uid) || live.has(uid) || this.isReserved(uid)) continue;
      this.out.add(uid);
      return uid;
    }
    throw new GatewayError("resource_exhausted", `no free sandbox uid in ${this.first}-${this.last}`, {
      code: "uid_pool_exhausted",
    });
  }

  /** Gives a uid back once its agent has exited; releasing one that is not out does nothing. */
  release(uid: number): void {
    this.out.delete(uid);
  }

  get inUse(): number {
    return this.out.size;
  }
}

/** Real uids of all processes visible in /proc. */
export function processUids(): Set<number> {
  const uids = new Set<number>();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const m = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(readFileSync(`/proc/${name}/status`, "utf8"));
      if (m) for (const id of m.slice(1)) uids.add(Number(id));
    } catch {
      // the process exited while we looked
    }
  }
  return uids;
}

/** Ids named in /etc/passwd, /etc/group (third field) and covered by /etc/subuid, /etc/subgid ranges. */
export function hostReservedIds(etc = "/etc"): (id: number) => boolean {
  const ids = new Set<number>();
  const ranges: Array<[number, number]> = [];
  for (const [file, kind] of [
    ["passwd", "id"],
    ["group", "id"],
    ["subuid", "range"],
    ["subgid", "range"],
  ] as const) {
    let text = "";
    try {
      text = readFileSync(`${etc}/${file}`, "utf8");
    } catch {
      continue; // not every host has subordinate ids
    }
    for (const line of text.split("\n")) {
      const f = line.split(":");
      if (kind === "id" && f.length >= 3 && /^\d+$/.test(f[2])) ids.add(Number(f[2]));
      if (kind === "range" && f.length >= 3 && /^\d+$/.test(f[1]) && /^\d+$/.test(f[2])) {
        ranges.push([Number(f[1]), Number(f[1]) + Number(f[2]) - 1]);
      }
    }
  }
  return (id) => ids.has(id) || ranges.some(([lo, hi]) => id >= lo && id <= hi);
}

/**
 * Pids of the live (not zombie) processes whose real, effective or saved uid is `uid`. A zombie
 * cannot be signalled and holds nothing but its pid; the pool still counts it as busy (processUids).
 */
export function processesOfUid(uid: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = readFileSync(`/proc/${name}/status`, "utf8");
      if (/^State:\s+Z/m.test(status)) continue;
      const m = /^Uid:\s+(\d+)\s+(\d+)\s+(\d+)/m.exec(status);
      if (m && m.slice(1).some((id) => Number(id) === uid)) pids.push(Number(name));
    } catch {
      // the process exited while we looked
    }
  }
  return pids;
}

/**
 * SIGKILLs every live process of a sandbox uid until none is left or `timeoutMs` has passed; true
 * when none is left. For the end of a sandboxed run, once its launcher has exited: nothing of the
 * run may outlive it, whatever it did to leave the process group.
 */
export async function killUidProcesses(uid: number, timeoutMs = 2000): Promise<boolean> {
  // Never our own uid (or root): that would be agentgate itself.
  if (!Number.isInteger(uid) || uid < 1 || uid === process.getuid?.())
    throw new GatewayError("internal", `refusing to kill the processes of uid ${uid}`);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const pids = processesOfUid(uid);
    if (pids.length === 0) return true;
    if (Date.now() >= deadline) return false;
    for (const pid of pids) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // gone meanwhile
      }
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
