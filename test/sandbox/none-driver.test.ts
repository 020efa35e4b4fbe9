/**
 * The "none" driver: the program runs directly (no isolation), in the workspace, with the spec's
 * environment; prlimit still applies the limits. Also the control for the bwrap TIOCSTI test: here,
 * without the seccomp filter, a root process can inject input.
 */
import { realpathSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { SystemTools } from "../../src/system/system-tools.js";
import { NoneDriver } from "../../src/sandbox/none-driver.js";
import { run, scratch, spec } from "./pty-run.js";

describe("none driver", () => {
  const area = scratch("agentgate-sbx-none-");
  const tools = new SystemTools();
  const driver = new NoneDriver(tools);
  afterAll(() => area.remove());

  it("runs argv directly in the workspace with the spec's environment and keeps the exit code", async () => {
    const workspace = area.dir("ws");
    const launch = driver.prepare(
      spec({
        driver: "none",
        argv: ["sh", "-c", 'echo "cwd=$(pwd) foo=$FOO home=$HOME"; exit 3'],
        workspace,
        env: { FOO: "a b" },
      }),
    );
    expect(launch.file).toBe("sh");
    expect(launch.programCwd).toBe(realpathSync(workspace));
    const r = await run(launch);
    expect(r.output).toContain(
      `cwd=${realpathSync(workspace)} foo=a b home=${process.env.HOME ?? realpathSync(workspace)}`,
    );
    expect(r.exitCode).toBe(3);
  });

  it.skipIf(!tools.path("prlimit"))("applies limits through prlimit", async () => {
    const launch = driver.prepare(
      spec({
        driver: "none",
        argv: ["sh", "-c", "ulimit -n; ulimit -t"],
        workspace: area.dir("ws-lim"),
        limits: { openFiles: 64, cpuSeconds: 5 },
      }),
    );
    expect(launch.file).toBe(tools.path("prlimit"));
    const r = await run(launch);
    expect(r.output).toMatch(/^64\r\n5\r\n/);
  });

  // As root (CAP_SYS_ADMIN) TIOCSTI works whatever /proc/sys/dev/tty/legacy_tiocsti says.
  it.skipIf(process.getuid?.() !== 0)("control: without the seccomp filter, TIOCSTI injects input", async () => {
    const py = "import fcntl, termios\nfcntl.ioctl(0, termios.TIOCSTI, b'x')\nprint('injected')";
    const r = await run(
      driver.prepare(spec({ driver: "none", argv: ["python3", "-c", py], workspace: area.dir("ws-sti") })),
    );
    expect(r.output).toContain("injected");
  });
});
