import { describe, expect, it } from "vitest";
import { GatewayError } from "../../src/errors/gateway-error.js";
import { SystemTools } from "../../src/system/system-tools.js";
import { bwrapFlags, hiddenOverlays, type BwrapPlan } from "../../src/sandbox/bwrap-args.js";
import { LAUNCH_SCRIPT, launchArgs } from "../../src/sandbox/bwrap-driver.js";
import { sandboxDriver } from "../../src/sandbox/drivers.js";
import { FOREGROUND_PERL, inForeground, PERL } from "../../src/sandbox/foreground.js";
import { prlimitOptions } from "../../src/sandbox/limits.js";
import { checkSpec } from "../../src/sandbox/spec-checks.js";
import type { SandboxSpec } from "../../src/sandbox/types.js";

const HOSTILE = [
  "it's",
  'say "hi"',
  "$(touch /tmp/pwned)",
  "`id`",
  "a\nb",
  "; rm -rf /",
  "--help",
  "-c",
  "$HOME",
  "*",
  "",
];

const plan = (over: Partial<BwrapPlan> = {}): BwrapPlan => ({
  workspace: "/srv/ws/a1",
  readOnlyPaths: [],
  hidden: [],
  env: {},
  network: false,
  ...over,
});

function kindOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof GatewayError ? e.kind : `not a GatewayError: ${String(e)}`;
  }
  return undefined;
}

/** Pairs like ["--ro-bind", "/usr", "/usr"] as joined strings, for readable assertions. */
const has = (flags: string[], ...seq: string[]) => flags.some((_, i) => seq.every((s, j) => flags[i + j] === s));

describe("launch arguments", () => {
  it("the -c script is a constant; argv follows as positional parameters, untouched", () => {
    const argv = inForeground(["python3", ...HOSTILE], true);
    const args = launchArgs({ filter: "/tmp/x/tiocsti.bpf", chain: ["/usr/bin/bwrap", "--unshare-all", "--"], argv });
    expect(args.slice(0, 4)).toEqual(["-c", LAUNCH_SCRIPT, "agentgate-sandbox", "/tmp/x/tiocsti.bpf"]);
    expect(LAUNCH_SCRIPT).toBe('bpf=$1; shift; exec "$@" 3<"$bpf"');
    expect(args.slice(-HOSTILE.length)).toEqual(HOSTILE);
    for (const h of HOSTILE.filter(Boolean)) expect(LAUNCH_SCRIPT).not.toContain(h);
    // The foreground step's perl text is a constant too; the program and its args are perl's @ARGV.
    expect(args).toContain(FOREGROUND_PERL);
    expect(argv.slice(0, 4)).toEqual([PERL, "-e", FOREGROUND_PERL, "--"]);
    expect(inForeground(["x"], false)).toEqual(["x"]);
  });

  it("bwrap flags: the §9 recipe, no --new-session, the minimal root, no network by default", () => {
    const f = bwrapFlags(plan());
    expect(f).not.toContain("--new-session");
    expect(f).not.toContain("--share-net");
    for (const flag of ["--unshare-all", "--unshare-user", "--disable-userns", "--die-with-parent", "--clearenv"]) {
      expect(f).toContain(flag);
    }
    expect(has(f, "--seccomp", "3")).toBe(true);
    expect(has(f, "--ro-bind", "/usr", "/usr")).toBe(true);
    expect(has(f, "--symlink", "usr/bin", "/bin")).toBe(true);
    expect(has(f, "--symlink", "usr/lib64", "/lib64")).toBe(true);
    expect(has(f, "--ro-bind", "/etc", "/etc")).toBe(true);
    expect(has(f, "--tmpfs", "/tmp")).toBe(true);
    expect(has(f, "--tmpfs", "/home")).toBe(true);
    expect(has(f, "--bind", "/srv/ws/a1", "/workspace")).toBe(true);
    expect(has(f, "--chdir", "/workspace")).toBe(true);
    expect(has(f, "--cap-drop", "ALL")).toBe(true);
    expect(has(f, "--hostname", "sandbox")).toBe(true);
    expect(has(f, "--setenv", "PATH", "/usr/bin:/bin")).toBe(true);
    expect(has(f, "--setenv", "HOME", "/workspace")).toBe(true);
    expect(has(f, "--setenv", "TERM", "xterm-256color")).toBe(true);
    // The sandbox root and /dev are made read-only after every mount is in place.
    expect(has(f, "--remount-ro", "/dev", "--remount-ro", "/")).toBe(true);
    expect(f.indexOf("--remount-ro")).toBeGreaterThan(f.indexOf("--proc"));
    expect(has(bwrapFlags(plan({ network: true })), "--unshare-all", "--share-net")).toBe(true);
  });

  it("the spec's environment becomes --setenv pairs, verbatim, over the defaults", () => {
    const f = bwrapFlags(plan({ env: { TERM: "dumb", WEIRD: "a b\n$(x)" } }));
    expect(has(f, "--setenv", "TERM", "dumb")).toBe(true);
    expect(has(f, "--setenv", "TERM", "xterm-256color")).toBe(false);
    expect(has(f, "--setenv", "WEIRD", "a b\n$(x)")).toBe(true);
  });

  it("hidden paths inside bound trees are covered; elsewhere they need nothing", () => {
    const binds = [
      { src: "/usr", dest: "/usr", system: true },
      { src: "/etc", dest: "/etc", system: true },
      { src: "/srv/ws/a1", dest: "/workspace" },
    ];
    const o = hiddenOverlays(binds, [
      { path: "/etc/agentgate", isDirectory: true },
      { path: "/etc/agentgate/keys", isDirectory: true }, // inside the one above: already covered
      { path: "/etc/agentgate.toml", isDirectory: false },
      { path: "/srv/ws/a1/.data", isDirectory: true },
      { path: "/var/lib/agentgate", isDirectory: true }, // not bound: invisible anyway
      { path: "/srv/ws", isDirectory: true }, // contains the workspace: only the workspace is bound
    ]);
    expect(o).toEqual([
      ...["--perms", "0000", "--tmpfs", "/etc/agentgate", "--remount-ro", "/etc/agentgate"],
      ...["--ro-bind", "/dev/null", "/etc/agentgate.toml"],
      ...["--perms", "0000", "--tmpfs", "/workspace/.data", "--remount-ro", "/workspace/.data"],
    ]);
  });

  it("refuses hidden paths that would hide a system tree or a bound path, and bad read-only extras", () => {
    expect(kindOf(() => bwrapFlags(plan({ hidden: [{ path: "/usr", isDirectory: true }] })))).toBe("invalid_argument");
    expect(kindOf(() => bwrapFlags(plan({ hidden: [{ path: "/", isDirectory: true }] })))).toBe("invalid_argument");
    expect(kindOf(() => bwrapFlags(plan({ hidden: [{ path: "/srv/ws/a1", isDirectory: true }] })))).toBe(
      "invalid_argument",
    );
    expect(
      kindOf(() => bwrapFlags(plan({ readOnlyPaths: ["/opt/x"], hidden: [{ path: "/opt/x", isDirectory: true }] }))),
    ).toBe("invalid_argument");
    for (const p of ["/", "/proc/1", "/workspace/x", "/dev"]) {
      expect(kindOf(() => bwrapFlags(plan({ readOnlyPaths: [p] })))).toBe("invalid_argument");
    }
    const f = bwrapFlags(
      plan({ readOnlyPaths: ["/opt/codex"], hidden: [{ path: "/opt/codex/auth", isDirectory: false }] }),
    );
    expect(has(f, "--ro-bind", "/opt/codex", "/opt/codex")).toBe(true);
    expect(has(f, "--ro-bind", "/dev/null", "/opt/codex/auth")).toBe(true);
  });

  it("limits map to prlimit options that set soft and hard limits together", () => {
    expect(
      prlimitOptions({
        addressSpaceBytes: 1 << 29,
        cpuSeconds: 2,
        fileSizeBytes: 1 << 20,
        openFiles: 64,
        processes: 32,
      }),
    ).toEqual(["--as=536870912", "--cpu=2", "--fsize=1048576", "--nofile=64", "--nproc=32"]);
    expect(prlimitOptions({})).toEqual([]);
    for (const bad of [0, -1, 1.5, Number.NaN, 2 ** 60]) {
      expect(kindOf(() => prlimitOptions({ cpuSeconds: bad }))).toBe("invalid_argument");
    }
  });

  it("specs with NUL bytes, bad env names or no program are invalid_argument", () => {
    const base: SandboxSpec = {
      driver: "bwrap",
      argv: ["sh"],
      workspace: "/srv/ws",
      env: {},
      network: false,
      limits: {},
      hiddenPaths: [],
    };
    expect(kindOf(() => checkSpec(base))).toBeUndefined();
    expect(kindOf(() => checkSpec({ ...base, argv: [] }))).toBe("invalid_argument");
    expect(kindOf(() => checkSpec({ ...base, argv: ["sh", "a\0b"] }))).toBe("invalid_argument");
    expect(kindOf(() => checkSpec({ ...base, env: { "A=B": "x" } }))).toBe("invalid_argument");
    expect(kindOf(() => checkSpec({ ...base, env: { A: "x\0" } }))).toBe("invalid_argument");
    expect(kindOf(() => checkSpec({ ...base, workspace: "/a\0" }))).toBe("invalid_argument");
    expect(kindOf(() => checkSpec({ ...base, uid: 0 }))).toBe("invalid_argument");
  });

  it("drivers: nsjail is failed_precondition (naming the package when missing), unknown names invalid_argument", () => {
    const noTools = new SystemTools("/nonexistent");
    const s = {
      driver: "nsjail",
      argv: ["sh"],
      workspace: "/tmp",
      env: {},
      network: false,
      limits: {},
      hiddenPaths: [],
    } as SandboxSpec;
    expect(() => sandboxDriver("nsjail", noTools).prepare(s)).toThrow(/install nsjail/);
    expect(kindOf(() => sandboxDriver("nsjail", noTools).prepare(s))).toBe("failed_precondition");
    expect(kindOf(() => sandboxDriver("bwrap", noTools).prepare({ ...s, driver: "bwrap" }))).toBe(
      "failed_precondition",
    );
    expect(kindOf(() => sandboxDriver("docker" as never, noTools))).toBe("invalid_argument");
    expect(sandboxDriver("none", noTools).name).toBe("none");
    expect(sandboxDriver("bwrap", noTools).name).toBe("bwrap");
  });
});
