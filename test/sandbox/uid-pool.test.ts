import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../src/errors/gateway-error.js";
import { DEFAULT_UID_RANGE, hostReservedIds, processUids, UidPool } from "../../src/sandbox/uid-pool.js";

const none = () => new Set<number>();
const free = () => false;

describe("UidPool", () => {
  it("hands out distinct uids and never one that is still out", () => {
    const pool = new UidPool({ first: 1000, last: 1002, isReserved: free, liveUids: none });
    const got = [pool.acquire(), pool.acquire(), pool.acquire()];
    expect(new Set(got).size).toBe(3);
    expect(pool.inUse).toBe(3);
    expect(() => pool.acquire()).toThrow(/no free sandbox uid/);
    pool.release(1001);
    expect(pool.acquire()).toBe(1001);
  });

  it("reuses a released uid as late as possible (next-fit)", () => {
    const pool = new UidPool({ first: 1000, last: 1003, isReserved: free, liveUids: none });
    const a = pool.acquire();
    pool.release(a);
    expect(pool.acquire()).toBe(1001);
    expect(pool.acquire()).toBe(1002);
    expect(pool.acquire()).toBe(1003);
    expect(pool.acquire()).toBe(1000);
  });

  it("skips uids that own host processes and reserved ids", () => {
    const pool = new UidPool({
      first: 1000,
      last: 1004,
      isReserved: (id) => id === 1001,
      liveUids: () => new Set([1000, 1002]),
    });
    expect(pool.acquire()).toBe(1003);
    expect(pool.acquire()).toBe(1004);
    let err: unknown;
    try {
      pool.acquire();
    } catch (e) {
      err = e;
    }
    expect((err as GatewayError).kind).toBe("resource_exhausted");
  });

  it("releasing a uid that is not out does nothing", () => {
    const pool = new UidPool({ first: 1000, last: 1000, isReserved: free, liveUids: none });
    pool.release(1000);
    expect(pool.acquire()).toBe(1000);
    expect(pool.inUse).toBe(1);
  });

  it("rejects ranges that include root or (uid_t)-1, and empty ones", () => {
    expect(() => new UidPool({ first: 0, last: 10 })).toThrow(GatewayError);
    expect(() => new UidPool({ first: 10, last: 0xffffffff })).toThrow(GatewayError);
    expect(() => new UidPool({ first: 10, last: 9 })).toThrow(/empty/);
  });

  it("defaults to 200000-265535, outside this host's accounts", () => {
    const pool = new UidPool();
    expect([pool.first, pool.last]).toEqual([DEFAULT_UID_RANGE.first, DEFAULT_UID_RANGE.last]);
    const uid = pool.acquire();
    expect(uid).toBeGreaterThanOrEqual(200000);
    pool.release(uid);
  });

  it("starts the default range at a random uid, so pools of two processes rarely meet", () => {
    const firsts = new Set(
      Array.from({ length: 20 }, () => new UidPool({ isReserved: free, liveUids: none }).acquire()),
    );
    expect(firsts.size).toBeGreaterThan(15);
    for (const uid of firsts) expect(uid).toBeGreaterThanOrEqual(DEFAULT_UID_RANGE.first);
    for (const uid of firsts) expect(uid).toBeLessThanOrEqual(DEFAULT_UID_RANGE.last);
    // An explicit range keeps its order (and a random start can be asked for).
    expect(new UidPool({ first: 1000, last: 1002, isReserved: free, liveUids: none }).acquire()).toBe(1000);
  });

  it("reads reserved ids from passwd, group, subuid and subgid", () => {
    const etc = mkdtempSync(path.join(os.tmpdir(), "agentgate-etc-"));
    try {
      writeFileSync(path.join(etc, "passwd"), "root:x:0:0::/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/sh\n");
      writeFileSync(path.join(etc, "group"), "staff:x:50:\nbig:x:200010:\n");
      writeFileSync(path.join(etc, "subuid"), "alice:165536:65536\n");
      const reserved = hostReservedIds(etc);
      expect([0, 1000, 50, 200010, 165536, 231071].every(reserved)).toBe(true);
      expect([1, 999, 165535, 231072, 300000].some(reserved)).toBe(false);
    } finally {
      rmSync(etc, { recursive: true, force: true });
    }
  });

  it("sees the uids of running processes", () => {
    expect(processUids().has(process.getuid!())).toBe(true);
  });
});
