/**
 * Jobs inside agentgate's own bwrap sandbox (JobSpec.sandbox "bwrap"), with the real bwrap:
 * the fake codex (a node script, its directory bound read-only) succeeds and its output files are
 * read back from the host workspace; a probe "codex" reports what it can see and do from inside
 * (DATA_DIR, /root, writes outside /workspace, the network to agentgate, its limits); a timeout and
 * a cancel leave no process of the job's uid behind.
 */
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { locateCodex } from "../../src/backends/codex/locate-codex.js";
import type { JobSandboxConfig } from "../../src/jobs/job-runner.js";
import { BwrapDriver } from "../../src/sandbox/bwrap-driver.js";
import { CLOSE_FDS_PERL, FOREGROUND_PERL } from "../../src/sandbox/foreground.js";
import { SANDBOX_CODEX_HOME } from "../../src/sandbox/codex-home-provision.js";
import { processesOfUid, UidPool } from "../../src/sandbox/uid-pool.js";
import { SystemTools } from "../../src/system/system-tools.js";
import { canRunBwrap, scratch } from "../sandbox/pty-run.js";
import { FAKE_CODEX, jobsFixture, untilFinal, type JobsFixture } from "./jobs-fixture.js";

/** Uids of this file's sandboxes (disjoint from the other test files' pools). */
const POOL = { first: 235000, last: 235009 } as const;
const TOKEN = "job-sandbox-token";

/**
 * A stand-in for `codex exec --json` that looks around inside the sandbox, writes what it found to
 * output/suggestion.json and ends with a normal turn.
 */
const PROBE = `#!/usr/bin/env node
import fs from "node:fs";
import net from "node:net";
import { spawn } from "node:child_process";
const stdin = fs.readFileSync(0, "utf8");
if (process.env.PROBE_ESCAPE) {
  // A child that leaves the process group (a session of its own) and ignores TERM, then hang.
  process.on("SIGTERM", () => {});
  spawn(process.execPath, ["-e", "process.on('SIGTERM', () => {}); setInterval(() => {}, 1000)"], { detached: true, stdio: "ignore" });
  process.stdout.write(JSON.stringify({ type: "thread.started", thread_id: "00000000-0000-4000-8000-000000000002" }) + "\\n");
  setInterval(() => {}, 1000);
  await new Promise(() => {});
}
const tryIt = (f) => { try { const v = f(); return v === undefined ? "ok" : v; } catch (e) { return "error:" + (e.code ?? e.message); } };
const home = process.env.CODEX_HOME;
const config = tryIt(() => fs.readFileSync(home + "/config.toml", "utf8"));
const base = /base_url = "([^"]+)"/.exec(String(config))?.[1];
const url = base ? new URL(base) : undefined;
const network = await new Promise((resolve) => {
  if (!url) return resolve("no base_url");
  const s = net.connect({ host: url.hostname, port: Number(url.port), timeout: 3000 });
  s.on("connect", () => { s.destroy(); resolve("connected"); });
  s.on("timeout", () => { s.destroy(); resolve("timeout"); });
  s.on("error", (e) => resolve("error:" + e.code));
});
const dataDir = process.env.PROBE_DATA_DIR;
const found = {
  uid: process.getuid(),
  cwd: process.cwd(),
  argv: process.argv.slice(2),
  stdin,
  envKeys: Object.keys(process.env).sort(),
  env: { CODEX_HOME: home, KEY: process.env.AGENTGATE_API_KEY, OUT: process.env.APPHUB_CODEX_OUTPUT_DIR },
  config,
  network,
  dataDirList: tryIt(() => fs.readdirSync(dataDir)),
  dataDirSecret: tryIt(() => fs.readFileSync(dataDir + "/secret.txt", "utf8")),
  root: tryIt(() => fs.readdirSync("/root")),
  writeEtc: tryIt(() => fs.writeFileSync("/etc/agentgate-job-probe", "x")),
  writeRoot: tryIt(() => fs.writeFileSync("/agentgate-job-probe", "x")),
  writeUsr: tryIt(() => fs.writeFileSync("/usr/agentgate-job-probe", "x")),
  writeReadOnly: tryIt(() => fs.writeFileSync(process.env.PROBE_RO_DIR + "/agentgate-job-probe", "x")),
  writeWorkspace: tryIt(() => fs.writeFileSync("/workspace/probe.txt", "x")),
  openFiles: /Max open files\\s+(\\d+)/.exec(fs.readFileSync("/proc/self/limits", "utf8"))?.[1],
};
fs.writeFileSync("output/suggestion.json", JSON.stringify(found));
fs.writeFileSync("output/summary.txt", "probed\\n");
const emit = (e) => process.stdout.write(JSON.stringify(e) + "\\n");
emit({ type: "thread.started", thread_id: "00000000-0000-4000-8000-000000000001" });
emit({ type: "turn.started" });
emit({ type: "item.completed", item: { id: "item_0", type: "agent_message", text: "probed" } });
emit({ type: "turn.completed", usage: { input_tokens: 1, cached_input_tokens: 0, output_tokens: 1, reasoning_output_tokens: 0 } });
`;

/** Live (not zombie) processes of any of this file's uids. */
function poolProcesses(): number[] {
  const pids: number[] = [];
  for (let uid = POOL.first; uid <= POOL.last; uid++) pids.push(...processesOfUid(uid));
  return pids;
}

describe.skipIf(!canRunBwrap())("jobs inside agentgate's bwrap sandbox", () => {
  let fx: JobsFixture;
  let area: ReturnType<typeof scratch>;
  let probe: string;
  let server: net.Server;
  let connections = 0;
  let codex = FAKE_CODEX;
  const pool = new UidPool(POOL);
  const sandbox: JobSandboxConfig = {
    tools: new SystemTools(),
    uidPool: pool,
    hiddenPaths: [],
    readOnlyPaths: [],
    env: {},
    replicaAddress: () => `127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    authToken: TOKEN,
    providerModel: "qwen3:8b",
  };

  beforeAll(async () => {
    // agentgate's stand-in: Codex's provider address. Only reachable with networkAllowed.
    server = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    area = scratch("agentgate-job-sbx-");
    probe = path.join(area.dir("probe"), "codex.mjs");
    fs.writeFileSync(probe, PROBE, { mode: 0o755 });
    fx = await jobsFixture({}, { sandbox, codex: () => locateCodex(codex, fx.env), killGraceMs: 500 });
    // The sandbox uid must reach DATA_DIR/jobs/<id> (mkdtemp makes 0700 directories).
    fs.chmodSync(fx.dir, 0o711);
    fs.mkdirSync(fx.dataDir, { mode: 0o711 });
    fs.writeFileSync(path.join(fx.dataDir, "secret.txt"), "host secret");
    // The fixture's directory (the fake codex's script) is shown read-only; DATA_DIR inside it stays hidden.
    sandbox.readOnlyPaths!.push(fx.dir);
    sandbox.hiddenPaths.push(fx.dataDir);
    Object.assign(sandbox.env!, {
      FAKE_CODEX_SCRIPT: fx.env.FAKE_CODEX_SCRIPT!,
      PROBE_DATA_DIR: fx.dataDir,
      PROBE_RO_DIR: fx.dir,
    });
  });
  afterAll(async () => {
    await fx?.close();
    area?.remove();
    server?.close();
  });
  beforeEach(() => {
    codex = FAKE_CODEX;
  });

  it("the driver's non-terminal launch (jobs) leaves out the foreground step; agents keep it", () => {
    const driver = new BwrapDriver(new SystemTools());
    const ws = area.dir("launch-ws");
    const base = { driver: "bwrap" as const, argv: ["true"], workspace: ws, env: {}, network: false, limits: {} };
    const pipes = driver.prepare({ ...base, hiddenPaths: [], uid: POOL.last, terminal: false });
    const tty = driver.prepare({ ...base, hiddenPaths: [], uid: POOL.last });
    try {
      expect(pipes.args).toContain(CLOSE_FDS_PERL);
      expect(pipes.args).not.toContain(FOREGROUND_PERL);
      expect(pipes.args.slice(-2)).toEqual(["--", "true"]);
      expect(tty.args).toContain(FOREGROUND_PERL);
    } finally {
      pipes.cleanup();
      tty.cleanup();
    }
  });

  it("runs the fake codex in bwrap and reads output/suggestion.json and summary.txt back", async () => {
    fx.script({
      messages: ["done"],
      writeFiles: { "output/suggestion.json": { steps: ["a", "b"] }, "output/summary.txt": "two steps\n" },
    });
    const job = await fx.jobs.submit({ mode: "workflow", operatorRequest: "Design a workflow", sandbox: "bwrap" });
    const done = await untilFinal(fx.jobs, job.id);
    expect(done, done.error + done.stderr).toMatchObject({
      status: "succeeded",
      exitCode: 0,
      output: { steps: ["a", "b"] },
      summary: "two steps",
      finalMessage: "done",
      usage: { inputTokens: 50, outputTokens: 5 },
    });
    expect(done.threadId).toMatch(/^[0-9a-f-]{36}$/);
    expect(fs.readdirSync(path.join(fx.dataDir, "jobs"))).toEqual([]); // workspace removed
    expect(pool.inUse).toBe(0); // uid returned
  });

  it("from inside: Codex's own CODEX_HOME and argv, no DATA_DIR, no /root, no writes outside /workspace, no network", async () => {
    codex = probe;
    const job = await fx.jobs.submit({
      prompt: "look around",
      sandbox: "bwrap",
      execOptions: ["-s", "read-only"],
      outputSchema: { type: "object" },
      limits: { openFiles: 123 },
    });
    const done = await untilFinal(fx.jobs, job.id);
    expect(done.status, done.error + done.stderr).toBe("succeeded");
    const o = done.output as Record<string, any>;
    expect(o.uid).toBeGreaterThanOrEqual(POOL.first);
    expect(o.uid).toBeLessThanOrEqual(POOL.last);
    expect(o.cwd).toBe("/workspace");
    expect(o.stdin).toContain("look around");
    // Codex's sandbox cannot nest: danger-full-access replaces the job's -s, paths are the sandbox's.
    expect(o.argv).toEqual([
      "exec",
      "--json",
      "--skip-git-repo-check",
      "--sandbox",
      "danger-full-access",
      "--output-schema",
      "/workspace/output-schema.json",
      "-",
    ]);
    expect(o.env).toEqual({ CODEX_HOME: SANDBOX_CODEX_HOME, KEY: TOKEN, OUT: "/workspace/output" });
    expect(o.config).toContain(`base_url = "http://${sandbox.replicaAddress()}/v1"`);
    // agentgate's own environment stays outside.
    expect(o.envKeys).not.toContain("FAKE_CODEX_LOG");
    expect(o.envKeys).not.toContain("CODEX_PROXY_TIMEOUT_MS");
    // DATA_DIR (inside a read-only extra here) is covered; /root does not exist.
    expect(o.dataDirList).toMatch(/^error:E(ACCES|NOENT)$/);
    expect(o.dataDirSecret).toMatch(/^error:E(ACCES|NOENT)$/);
    expect(o.root).toMatch(/^error:E(ACCES|NOENT)$/);
    // Writes outside /workspace fail; nothing reached the host.
    for (const k of ["writeEtc", "writeRoot", "writeUsr", "writeReadOnly"])
      expect(o[k], k).toMatch(/^error:E(ROFS|ACCES)$/);
    expect(o.writeWorkspace).toBe("ok");
    expect(fs.existsSync("/etc/agentgate-job-probe")).toBe(false);
    expect(fs.existsSync(path.join(fx.dir, "agentgate-job-probe"))).toBe(false);
    // No network by default: agentgate (the provider in config.toml) is not reachable.
    expect(o.network).toBe("error:ECONNREFUSED");
    expect(o.openFiles).toBe("123");
  });

  it("with networkAllowed Codex reaches agentgate's address", async () => {
    codex = probe;
    const before = connections;
    const job = await fx.jobs.submit({ prompt: "call home", sandbox: "bwrap", networkAllowed: true });
    const done = await untilFinal(fx.jobs, job.id);
    expect(done.status, done.error + done.stderr).toBe("succeeded");
    expect((done.output as Record<string, unknown>).network).toBe("connected");
    expect(connections).toBe(before + 1);
  });

  it("a timeout ends every process of the job's uid, grandchildren that ignore TERM included", async () => {
    fx.script({ hang: true, spawnGrandchild: true, ignoreSigterm: true });
    const t0 = Date.now();
    const job = await fx.jobs.submit({ prompt: "hang", sandbox: "bwrap", timeoutMs: 1000 });
    await untilGrandchild();
    const done = await untilFinal(fx.jobs, job.id);
    expect(done).toMatchObject({ status: "failed", failureReason: "timeout" });
    expect(Date.now() - t0).toBeLessThan(8000);
    expect(poolProcesses()).toEqual([]);
    expect(pool.inUse).toBe(0);
  });

  it("a timeout also ends a process that left the process group (setsid) and ignores TERM", async () => {
    codex = probe;
    sandbox.env!.PROBE_ESCAPE = "1";
    try {
      const job = await fx.jobs.submit({ prompt: "escape", sandbox: "bwrap", timeoutMs: 1000 });
      await untilGrandchild();
      const done = await untilFinal(fx.jobs, job.id);
      expect(done).toMatchObject({ status: "failed", failureReason: "timeout" });
      expect(poolProcesses()).toEqual([]);
      expect(pool.inUse).toBe(0);
    } finally {
      delete sandbox.env!.PROBE_ESCAPE;
    }
  });

  it("a cancel ends the sandbox too", async () => {
    fx.script({ hang: true, spawnGrandchild: true });
    const job = await fx.jobs.submit({ prompt: "hang", sandbox: "bwrap" });
    await untilGrandchild();
    await fx.jobs.cancel(job.id, "enough");
    const done = await untilFinal(fx.jobs, job.id);
    expect(done.status).toBe("canceled");
    expect(poolProcesses()).toEqual([]);
    expect(pool.inUse).toBe(0);
  });

  it("without network, a failing Codex's error says why it may have failed", async () => {
    fx.script({ fail: "stream disconnected before completion" });
    const job = await fx.jobs.submit({ prompt: "fail", sandbox: "bwrap" });
    const done = await untilFinal(fx.jobs, job.id);
    expect(done).toMatchObject({ status: "failed", failureReason: "turn_failed" });
    expect(done.error).toContain("stream disconnected before completion");
    expect(done.error).toContain("networkAllowed");
  });
});

describe("job specs and agentgate's sandbox", () => {
  let fx: JobsFixture;
  beforeAll(async () => {
    fx = await jobsFixture();
  });
  afterAll(() => fx.close());
  const err = (p: Promise<unknown>) =>
    p.then(
      () => undefined,
      (e: unknown) => e as { kind: string; message: string; code?: string },
    );

  it("nsjail is refused with failed_precondition; bwrap allows danger-full-access; limits and resume are checked", async () => {
    expect(await err(fx.jobs.submit({ prompt: "a", sandbox: "nsjail" }))).toMatchObject({
      kind: "failed_precondition",
      message: expect.stringContaining("nsjail"),
    });
    expect(await err(fx.jobs.submit({ prompt: "a", sandbox: "bogus" as never }))).toMatchObject({
      kind: "invalid_argument",
    });
    expect(await err(fx.jobs.submit({ prompt: "a", sandbox: "bwrap", limits: { openFiles: -1 } }))).toMatchObject({
      kind: "invalid_argument",
    });
    expect(
      await err(
        fx.jobs.submit({ prompt: "a", sandbox: "bwrap", resumeThreadId: "00000000-0000-4000-8000-000000000001" }),
      ),
    ).toMatchObject({ kind: "failed_precondition" });
    // Accepted (and canceled at once: this fixture has no sandbox configured).
    const job = await fx.jobs.submit({ prompt: "a", sandbox: "bwrap", sandboxPolicy: "danger-full-access" });
    await fx.jobs.cancel(job.id).catch(() => undefined);
    expect(["canceled", "failed"]).toContain((await untilFinal(fx.jobs, job.id)).status);
  });
});

/** Waits until the fake codex's grandchild (`node -e ... setInterval ...`) runs under one of this file's uids. */
async function untilGrandchild(ms = 10_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const found = poolProcesses().some((pid) => {
      try {
        return fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("setInterval");
      } catch {
        return false;
      }
    });
    if (found) return;
    if (Date.now() - t0 > ms) throw new Error(`no sandboxed grandchild after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
