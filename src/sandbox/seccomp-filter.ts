/**
 * The seccomp filter handed to `bwrap --seccomp 3`: a raw classic-BPF program (what libseccomp's
 * `seccomp_export_bpf` would emit) that makes ioctl(TIOCSTI) and ioctl(TIOCLINUX) fail with EPERM.
 *
 * Why: the sandbox shares the agent's terminal with agentgate (no `bwrap --new-session`, see
 * docs/sandbox.md), so without this filter a sandboxed program could push bytes into the terminal's
 * input queue with TIOCSTI (CVE-2017-5226); TIOCLINUX can do the same on a virtual console.
 *
 * Program (11 instructions, 88 bytes; each `struct sock_filter` is <u16 code, u8 jt, u8 jf, u32 k>, LE):
 *   0  ld   [4]                    arch
 *   1  jeq  AUDIT_ARCH, 0, 8       foreign arch (i386 via int 0x80, arm32 compat ...) -> 10 kill
 *   2  ld   [0]                    syscall number
 *   3  jge  0x40000000, 6, 0       x32 ABI numbers (x86-64 arch with bit 30 set) -> 10 kill
 *   4  jeq  NR_ioctl, 0, 3         not ioctl -> 8 allow
 *   5  ld   [24]                   low 32 bits of args[1], the ioctl request
 *   6  jeq  TIOCSTI, 2, 0          -> 9 EPERM
 *   7  jeq  TIOCLINUX, 1, 0        -> 9 EPERM
 *   8  ret  ALLOW
 *   9  ret  ERRNO | EPERM
 *  10  ret  KILL_PROCESS
 * Instruction 3 is one more than the 10-instruction filter in the notes: on kernels built with x32
 * support, ioctl is reachable as x32 syscall 514 under the x86-64 arch value, which would slip past
 * an `nr == 16` test. No x86-64 or arm64 syscall number reaches 0x40000000, so nothing legitimate is
 * killed. Only the low word of the request is compared because the kernel's ioctl takes an
 * `unsigned int cmd`: high bits set by the caller are ignored by the kernel and by this filter alike.
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { GatewayError } from "../errors/gateway-error.js";

/** Per-architecture constants (include/uapi/linux/audit.h, the arch's unistd.h, asm-generic/ioctls.h). */
export interface SeccompArch {
  /** AUDIT_ARCH_* as seen in seccomp_data.arch. */
  auditArch: number;
  /** __NR_ioctl. */
  ioctl: number;
}

export const SECCOMP_ARCHES: Readonly<Record<string, SeccompArch>> = {
  // AUDIT_ARCH_X86_64 = EM_X86_64 (62) | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE; arch/x86/entry/syscalls/syscall_64.tbl: 16 ioctl.
  x64: { auditArch: 0xc000003e, ioctl: 16 },
  // AUDIT_ARCH_AARCH64 = EM_AARCH64 (183) | 64BIT | LE; arm64 uses the asm-generic table (include/uapi/asm-generic/unistd.h: 29 ioctl)
  // and asm-generic/ioctls.h, so TIOCSTI/TIOCLINUX have the same values as on x86.
  arm64: { auditArch: 0xc00000b7, ioctl: 29 },
};

export const TIOCSTI = 0x5412;
export const TIOCLINUX = 0x541c;

const BPF_LD_W_ABS = 0x20; // BPF_LD | BPF_W | BPF_ABS
const BPF_JEQ_K = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const BPF_JGE_K = 0x35; // BPF_JMP | BPF_JGE | BPF_K
const BPF_RET_K = 0x06; // BPF_RET | BPF_K

export const SECCOMP_RET_KILL_PROCESS = 0x80000000;
export const SECCOMP_RET_ERRNO = 0x00050000;
export const SECCOMP_RET_ALLOW = 0x7fff0000;
const EPERM = 1;
const X32_SYSCALL_BIT = 0x40000000;

// struct seccomp_data: int nr; __u32 arch; __u64 instruction_pointer; __u64 args[6].
const OFFSET_NR = 0;
const OFFSET_ARCH = 4;
const OFFSET_ARG1_LOW = 24; // args[1] starts at 16 + 8; its low word comes first on little-endian

/** The filter for a Node `process.arch`; refuses architectures whose constants are not known here. */
export function buildTiocstiFilter(arch: string = process.arch): Buffer {
  const a = SECCOMP_ARCHES[arch];
  if (!a) {
    throw new GatewayError(
      "failed_precondition",
      `the bwrap sandbox's seccomp filter has no constants for architecture ${arch} (supported: ${Object.keys(SECCOMP_ARCHES).join(", ")})`,
      { code: "unsupported_architecture" },
    );
  }
  const program: Array<[code: number, jt: number, jf: number, k: number]> = [
    [BPF_LD_W_ABS, 0, 0, OFFSET_ARCH],
    [BPF_JEQ_K, 0, 8, a.auditArch],
    [BPF_LD_W_ABS, 0, 0, OFFSET_NR],
    [BPF_JGE_K, 6, 0, X32_SYSCALL_BIT],
    [BPF_JEQ_K, 0, 3, a.ioctl],
    [BPF_LD_W_ABS, 0, 0, OFFSET_ARG1_LOW],
    [BPF_JEQ_K, 2, 0, TIOCSTI],
    [BPF_JEQ_K, 1, 0, TIOCLINUX],
    [BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW],
    [BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM],
    [BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS],
  ];
  const buf = Buffer.alloc(program.length * 8);
  program.forEach(([code, jt, jf, k], i) => {
    buf.writeUInt16LE(code, i * 8);
    buf.writeUInt8(jt, i * 8 + 2);
    buf.writeUInt8(jf, i * 8 + 3);
    buf.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return buf;
}

export interface SeccompFilterFile {
  path: string;
  /** Deletes the file and its directory; idempotent. */
  remove(): void;
}

/**
 * Writes the filter to a fresh private directory (0700, file 0600). The launch script opens it as
 * fd 3 before dropping privileges, so only the user agentgate runs as ever needs to read it.
 */
export function writeTiocstiFilter(arch: string = process.arch, tmpDir = os.tmpdir()): SeccompFilterFile {
  const bytes = buildTiocstiFilter(arch);
  const dir = mkdtempSync(path.join(tmpDir, "agentgate-seccomp-"));
  const file = path.join(dir, "tiocsti.bpf");
  writeFileSync(file, bytes, { mode: 0o600, flag: "wx" });
  return { path: file, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
