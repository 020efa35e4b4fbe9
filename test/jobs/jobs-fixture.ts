/**
 * Shared by the job tests: a JobManager over a fresh in-memory database and a temporary DATA_DIR,
 * running test/doubles/fake-codex.mjs (scripted per test through FAKE_CODEX_SCRIPT / FAKE_CODEX_LOG).
 */
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { CallbackSender } from "../../src/callbacks/callback-sender.js";
import { locateCodex } from "../../src/backends/codex/locate-codex.js";
import { JobManager, type JobManagerOptions } from "../../src/jobs/job-manager.js";
import { JobRunner, type JobRunnerConfig } from "../../src/jobs/job-runner.js";
import { DEFAULT_WORKSPACE_LIMITS } from "../../src/jobs/job-workspace.js";
import type { Database } from "../../src/storage/database.js";
import { fakeCodexInvocations, writeFakeCodexScript, type FakeCodexInvocation } from "../doubles/fake-codex-files.js";
import { openTestDatabase } from "../support/test-database.js";

export const FAKE_CODEX = fileURLToPath(new URL("../doubles/fake-codex.mjs", import.meta.url));

export interface JobsFixture {
  db: Database;
  dir: string;
  dataDir: string;
  jobs: JobManager;
  /** Another manager (a replica, or a restart) over the same database. */
  open(more?: Partial<JobManagerOptions>, runner?: Partial<JobRunnerConfig>): Promise<JobManager>;
  script(...turns: Record<string, unknown>[]): void;
  invocations(): FakeCodexInvocation[];
  env: NodeJS.ProcessEnv;
  close(): Promise<void>;
}

export async function jobsFixture(
  more: Partial<JobManagerOptions> = {},
  runnerMore: Partial<JobRunnerConfig> = {},
): Promise<JobsFixture> {
  const db = await openTestDatabase();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentgate-jobs-"));
  const dataDir = path.join(dir, "data");
  const scriptFile = path.join(dir, "script.json");
  const logFile = path.join(dir, "invocations.jsonl");
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    FAKE_CODEX_SCRIPT: scriptFile,
    FAKE_CODEX_LOG: logFile,
    CODEX_HOME: path.join(dir, "codex-home"),
  };
  writeFakeCodexScript(scriptFile, {});
  const opened: JobManager[] = [];
  const callbacks = new CallbackSender({ secret: "test-secret", backoffMs: [20, 20, 20] });
  const open = async (m: Partial<JobManagerOptions> = {}, r: Partial<JobRunnerConfig> = {}) => {
    const runner = new JobRunner({
      codex: () => locateCodex(FAKE_CODEX, env),
      workspaceRoot: path.join(dataDir, "jobs"),
      serverExecOptions: [],
      defaultSandbox: "workspace-write",
      defaultTimeoutMs: 30_000,
      keepWorkspaces: false,
      outputCapBytes: 1024 * 1024,
      workspaceLimits: DEFAULT_WORKSPACE_LIMITS,
      env,
      killGraceMs: 500,
      ...runnerMore,
      ...r,
    });
    const jobs = await JobManager.open({
      db,
      runner,
      owner: { instanceId: randomUUID(), nodeKey: `test:${dataDir}`, replicaAddress: "127.0.0.1:1" },
      concurrency: 2,
      workspaceLimits: DEFAULT_WORKSPACE_LIMITS,
      retentionSeconds: 3600,
      callbacks,
      pollMs: 100,
      heartbeatMs: 200,
      ...more,
      ...m,
    });
    opened.push(jobs);
    return jobs;
  };
  const jobs = await open();
  return {
    db,
    dir,
    dataDir,
    jobs,
    open,
    env,
    script: (...turns) => writeFakeCodexScript(scriptFile, ...turns),
    invocations: () => fakeCodexInvocations(logFile),
    async close() {
      for (const j of opened) await j.close();
      callbacks.close();
      await db.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Waits until the job reaches a final status. */
export async function untilFinal(jobs: JobManager, id: string, ms = 15_000) {
  const t0 = Date.now();
  for (;;) {
    const j = await jobs.get(id);
    if (["succeeded", "failed", "canceled", "interrupted"].includes(j.status)) return j;
    if (Date.now() - t0 > ms) throw new Error(`job ${id} still ${j.status} after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
