// PtyProcess over real PTYs: no output lost when a program writes a lot and exits at once (the
// drain-on-end fix; without it about a third of these runs come up short), exit code and signal,
// signals to the foreground group, SIGWINCH on resize, and no PTY master fds leaking into children.
import { describe, expect, it } from "vitest";
import { procStat, PtyProcess, type PtyExit } from "../../src/agents/pty-process.js";

const ENV = { PATH: process.env.PATH ?? "/usr/bin:/bin", LANG: "C.UTF-8" };

function spawn(argv: string[], cols = 80, rows = 24) {
  const p = PtyProcess.spawn({ file: argv[0]!, args: argv.slice(1), env: ENV, cwd: "/", cols, rows, term: "xterm" });
  let out = Buffer.alloc(0);
  const waiters: (() => void)[] = [];
  p.onData((c) => {
    out = Buffer.concat([out, c]);
    for (const w of waiters.splice(0)) w();
  });
  const exited = new Promise<PtyExit>((resolve) => p.onExit(resolve));
  return {
    p,
    exited,
    get text() {
      return out.toString("utf8");
    },
    get bytes() {
      return out.length;
    },
    async until(s: string) {
      while (!out.toString("utf8").includes(s)) {
        if (p.exited)
          throw new Error(`exited before ${JSON.stringify(s)}: ${JSON.stringify(out.toString().slice(-200))}`);
        await Promise.race([new Promise<void>((r) => waiters.push(r)), exited]);
      }
    },
  };
}

describe("PtyProcess", () => {
  it("delivers every byte of a program that writes 10-100 KB and exits at once: 100 runs of 100", async () => {
    let complete = 0;
    const short: string[] = [];
    for (let run = 0; run < 100; run++) {
      const lines = 2000 + Math.floor(Math.random() * 14_000); // ~10-100 KB with ONLCR's extra \r
      const expected = Array.from({ length: lines }, (_, i) => `${i + 1}\r\n`).join("");
      const t = spawn(["seq", "1", String(lines)]);
      const exit = await t.exited;
      expect(exit).toEqual({ exitCode: 0, signal: 0 });
      if (t.text === expected) complete++;
      else short.push(`${t.bytes}/${expected.length}`);
    }
    expect(short).toEqual([]);
    expect(complete).toBe(100);
  }, 120_000);

  it("reports exit codes and signals", async () => {
    expect(await spawn(["sh", "-c", "exit 7"]).exited).toEqual({ exitCode: 7, signal: 0 });
    expect((await spawn(["sh", "-c", "kill -SEGV $$"]).exited).signal).toBe(11);
    const t = spawn(["sleep", "30"]);
    expect(t.p.signal("SIGKILL", "all")).toBeGreaterThan(0);
    expect((await t.exited).signal).toBe(9);
  });

  it("a resize reaches the program as SIGWINCH with the new size", async () => {
    const t = spawn(["sh", "-c", `trap 'echo WINCH $(stty size)' WINCH; echo ready; while :; do sleep 0.05; done`]);
    await t.until("ready");
    t.p.resize(100, 40);
    await t.until("WINCH 40 100");
    t.p.signal("SIGKILL", "all");
    await t.exited;
  });

  it("SIGINT to the foreground group interrupts only the foreground command, not the shell", async () => {
    const t = spawn(["sh", "-i"]);
    t.p.write(Buffer.from("sleep 30\r"));
    // Wait until sleep's group is the terminal's foreground group (a kernel state with no event).
    await t.until("sleep 30");
    const fg = () => procStat(t.p.pid)?.tpgid ?? -1;
    while (!(fg() > 0 && fg() !== t.p.pid)) await new Promise((r) => setImmediate(r));
    expect(t.p.signal("SIGINT", "foreground")).toBe(1);
    t.p.write(Buffer.from("echo alive $((6*7))\r"));
    await t.until("alive 42");
    expect(t.p.exited).toBe(false);
    t.p.write(Buffer.from("exit 3\r"));
    expect(await t.exited).toEqual({ exitCode: 3, signal: 0 });
  });

  it("two terminals side by side: neither holds the other's master fd, and writes to its fds never reach the other", async () => {
    const a = spawn(["sh", "-i"]);
    const b = spawn(["sh", "-i"]);
    // Every fd of A's shell: on node-pty 1.1.0 earlier terminals' /dev/ptmx fds leaked in here.
    a.p.write(Buffer.from("for f in /proc/$$/fd/*; do echo FD $(readlink $f); done; echo COUNT $((40+2))\r"));
    await a.until("COUNT 42");
    const fds = [...a.text.matchAll(/FD (\S+)/g)].map((m) => m[1]);
    expect(fds.length).toBeGreaterThan(0);
    expect(fds.filter((f) => f === "/dev/ptmx")).toEqual([]);
    const bPts = (b.p as unknown as { term: { ptsName: string } }).term.ptsName;
    expect(fds).not.toContain(bPts);
    // Typing into every other fd A has: with a leaked master fd, B would run this command.
    a.p.write(
      Buffer.from(`for n in 3 4 5 6 7 8 9; do printf 'echo PW%sNED\\r' X >&$n; done 2>/dev/null; echo DONE $((1+1))\r`),
    );
    await a.until("DONE 2");
    b.p.write(Buffer.from("echo B $((2+3))\r"));
    await b.until("B 5");
    expect(b.text).not.toContain("PWXNED");
    a.p.write(Buffer.from("exit\r"));
    b.p.write(Buffer.from("exit\r"));
    await Promise.all([a.exited, b.exited]);
  });
});
