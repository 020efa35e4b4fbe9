// AgentSupervisor with real PTYs (sandbox "none"), a real in-memory database and a temporary
// DATA_DIR: start/validation, replay by offset, signals and states, limits, watch rules,
// slow-subscriber policies, deletion, and durability across a supervisor restart.
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AgentSupervisor } from "../../src/agents/agent-supervisor.js";
import { procStat } from "../../src/agents/pty-process.js";
import type { StartAgentSpec } from "../../src/agents/types.js";
import { GatewayError } from "../../src/errors/gateway-error.js";
import { Reader, supervisorFixture, untilProcessState, type SupervisorFixture } from "./helpers.js";

let fx: SupervisorFixture;
let sup: AgentSupervisor;
beforeAll(async () => {
  fx = await supervisorFixture();
  sup = fx.sup;
});
afterAll(() => fx?.close());

const sh = (script: string, more: Partial<StartAgentSpec> = {}): StartAgentSpec => ({
  argv: ["sh", "-c", script],
  sandbox: "none",
  ...more,
});

async function errorOf(p: Promise<unknown>): Promise<GatewayError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(GatewayError);
  return err as GatewayError;
}

/** The full expected output of `seq 1 n` on a terminal (ONLCR turns \n into \r\n). */
const seqOutput = (n: number) => Array.from({ length: n }, (_, i) => `${i + 1}\r\n`).join("");

describe("start and validation", () => {
  it("starts a program in a fresh workspace and records it", async () => {
    const a = await sup.start(sh("pwd; echo $TERM; exit 3", { name: "t1", labels: { team: "a" } }));
    expect(a.id).toMatch(/^agt_/);
    expect(a.state).toBe("running");
    expect(a.pid).toBeGreaterThan(0);
    expect(a.freshWorkspace).toBe(true);
    expect(a.workingDirectory).toBe(path.join(fx.dataDir, "workspaces", a.id));
    expect(a.size).toEqual({ cols: 120, rows: 32 });
    const r = new Reader(await sup.subscribe(a.id, { from: { offset: 0 } }));
    const exit = await r.untilExit();
    expect(exit).toMatchObject({ exitCode: 3, signal: 0, reason: "exited" });
    expect(r.text).toBe(`${a.workingDirectory}\r\nxterm-256color\r\n`);
    const got = await sup.get(a.id);
    expect(got).toMatchObject({ state: "exited", pid: 0, outputBytes: r.output.length, name: "t1" });
  });

  it.each<[string, StartAgentSpec, string, RegExp]>([
    ["argv with a NUL byte", { argv: ["echo", "a\0b"], sandbox: "none" }, "invalid_argument", /NUL/],
    ["empty argv without a prompt", { argv: [], sandbox: "none" }, "invalid_argument", /prompt/],
    ["a bad size", sh("true", { size: { cols: 0, rows: 10 } }), "invalid_argument", /size.cols/],
    ["a size over 1000", sh("true", { size: { cols: 80, rows: 1001 } }), "invalid_argument", /size.rows/],
    ["a zero limit", sh("true", { limits: { openFiles: 0 } }), "invalid_argument", /limits.openFiles/],
    ["a limit above the maximum", sh("true", { limits: { cpuSeconds: 10 ** 9 } }), "invalid_argument", /cpuSeconds/],
    ["a denied variable", sh("true", { env: { LD_PRELOAD: "/x.so" } }), "invalid_argument", /LD_PRELOAD/],
    [
      "a bad watch pattern",
      sh("true", { watchRules: [{ name: "r", pattern: "(a)\\1", ignoreCase: false, action: "pause" }] }),
      "invalid_argument",
      /backreferences/,
    ],
    ["a missing program", { argv: ["no-such-program-xyz"], sandbox: "none" }, "invalid_argument", /not found/],
    ["a relative working directory", sh("true", { workingDirectory: "tmp" }), "invalid_argument", /absolute/],
    [
      "bypass_approvals without a sandbox",
      { prompt: "hi", sandbox: "none", bypassApprovals: true },
      "failed_precondition",
      /sandbox/,
    ],
  ])("refuses %s", async (_what, spec, kind, message) => {
    const err = await errorOf(sup.start(spec));
    expect(err.kind).toBe(kind);
    expect(err.message).toMatch(message);
  });

  it("defaults to the Codex CLI in exec mode with the prompt", async () => {
    const fake = path.join(fx.dataDir, "fake-codex");
    fs.writeFileSync(fake, '#!/bin/sh\nprintf "ARGS:%s|" "$@"\n', { mode: 0o755 });
    const own = await fx.open({ codexBin: fake });
    const a = await own.start({ prompt: "fix the bug", model: "gpt-5.5", sandbox: "none" });
    expect(a.argv).toEqual([fake, "exec", "--skip-git-repo-check", "-m", "gpt-5.5", "--", "fix the bug"]);
    const r = new Reader(await own.subscribe(a.id, { from: { offset: 0 } }));
    await r.untilExit();
    expect(r.text).toBe("ARGS:exec|ARGS:--skip-git-repo-check|ARGS:-m|ARGS:gpt-5.5|ARGS:--|ARGS:fix the bug|");
  });
});

describe("output offsets and replay", () => {
  it("replay from any offset returns exactly the missing bytes, live and after the exit", async () => {
    const a = await sup.start(sh("seq 1 3000; read x; seq 3001 6000"));
    const first = new Reader(await sup.subscribe(a.id, { from: { offset: 0 } }));
    await first.untilText("3000\r\n");
    // A client that stopped at some offset comes back from there: nothing missing, nothing twice.
    const stoppedAt = 7777;
    first.sub.close();
    await sup.input(a.id, Buffer.from("go\r"));
    const resumed = new Reader(await sup.subscribe(a.id, { from: { offset: stoppedAt } }));
    expect(resumed.sub.startOffset).toBe(stoppedAt);
    const exit = await resumed.untilExit();
    expect(exit.reason).toBe("exited");
    const all = seqOutput(3000) + "go\r\n" + seqOutput(6000).slice(seqOutput(3000).length);
    expect(first.output.subarray(0, stoppedAt).toString() + resumed.text).toBe(all);
    expect(resumed.events.filter((e) => e.type === "output" && e.replay).length).toBeGreaterThan(0);

    for (const offset of [0, 1, 12_345, all.length - 1, all.length]) {
      const r = new Reader(await sup.subscribe(a.id, { from: { offset } }));
      await r.untilExit();
      expect(r.text, `from ${offset}`).toBe(all.slice(offset));
    }
    const tail = await sup.readLogs(a.id, { tail: 10 });
    expect(tail).toMatchObject({ offset: all.length - 10, endOffset: all.length, logStartOffset: 0, eof: true });
    expect(tail.data.toString()).toBe(all.slice(-10));
    const mid = await sup.readLogs(a.id, { offset: 100 }, 50);
    expect(mid.data.toString()).toBe(all.slice(100, 150));
    expect(mid.eof).toBe(false);
  });
});

describe("signals and states", () => {
  it("STOP pauses every process (state PAUSED), CONT resumes; a client KILL ends it as CLIENT_SIGNAL", async () => {
    const a = await sup.start(sh("echo ready; read x; echo got-$x; sleep 30"));
    const r = new Reader(await sup.subscribe(a.id, { from: { offset: 0 } }));
    await r.untilText("ready");
    expect((await sup.signal(a.id, "STOP")).state).toBe("paused");
    await untilProcessState(a.pid, "T");
    await r.untilNotice("paused");
    await sup.input(a.id, Buffer.from("x1\r"));
    expect((await sup.signal(a.id, "CONT")).state).toBe("running");
    await r.untilText("got-x1");
    await r.untilNotice("resumed");
    await sup.signal(a.id, "KILL");
    expect(await r.untilExit()).toMatchObject({ signal: 9, signalName: "SIGKILL", reason: "client_signal" });
    expect(await sup.get(a.id)).toMatchObject({ state: "exited", exit: { reason: "client_signal", signal: 9 } });
    const err = await errorOf(sup.input(a.id, Buffer.from("late")));
    expect(err.kind).toBe("failed_precondition");
    expect((await errorOf(sup.signal(a.id, "INT"))).kind).toBe("failed_precondition");
  });

  it("Ctrl-C (INT to the foreground group) interrupts only the foreground command", async () => {
    const a = await sup.start({ argv: ["sh", "-i"], sandbox: "none" });
    const r = new Reader(await sup.subscribe(a.id, { from: { offset: 0 } }));
    await r.untilText("# ");
    // A background job (its own process group) that SIGINT would kill if it reached it.
    await sup.input(a.id, Buffer.from("sleep 60 & sleep 30\r"));
    const fg = () => procStat(a.pid)?.tpgid ?? -1;
    while (!(fg() > 0 && fg() !== a.pid)) await new Promise((resolve) => setImmediate(resolve));
    await sup.signal(a.id, "INT");
    // The shell is back (sleep 30 was interrupted) and the background job still runs.
    await sup.input(a.id, Buffer.from("kill -0 $! && echo background-alive $((3+4))\r"));
    await r.untilText("background-alive 7");
    expect((await sup.get(a.id)).state).toBe("running");
    await sup.input(a.id, Buffer.from("kill $!; exit 5\r"));
    expect(await r.untilExit()).toMatchObject({ exitCode: 5, reason: "exited" });
  });

  it("a resize is validated, reaches the program as SIGWINCH and tells other clients", async () => {
    const a = await sup.start(sh(`trap 'echo WINCH $(stty size)' WINCH; echo ready; while :; do sleep 0.05; done`));
    const r = new Reader(await sup.subscribe(a.id, { from: { offset: 0 } }));
    await r.untilText("ready");
    expect((await errorOf(sup.resize(a.id, { cols: 1001, rows: 10 }))).kind).toBe("invalid_argument");
    expect(await sup.resize(a.id, { cols: 90, rows: 30 })).toEqual({ cols: 90, rows: 30 });
    await r.untilText("WINCH 30 90");
    expect(r.notices("resized")[0]?.size).toEqual({ cols: 90, rows: 30 });
    expect((await sup.get(a.id)).size).toEqual({ cols: 90, rows: 30 });
    await sup.signal(a.id, "KILL");
    await r.untilExit();
  });

  it("a program killed by a signal it did not get from a client is SIGNALED", async () => {
    const a = await sup.start(sh("kill -SEGV $$"));
    const r = new Reader(await sup.subscribe(a.id, { from: { offset: 0 } }));
    expect(await r.untilExit()).toMatchObject({ signal: 11, signalName: "SIGSEGV", reason: "signaled" });
    expect((await sup.get(a.id)).exit?.exitCode).toBeUndefined();
  });
});

describe("limits", () => {
  it("the idle-time limit ends a silent agent", async () => {
    const a = await sup.start(sh("echo hi; sleep 30", { limits: { idleTimeMs: 300 } }));
    const r = new Reader(await sup.subscribe(a.id, { from: { offset: 0 } }));
    const t0 = Date.now();
    expect(await r.untilExit()).toMatchObject({ reason: "idle_time_limit", signal: 9 });
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(r.exit?.message).toMatch(/idle time limit of 300ms/);
  });

  it("output keeps an agent from idling; the wall-time limit ends it anyway", async () => {
    const a = await sup.start(
      sh("while :; do echo tick; sleep 0.05; done", { limits: { idleTimeMs: 1000, wallTimeMs: 2500 } }),
    );
    const r = new Reader(await sup.subscribe(a.id, { from: { offset: 0 } }));
    expect(await r.untilExit()).toMatchObject({ reason: "wall_time_limit" });
    expect(r.text.split("tick").length).toBeGreaterThan(5);
    expect((await sup.get(a.id)).limits).toEqual({ idleTimeMs: 1000, wallTimeMs: 2500 });
  });
});

describe("watch rules (alerts, not a boundary)", () => {
  it("PAUSE stops the agent and tells clients; CONT resumes it; NOTIFY only tells", async () => {
    const a = await sup.start(
      sh("echo 'about to rm -rf /tmp/x'; read x; echo continued-$x; echo 'WARNING: low disk'; read y", {
        watchRules: [
          { name: "rm-rf", pattern: "rm -rf /", ignoreCase: false, action: "pause" },
          { name: "warn", pattern: "warning", ignoreCase: true, action: "notify" },
        ],
      }),
    );
    const r = new Reader(await sup.subscribe(a.id, { from: { offset: 0 } }));
    await r.untilNotice("paused");
    const matched = r.notices("watch_rule_matched")[0]!;
    expect(matched).toMatchObject({ ruleName: "rm-rf", matchedText: "rm -rf /", offset: "about to ".length });
    expect(r.notices("paused")[0]).toMatchObject({ ruleName: "rm-rf" });
    expect(await sup.get(a.id)).toMatchObject({ state: "paused", pausedByRule: "rm-rf" });
    await untilProcessState(a.pid, "T");
    await sup.input(a.id, Buffer.from("yes\r"));
    await sup.signal(a.id, "CONT");
    await r.untilText("continued-yes");
    await r.until(() => r.notices("watch_rule_matched").length === 2, "the NOTIFY match");
    expect(r.notices("watch_rule_matched")[1]).toMatchObject({ ruleName: "warn", matchedText: "WARNING" });
    expect(await sup.get(a.id)).toMatchObject({ state: "running", pausedByRule: "" });
    await sup.input(a.id, Buffer.from("\r"));
    expect((await r.untilExit()).reason).toBe("exited");
  });

  it("KILL ends the agent with reason WATCH_RULE", async () => {
    const a = await sup.start(
      sh("echo 'secret: hunter2'; sleep 30", {
        watchRules: [{ name: "secret", pattern: "secret: \\w+", ignoreCase: false, action: "kill" }],
      }),
    );
    const r = new Reader(await sup.subscribe(a.id, { from: { offset: 0 } }));
    expect(await r.untilExit()).toMatchObject({ reason: "watch_rule", signal: 9 });
    expect(r.notices("watch_rule_matched")[0]?.matchedText).toBe("secret: hunter2");
  });
});

describe("slow subscribers never make the server buffer without bound", () => {
  const LINES = 100_000; // 688,895 bytes on the terminal
  const total = seqOutput(LINES).length;

  it("SKIP: the client gets an OUTPUT_SKIPPED notice for what it missed and goes on live", async () => {
    const a = await sup.start(sh(`seq 1 ${LINES}; read x; echo live-$x`));
    const sub = await sup.subscribe(a.id, { overflow: "skip", maxLagBytes: 16 * 1024 });
    const observer = new Reader(await sup.subscribe(a.id, { from: { offset: 0 } }));
    await observer.untilText(`${LINES}\r\n`);
    // The slow client has not read anything yet.
    const r = new Reader(sub);
    await r.untilNotice("output_skipped");
    const skipped = r.notices("output_skipped")[0]!;
    expect(skipped.offset).toBe(0);
    expect(skipped.length).toBeGreaterThan(total - 200_000);
    await sup.input(a.id, Buffer.from("ok\r"));
    await r.untilExit();
    expect(r.text.endsWith("live-ok\r\n")).toBe(true);
    // What was delivered plus what was skipped is everything, without overlap.
    expect(skipped.offset! + skipped.length! + r.output.length).toBe(observer.nextOffset);
  });

  it("DISCONNECT: the stream ends with resource_exhausted and a replay offset to come back with", async () => {
    const a = await sup.start(sh(`seq 1 ${LINES}`));
    const sub = await sup.subscribe(a.id, { overflow: "disconnect", maxLagBytes: 16 * 1024 });
    const observer = new Reader(await sup.subscribe(a.id, { from: { offset: 0 } }));
    await observer.untilExit();
    const r = new Reader(sub);
    await r.done;
    expect(r.error).toBeInstanceOf(GatewayError);
    expect((r.error as GatewayError).kind).toBe("resource_exhausted");
    expect((r.error as GatewayError).message).toMatch(/re-attach with replay_offset 0/);
  });

  it("PAUSE_AGENT: the terminal is not read while the client lags, then every byte arrives", async () => {
    const a = await sup.start(sh(`seq 1 ${LINES}`));
    const slow = await sup.subscribe(a.id, { overflow: "pause-agent", maxLagBytes: 16 * 1024 });
    const observer = new Reader(await sup.subscribe(a.id, { maxLagBytes: 1 << 30 }));
    await observer.untilNotice("flow_control_paused");
    // The program is blocked on write: far less than its output has been read.
    const held = (await sup.get(a.id)).outputBytes;
    expect(held).toBeLessThan(total / 2);
    expect((await sup.get(a.id)).state).toBe("running");
    const r = new Reader(slow);
    expect(await r.untilExit()).toMatchObject({ reason: "exited", exitCode: 0 });
    expect(r.text).toBe(seqOutput(LINES));
    expect(observer.notices("flow_control_paused").length).toBeGreaterThanOrEqual(1);
  });

  it("a read-only client cannot ask for PAUSE_AGENT, write, resize or signal", async () => {
    const a = await sup.start(sh("read x"));
    expect((await errorOf(sup.subscribe(a.id, { mode: "read-only", overflow: "pause-agent" }))).kind).toBe(
      "permission_denied",
    );
    const ro = await sup.subscribe(a.id, { mode: "read-only" });
    expect(() => ro.write(Buffer.from("x"))).toThrow(/read-only/);
    expect(() => ro.resize({ cols: 10, rows: 10 })).toThrow(/read-only/);
    expect(() => ro.signal("KILL")).toThrow(/read-only/);
    expect((await sup.get(a.id)).attachedClients).toBe(1);
    ro.close();
    expect((await sup.get(a.id)).attachedClients).toBe(0);
    await sup.delete(a.id, 0);
  });
});

describe("listing and deletion", () => {
  it("lists newest first with paging, state and label filters", async () => {
    const own = await fx.open();
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await own.start(sh("read x", { labels: { batch: "L", n: String(i) } }))).id);
    const seen: string[] = [];
    let token = "";
    do {
      const page = await own.list({ pageSize: 2, pageToken: token, labels: { batch: "L" } });
      expect(page.agents.length).toBeLessThanOrEqual(2);
      seen.push(...page.agents.map((x) => x.id));
      token = page.nextPageToken;
    } while (token);
    expect(seen).toEqual([...ids].reverse());
    expect((await own.list({ labels: { batch: "L", n: "3" } })).agents.map((x) => x.id)).toEqual([ids[3]]);
    expect((await own.list({ states: ["exited"], labels: { batch: "L" } })).agents).toEqual([]);
    expect((await errorOf(own.list({ pageToken: "garbage" }))).kind).toBe("invalid_argument");
    for (const id of ids) await own.delete(id, 0);
  });

  it("delete ends a running agent (TERM, then KILL after the grace) and removes record, logs and workspace", async () => {
    const a = await sup.start(sh("trap '' TERM; echo started; sleep 30"));
    const r = new Reader(await sup.subscribe(a.id, { from: { offset: 0 } }));
    await r.untilText("started");
    const gone = await sup.delete(a.id, 200);
    expect(gone.exit).toMatchObject({ reason: "deleted", signal: 9 });
    expect(await r.untilExit()).toMatchObject({ reason: "deleted" });
    expect((await errorOf(sup.get(a.id))).kind).toBe("not_found");
    expect(fs.existsSync(a.workingDirectory)).toBe(false);
    expect(fs.existsSync(path.join(fx.dataDir, "agents", a.id))).toBe(false);
    expect((await errorOf(sup.delete(a.id))).kind).toBe("not_found");
  });

  it("unknown ids are not_found everywhere", async () => {
    for (const call of [
      () => sup.get("agt_nope"),
      () => sup.input("agt_nope", Buffer.from("x")),
      () => sup.resize("agt_nope", { cols: 10, rows: 10 }),
      () => sup.signal("agt_nope", "INT"),
      () => sup.readLogs("agt_nope", undefined),
      () => sup.subscribe("agt_nope"),
      () => sup.delete("agt_nope"),
      () => sup.get("../../etc"),
    ])
      expect((await errorOf(call())).kind).toBe("not_found");
  });
});

describe("durability", () => {
  it("closing the supervisor ends running agents as SUPERVISOR_STOPPED; a new one reads their logs", async () => {
    const first = await fx.open();
    const a = await first.start(sh("echo before-close; sleep 30"));
    const r = new Reader(await first.subscribe(a.id, { from: { offset: 0 } }));
    await r.untilText("before-close");
    await first.close();
    expect(await r.untilExit()).toMatchObject({ reason: "supervisor_stopped" });
    await expect(first.start(sh("true"))).rejects.toThrow(/shutting down/);

    const second = await fx.open();
    const rec = await second.get(a.id);
    expect(rec).toMatchObject({ state: "exited", pid: 0, exit: { reason: "supervisor_stopped" } });
    expect(rec.outputBytes).toBe("before-close\r\n".length);
    const logs = await second.readLogs(a.id, { offset: 0 });
    expect(logs).toMatchObject({ eof: true, endOffset: rec.outputBytes });
    expect(logs.data.toString()).toBe("before-close\r\n");
    const replay = new Reader(await second.subscribe(a.id, { from: { offset: 0 } }));
    expect(await replay.untilExit()).toMatchObject({ reason: "supervisor_stopped" });
    expect(replay.text).toBe("before-close\r\n");
    expect((await errorOf(second.input(a.id, Buffer.from("x")))).kind).toBe("failed_precondition");
  });

  it("agents left running by a run that did not close (a crash) are marked stopped at the next start", async () => {
    const crashed = await fx.open();
    const a = await crashed.start(sh("echo from-the-old-run; sleep 30"));
    const r = new Reader(await crashed.subscribe(a.id, { from: { offset: 0 } }));
    await r.untilText("from-the-old-run");
    // A new run on the same node (same DATA_DIR) without the old one having closed.
    const next = await fx.open();
    const rec = await next.get(a.id);
    expect(rec).toMatchObject({ state: "exited", exit: { reason: "supervisor_stopped" } });
    expect(rec.exit?.message).toMatch(/found at the next start/);
    // Offsets come from the log file, which is ahead of the last debounced write.
    expect(rec.outputBytes).toBe("from-the-old-run\r\n".length);
    await crashed.close();
  });
});
