/**
 * Agents under the real bwrap sandbox, through the supervisor:
 * - a graceful TERM (SignalAgent, DeleteAgent's grace period) reaches the program, not bwrap, so a
 *   program that traps it can act on it and keep its exit code;
 * - the Codex CLI inside bwrap gets its own CODEX_HOME (/workspace/.codex) whose provider is this
 *   agentgate; end to end with the real CLI calling agentgate's /v1/responses from the sandbox.
 */
import fs from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SANDBOX_CODEX_HOME } from "../../src/agents/agent-supervisor.js";
import { UidPool } from "../../src/sandbox/uid-pool.js";
import { startGateway, type GatewayHarness } from "../support/gateway-harness.js";
import { codexCliAvailable } from "../support/real-codex.js";
import { canRunBwrap } from "../sandbox/pty-run.js";
import { Reader, supervisorFixture, tempDir, type SupervisorFixture } from "./helpers.js";

const TOKEN = "bwrap-codex-e2e-token";
const TRAP = ["sh", "-c", 'trap "echo bye; exit 3" TERM; echo ready; while :; do sleep 0.1; done'];

describe.skipIf(!canRunBwrap())("agents in bwrap: graceful TERM", () => {
  let fx: SupervisorFixture;
  beforeAll(async () => {
    fx = await supervisorFixture({ defaultSandbox: "bwrap", uidPool: new UidPool({ first: 234000, last: 234099 }) });
  });
  afterAll(() => fx.close());

  it("SignalAgent TERM (target ALL) reaches the program, which traps it: 'bye', exit code 3", async () => {
    const a = await fx.sup.start({ argv: TRAP });
    const r = new Reader(await fx.sup.subscribe(a.id, { from: { offset: 0 } }));
    await r.untilText("ready");
    await fx.sup.signal(a.id, "TERM");
    expect(await r.untilExit()).toMatchObject({ exitCode: 3, signal: 0 });
    expect(r.text).toContain("bye");
  });

  it("SIGINT and SIGHUP to ALL spare bwrap too; KILL stays immediate", async () => {
    const a = await fx.sup.start({
      argv: ["sh", "-c", 'trap "echo int" INT; trap "echo hup" HUP; echo ready; while :; do sleep 0.1; done'],
    });
    const r = new Reader(await fx.sup.subscribe(a.id, { from: { offset: 0 } }));
    await r.untilText("ready");
    await fx.sup.signal(a.id, "INT", "all");
    await r.untilText("int");
    await fx.sup.signal(a.id, "HUP");
    await r.untilText("hup");
    expect((await fx.sup.get(a.id)).state).toBe("running");
    const t0 = Date.now();
    await fx.sup.signal(a.id, "KILL");
    expect(await r.untilExit()).toMatchObject({ signal: 9, reason: "client_signal" });
    expect(Date.now() - t0).toBeLessThan(2000);
  });

  it("DeleteAgent with a grace period: the program gets TERM first and exits 3 well before the KILL", async () => {
    const a = await fx.sup.start({
      argv: ["sh", "-c", 'trap "echo bye > /workspace/bye; exit 3" TERM; echo ready; while :; do sleep 0.1; done'],
      keepWorkspace: true,
    });
    const r = new Reader(await fx.sup.subscribe(a.id, { from: { offset: 0 } }));
    await r.untilText("ready");
    const t0 = Date.now();
    const rec = await fx.sup.delete(a.id, 10_000);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(rec.exit).toMatchObject({ exitCode: 3, reason: "deleted" });
    expect(fs.readFileSync(path.join(a.workingDirectory, "bye"), "utf8")).toBe("bye\n");
    fs.rmSync(a.workingDirectory, { recursive: true, force: true });
  });

  it("an idle agent inside the sandbox is ended after its idle time, with every process of its uid", async () => {
    const a = await fx.sup.start({
      argv: ["sh", "-c", "sleep 60 & echo uid=$(id -u) ready; sleep 60"],
      limits: { idleTimeMs: 400 },
    });
    const r = new Reader(await fx.sup.subscribe(a.id, { from: { offset: 0 } }));
    await r.untilText("ready");
    const t0 = Date.now();
    expect(await r.untilExit()).toMatchObject({ reason: "idle_time_limit", signal: 9 });
    expect(Date.now() - t0).toBeLessThan(5000);
    // The background sleep went with it: no process runs as the agent's uid any more. (Zombies do
    // not count: bwrap leaves its pid namespace's init for the host's pid 1 to reap, see sandbox.md.)
    const uid = Number(/uid=(\d+)/.exec(r.text)?.[1]);
    expect(uid).toBeGreaterThanOrEqual(234000);
    const owners = fs
      .readdirSync("/proc")
      .filter((d) => /^\d+$/.test(d))
      .map((d) => {
        try {
          const stat = fs.readFileSync(`/proc/${d}/stat`, "latin1");
          const state = stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3);
          return state === "Z" ? -1 : fs.statSync(`/proc/${d}`).uid;
        } catch {
          return -1;
        }
      });
    expect(owners).not.toContain(uid);
  });

  it("a program that ignores TERM is killed after the grace period", async () => {
    const a = await fx.sup.start({ argv: ["sh", "-c", 'trap "" TERM; echo ready; while :; do sleep 0.1; done'] });
    const r = new Reader(await fx.sup.subscribe(a.id, { from: { offset: 0 } }));
    await r.untilText("ready");
    const t0 = Date.now();
    const rec = await fx.sup.delete(a.id, 500);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(450);
    expect(rec.exit).toMatchObject({ signal: 9, reason: "deleted" });
  });
});

describe.skipIf(!canRunBwrap())("agents in bwrap: the Codex CLI's home (provisioning)", () => {
  let fx: SupervisorFixture;
  let bin: string;
  beforeAll(async () => {
    fx = await supervisorFixture({
      defaultSandbox: "bwrap",
      uidPool: new UidPool({ first: 234100, last: 234199 }),
      replicaAddress: "127.0.0.1:4567",
      authToken: "the-gateway-token",
    });
    // Outside DATA_DIR, which the sandbox hides; its directory is bound read-only as Codex's would be.
    bin = tempDir("agentgate-fake-codex-");
    fs.writeFileSync(
      path.join(bin, "codex"),
      '#!/bin/sh\necho "HOME=$CODEX_HOME KEY=$AGENTGATE_API_KEY"; ls -ld "$CODEX_HOME" | cut -c1-10; cat "$CODEX_HOME/config.toml"; printf "ARGS:%s|" "$@"\n',
      { mode: 0o755 },
    );
  });
  afterAll(async () => {
    await fx.close();
    fs.rmSync(bin, { recursive: true, force: true });
  });

  it("writes <workspace>/.codex/config.toml (0700, the agent's uid) and sets CODEX_HOME and the key", async () => {
    const sup = await fx.open({ codexBin: path.join(bin, "codex") });
    const a = await sup.start({ prompt: "hi", model: "m1", bypassApprovals: true, keepWorkspace: true });
    const r = new Reader(await sup.subscribe(a.id, { from: { offset: 0 } }));
    expect(await r.untilExit()).toMatchObject({ exitCode: 0 });
    expect(r.text).toContain(`HOME=${SANDBOX_CODEX_HOME} KEY=the-gateway-token`);
    expect(r.text).toContain("drwx------");
    expect(r.text).toContain('base_url = "http://127.0.0.1:4567/v1"');
    expect(r.text).toContain('model = "m1"');
    expect(r.text).toContain(
      "ARGS:exec|ARGS:--skip-git-repo-check|ARGS:-m|ARGS:m1|ARGS:--dangerously-bypass-approvals-and-sandbox|ARGS:--|ARGS:hi|",
    );
    const home = path.join(a.workingDirectory, ".codex");
    const st = fs.statSync(home);
    expect(st.mode & 0o777).toBe(0o700);
    expect(st.uid).toBe(fs.statSync(a.workingDirectory).uid);
    expect(st.uid).not.toBe(0);
    expect(fs.readdirSync(home)).toEqual(["config.toml"]); // no auth.json from the operator
    expect(fs.statSync(path.join(home, "config.toml")).uid).toBe(st.uid);
    fs.rmSync(a.workingDirectory, { recursive: true, force: true });
  });

  it("does not write through a symlink an earlier agent left at .codex/config.toml", async () => {
    const sup = await fx.open({ codexBin: path.join(bin, "codex") });
    const ws = tempDir("agentgate-codex-ws-");
    const target = path.join(ws, "outside");
    fs.writeFileSync(target, "keep");
    fs.mkdirSync(path.join(ws, ".codex"));
    fs.symlinkSync(target, path.join(ws, ".codex", "config.toml"));
    const a = await sup.start({ prompt: "hi", workingDirectory: ws, bypassApprovals: true });
    await new Reader(await sup.subscribe(a.id, { from: { offset: 0 } })).untilExit();
    expect(fs.readFileSync(target, "utf8")).toBe("keep");
    expect(fs.lstatSync(path.join(ws, ".codex", "config.toml")).isFile()).toBe(true);
    fs.rmSync(ws, { recursive: true, force: true });
  });

  it("refuses when agentgate's own address is not known yet", async () => {
    const sup = await fx.open({ codexBin: path.join(bin, "codex"), replicaAddress: "" });
    await expect(sup.start({ prompt: "hi", bypassApprovals: true })).rejects.toMatchObject({
      kind: "failed_precondition",
    });
  });
});

describe.skipIf(!canRunBwrap() || !codexCliAvailable())("agents in bwrap: the real Codex CLI through agentgate", () => {
  let h: GatewayHarness;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = tempDir("agentgate-codex-bwrap-");
    h = await startGateway({ env: { MODEL: "qwen3:8b", DATA_DIR: dataDir, AUTH_TOKEN: TOKEN } });
  });
  afterAll(async () => {
    await h?.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it("Codex in the sandbox calls agentgate's /v1/responses and prints the model's answer; exit 0", async () => {
    h.ollama.enqueue({ content: ["Hello from ", "inside the sandbox."] });
    const sup = h.gate.agents;
    const a = await sup.start({
      prompt: "Say hello.",
      sandbox: "bwrap",
      networkAllowed: true,
      bypassApprovals: true,
      limits: { wallTimeMs: 120_000 },
    });
    const r = new Reader(await sup.subscribe(a.id, { from: { offset: 0 } }));
    const exit = await r.untilExit();
    expect(exit, r.text).toMatchObject({ exitCode: 0 });
    expect(r.text).toContain("Hello from inside the sandbox.");
    expect(h.ollama.requests.some((q) => q.path === "/api/chat")).toBe(true);
    expect(a.argv).toContain("--dangerously-bypass-approvals-and-sandbox");
  }, 150_000);
});
