import { readFileSync, statSync, existsSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { GatewayError } from "../../src/errors/gateway-error.js";
import {
  buildTiocstiFilter,
  SECCOMP_RET_ALLOW,
  SECCOMP_RET_ERRNO,
  SECCOMP_RET_KILL_PROCESS,
  TIOCLINUX,
  TIOCSTI,
  writeTiocstiFilter,
} from "../../src/sandbox/seccomp-filter.js";

/** A classic-BPF interpreter for the instructions the filter uses (ld w abs, jeq k, jge k, ret k). */
function runFilter(prog: Buffer, nr: number, arch: number, args: bigint[] = []): number {
  const data = Buffer.alloc(64); // struct seccomp_data
  data.writeInt32LE(nr, 0);
  data.writeUInt32LE(arch, 4);
  args.forEach((a, i) => data.writeBigUInt64LE(a, 16 + i * 8));
  let acc = 0;
  for (let pc = 0; pc < prog.length / 8; pc++) {
    const code = prog.readUInt16LE(pc * 8);
    const jt = prog.readUInt8(pc * 8 + 2);
    const jf = prog.readUInt8(pc * 8 + 3);
    const k = prog.readUInt32LE(pc * 8 + 4);
    if (code === 0x20) acc = data.readUInt32LE(k);
    else if (code === 0x15) pc += acc === k ? jt : jf;
    else if (code === 0x35) pc += acc >= k ? jt : jf;
    else if (code === 0x06) return k;
    else throw new Error(`unexpected opcode ${code.toString(16)}`);
  }
  throw new Error("fell off the end of the program");
}

const X86_64 = 0xc000003e;
const AARCH64 = 0xc00000b7;
const I386 = 0x40000003;
const EPERM = SECCOMP_RET_ERRNO | 1;

describe("TIOCSTI seccomp filter", () => {
  it("is the documented 11-instruction program for x86-64, byte for byte", () => {
    const prog = buildTiocstiFilter("x64");
    expect(prog.length).toBe(88);
    expect(prog.toString("hex")).toBe(
      [
        "2000000004000000", // ld [4] (arch)
        "150000083e0000c0", // jeq AUDIT_ARCH_X86_64, 0, 8
        "2000000000000000", // ld [0] (nr)
        "3500060000000040", // jge 0x40000000, 6, 0 (x32)
        "1500000310000000", // jeq 16 (ioctl), 0, 3
        "2000000018000000", // ld [24] (args[1] low word)
        "1500020012540000", // jeq TIOCSTI, 2, 0
        "150001001c540000", // jeq TIOCLINUX, 1, 0
        "060000000000ff7f", // ret ALLOW
        "0600000001000500", // ret ERRNO|EPERM
        "0600000000000080", // ret KILL_PROCESS
      ].join(""),
    );
  });

  it("on x86-64: EPERM for TIOCSTI and TIOCLINUX (whatever the high bits), other ioctls and syscalls pass", () => {
    const prog = buildTiocstiFilter("x64");
    expect(runFilter(prog, 16, X86_64, [0n, BigInt(TIOCSTI)])).toBe(EPERM);
    expect(runFilter(prog, 16, X86_64, [0n, BigInt(TIOCLINUX)])).toBe(EPERM);
    expect(runFilter(prog, 16, X86_64, [0n, 0xffffffff00005412n])).toBe(EPERM);
    expect(runFilter(prog, 16, X86_64, [0n, 0x5401n])).toBe(SECCOMP_RET_ALLOW); // TCGETS
    expect(runFilter(prog, 16, X86_64, [0n, 0x5410n])).toBe(SECCOMP_RET_ALLOW); // TIOCSPGRP (foreground step)
    expect(runFilter(prog, 16, X86_64, [0n, 0x5414n])).toBe(SECCOMP_RET_ALLOW); // TIOCSWINSZ
    expect(runFilter(prog, 0, X86_64, [0n, BigInt(TIOCSTI)])).toBe(SECCOMP_RET_ALLOW); // read()
  });

  it("kills foreign architectures and x32 syscall numbers", () => {
    const prog = buildTiocstiFilter("x64");
    expect(runFilter(prog, 54, I386, [0n, BigInt(TIOCSTI)])).toBe(SECCOMP_RET_KILL_PROCESS);
    expect(runFilter(prog, 0x40000000 | 514, X86_64, [0n, BigInt(TIOCSTI)])).toBe(SECCOMP_RET_KILL_PROCESS);
    expect(runFilter(prog, 29, AARCH64, [0n, BigInt(TIOCSTI)])).toBe(SECCOMP_RET_KILL_PROCESS);
  });

  it("has arm64 constants: ioctl is syscall 29 there", () => {
    const prog = buildTiocstiFilter("arm64");
    expect(runFilter(prog, 29, AARCH64, [0n, BigInt(TIOCSTI)])).toBe(EPERM);
    expect(runFilter(prog, 16, AARCH64, [0n, BigInt(TIOCSTI)])).toBe(SECCOMP_RET_ALLOW);
    expect(runFilter(prog, 29, X86_64, [0n, 0n])).toBe(SECCOMP_RET_KILL_PROCESS);
  });

  it("refuses an architecture it has no constants for", () => {
    expect(() => buildTiocstiFilter("riscv64")).toThrow(GatewayError);
    expect(() => buildTiocstiFilter("riscv64")).toThrow(/architecture riscv64/);
  });

  it("is written to a private file that remove() deletes, idempotently", () => {
    const f = writeTiocstiFilter("x64");
    expect(readFileSync(f.path).equals(buildTiocstiFilter("x64"))).toBe(true);
    expect(statSync(f.path).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(f.path)).mode & 0o777).toBe(0o700);
    f.remove();
    f.remove();
    expect(existsSync(path.dirname(f.path))).toBe(false);
  });
});
