/**
 * The queue survives `kill -9`: a real `agentgate serve` (embedded database in DATA_DIR, JOB_CONCURRENCY=1)
 * with one job running and two queued is killed with SIGKILL and started again on the same DATA_DIR.
 * The running job is then INTERRUPTED, the queued ones run, and every job ran exactly once.
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { fakeCodexInvocations, writeFakeCodexScript } from "../doubles/fake-codex-files.js";

const REPO = fileURLToPath(new URL("../..", import.meta.url));
const FAKE = fileURLToPath(new URL("../doubles/fake-codex.mjs", import.meta.url));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentgate-jobs-kill-"));
const scriptFile = path.join(dir, "script.json");
const logFile = path.join(dir, "invocations.jsonl");
const children: ChildProcess[] = [];

/**
 * Kills a fake codex's process group, but only while its leader is still that fake: a group id of
 * a process that ended may already belong to another test's processes (a stray SIGKILL here once
 * ended an agent test's `cat`).
 */
function killFakeCodex(pgid: number): void {
  try {
    if (!fs.readFileSync(`/proc/${pgid}/cmdline`, "utf8").includes("fake-codex")) return;
    process.kill(-pgid, "SIGKILL");
  } catch {
    // already gone
  }
}

afterAll(() => {
  for (const c of children) c.kill("SIGKILL");
  for (const inv of fakeCodexInvocations(logFile)) killFakeCodex(inv.pgid);
  fs.rmSync(dir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise((resolve) => srv.close(resolve));
  return port;
}

async function startAgentgate(port: number): Promise<ChildProcess> {
  const child = spawn(process.execPath, [path.join(REPO, "bin/agentgate.js"), "serve"], {
    cwd: REPO,
    env: {
      ...process.env,
      BIND: `127.0.0.1:${port}`,
      DATA_DIR: path.join(dir, "data"),
      CODEX_BIN: FAKE,
      JOB_CONCURRENCY: "1",
      LOG_LEVEL: "warn",
      FAKE_CODEX_SCRIPT: scriptFile,
      FAKE_CODEX_LOG: logFile,
      CODEX_HOME: path.join(dir, "codex-home"),
      AUTH_TOKEN: "",
    },
    stdio: ["ignore", "ignore", "pipe"],
  });
  children.push(child);
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const t0 = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`agentgate exited: ${stderr}`);
    const ok = await fetch(`http://127.0.0.1:${port}/healthz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return child;
    if (Date.now() - t0 > 30_000) throw new Error(`agentgate did not start: ${stderr}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const api = (port: number) => ({
  async submit(i: number): Promise<string> {
    const r = await fetch(`http://127.0.0.1:${port}/v1/codex/jobs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ mode: "job", operatorRequest: `job ${i}`, metadataSummary: "durability" }),
    });
    expect(r.status).toBe(202);
    return ((await r.json()) as { jobId: string }).jobId;
  },
  async status(id: string): Promise<string> {
    const r = await fetch(`http://127.0.0.1:${port}/v1/codex/jobs/${id}`);
    const body = (await r.json()) as { status: string; agentgateStatus?: string };
    return body.agentgateStatus ?? body.status;
  },
});

async function until(cond: () => Promise<boolean>, what: string, ms = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("kill -9 while jobs run and wait", () => {
  it(
    "on restart the running job is INTERRUPTED, the queued ones run, each job ran once",
    { timeout: 90_000 },
    async () => {
      writeFakeCodexScript(scriptFile, { hang: true });
      const port = await freePort();
      const first = await startAgentgate(port);
      const a = api(port);
      const ids = [await a.submit(1), await a.submit(2), await a.submit(3)];
      await until(async () => (await a.status(ids[0]!)) === "running", "the first job to run");
      await until(async () => fakeCodexInvocations(logFile).length === 1, "codex to start");
      expect(await a.status(ids[1]!)).toBe("pending");

      first.kill("SIGKILL");
      await new Promise((resolve) => first.once("exit", resolve));
      // agentgate cannot end a Codex it no longer runs (see docs/jobs.md); the test cleans it up.
      for (const inv of fakeCodexInvocations(logFile)) killFakeCodex(inv.pgid);

      writeFakeCodexScript(scriptFile, { writeFiles: { "output/suggestion.json": { ok: true } } });
      const port2 = await freePort();
      await startAgentgate(port2);
      const b = api(port2);
      await until(async () => (await b.status(ids[2]!)) === "succeeded", "the queued jobs to finish");
      expect(await b.status(ids[0]!)).toBe("interrupted");
      expect(await b.status(ids[1]!)).toBe("succeeded");
      const runs = fakeCodexInvocations(logFile).map((i) => path.basename(i.cwd));
      expect(runs.sort()).toEqual([...ids].sort());
    },
  );
});
