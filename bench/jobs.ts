/**
 * bench/jobs: the durable job queue (src/jobs/) with the fake Codex CLI (test/doubles/fake-codex.mjs).
 *
 *   npx tsx bench/jobs.ts [--json out.json] [--quick] [--strict] [--jobs N] [--concurrency N]
 *
 * The JobManager runs in this process over the embedded database (PGlite, as `agentgate serve` uses
 * by default), so what is measured is the queue itself: the claim loop, the database round trips,
 * the workspace, spawning Codex and reading its events. No RPC is involved (bench/completion
 * measures that layer).
 *
 * 1. Submit-to-running latency with an idle queue: submit one job, time until the manager reports it
 *    RUNNING (the claim committed; Codex is spawned next), wait for it to end, repeat (target p50 < 50 ms).
 *    The baseline in the same run: spawning the fake codex directly (what any job runner pays).
 * 2. Throughput: N jobs (default 500) submitted at once with concurrency 4: wall time, jobs per
 *    second, and the check that every job succeeded and ran exactly once (one fake invocation per
 *    job workspace).
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { locateCodex } from "../src/backends/codex/locate-codex.js";
import { JobManager } from "../src/jobs/job-manager.js";
import { JobRunner } from "../src/jobs/job-runner.js";
import { DEFAULT_WORKSPACE_LIMITS } from "../src/jobs/job-workspace.js";
import { openDatabase } from "../src/storage/database.js";
import { round3, roundSummary, summarize, table, ms } from "./lib/stats.js";

const { values: args } = parseArgs({
  options: {
    json: { type: "string" },
    quick: { type: "boolean", default: false },
    strict: { type: "boolean", default: false },
    jobs: { type: "string" },
    concurrency: { type: "string" },
    samples: { type: "string" },
  },
});
const quick = args.quick!;
const int = (v: string | undefined, def: number) => (v === undefined ? def : Math.max(1, Number.parseInt(v, 10)));
const JOBS = int(args.jobs, quick ? 100 : 500);
const CONCURRENCY = int(args.concurrency, 4);
const SAMPLES = int(args.samples, quick ? 30 : 100);
const log = (s = "") => process.stderr.write(`${s}\n`);
const FAKE = fileURLToPath(new URL("../test/doubles/fake-codex.mjs", import.meta.url));

async function main(): Promise<void> {
  const t0 = Date.now();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentgate-bench-jobs-"));
  const scriptFile = path.join(dir, "script.json");
  const logFile = path.join(dir, "invocations.jsonl");
  fs.writeFileSync(scriptFile, JSON.stringify({ turns: [{ messages: ["ok"] }] }));
  const env = {
    ...process.env,
    FAKE_CODEX_SCRIPT: scriptFile,
    FAKE_CODEX_LOG: logFile,
    CODEX_HOME: path.join(dir, "home"),
  };
  const db = await openDatabase({ dataDir: path.join(dir, "data") });
  const open = (concurrency: number) =>
    JobManager.open({
      db,
      runner: new JobRunner({
        codex: () => locateCodex(FAKE, env),
        workspaceRoot: path.join(dir, "data", "jobs"),
        serverExecOptions: [],
        defaultSandbox: "workspace-write",
        defaultTimeoutMs: 60_000,
        keepWorkspaces: false,
        outputCapBytes: 1024 * 1024,
        workspaceLimits: DEFAULT_WORKSPACE_LIMITS,
        env,
        killGraceMs: 1000,
      }),
      owner: { instanceId: randomUUID(), nodeKey: `bench:${dir}`, replicaAddress: "" },
      concurrency,
      workspaceLimits: DEFAULT_WORKSPACE_LIMITS,
      retentionSeconds: 0,
    });

  // --- baseline: the fake codex alone ---
  log("baseline: spawning the fake codex directly");
  const direct: number[] = [];
  for (let i = 0; i < Math.min(SAMPLES, 30); i++) {
    const start = performance.now();
    await new Promise<void>((resolve, reject) => {
      const c = spawn(process.execPath, [FAKE, "exec", "--json", "--skip-git-repo-check", "--ephemeral", "hi"], {
        env: { ...env, FAKE_CODEX_LOG: path.join(dir, "direct.jsonl") },
        stdio: ["ignore", "pipe", "ignore"],
      });
      c.stdout.once("data", () => direct.push(performance.now() - start));
      c.once("exit", () => resolve());
      c.once("error", reject);
    });
  }

  // --- 1. submit-to-running, idle queue ---
  log(`submit-to-running: ${SAMPLES} jobs one at a time`);
  const jobs = await open(CONCURRENCY);
  const latency: number[] = [];
  for (let i = 0; i < SAMPLES + 5; i++) {
    const ac = new AbortController();
    const start = performance.now();
    const job = await jobs.submit({ prompt: `latency ${i}` });
    let running = Number.NaN;
    for await (const e of jobs.watch(job.id, 0, false, ac.signal)) {
      if (e.event.type === "status" && e.event.status === "running" && Number.isNaN(running))
        running = performance.now() - start;
    }
    if (i >= 5) latency.push(running);
  }

  // --- 2. throughput ---
  log(`throughput: ${JOBS} jobs, concurrency ${CONCURRENCY}`);
  const before = fs.existsSync(logFile) ? fs.readFileSync(logFile, "utf8").split("\n").filter(Boolean).length : 0;
  const tStart = performance.now();
  const ids = await Promise.all(
    Array.from({ length: JOBS }, (_, i) => jobs.submit({ prompt: `bulk ${i}` }).then((j) => j.id)),
  );
  const submitted = performance.now() - tStart;
  const final: Record<string, number> = {};
  for (const id of ids) {
    const ac = new AbortController();
    for await (const _ of jobs.watch(id, 0, false, ac.signal)) {
      // until it ends
    }
    const j = await jobs.get(id);
    final[j.status] = (final[j.status] ?? 0) + 1;
  }
  const wall = performance.now() - tStart;
  const runs = fs
    .readFileSync(logFile, "utf8")
    .split("\n")
    .filter(Boolean)
    .slice(before)
    .map((l) => JSON.parse(l) as { kind: string; cwd: string })
    .filter((r) => r.kind === "exec" && ids.some((id) => r.cwd.endsWith(id)));
  const perJob = new Map<string, number>();
  for (const r of runs) perJob.set(path.basename(r.cwd), (perJob.get(path.basename(r.cwd)) ?? 0) + 1);
  const ranTwice = [...perJob.values()].filter((n) => n > 1).length;
  const neverRan = ids.filter((id) => !perJob.has(id)).length;

  await jobs.close();
  await db.close();
  fs.rmSync(dir, { recursive: true, force: true });

  const lat = summarize(latency);
  const base = summarize(direct);
  console.log("\nSubmit-to-running with an idle queue (ms)");
  console.log(
    table(
      ["path", "n", "p50", "p90", "p99", "max"],
      [
        [
          "spawn fake codex -> first stdout byte (baseline)",
          String(base.n),
          ms(base.p50),
          ms(base.p90),
          ms(base.p99),
          ms(base.max),
        ],
        [
          "SubmitJob -> RUNNING (claimed; Codex starting)",
          String(lat.n),
          ms(lat.p50),
          ms(lat.p90),
          ms(lat.p99),
          ms(lat.max),
        ],
      ],
    ),
  );
  const jobsPerSecond = JOBS / (wall / 1000);
  console.log(`\n${JOBS} jobs, concurrency ${CONCURRENCY}`);
  console.log(
    table(
      ["wall s", "jobs/s", "submit all ms", "statuses", "ran twice", "never ran"],
      [
        [
          (wall / 1000).toFixed(2),
          jobsPerSecond.toFixed(1),
          submitted.toFixed(0),
          JSON.stringify(final),
          String(ranTwice),
          String(neverRan),
        ],
      ],
    ),
  );
  const latencyPass = lat.p50 < 50;
  const integrityPass = ranTwice === 0 && neverRan === 0 && final.succeeded === JOBS;
  console.log("\nTargets");
  console.log(
    `${latencyPass ? "PASS" : "MISS"}  submit-to-running p50 < 50 ms: ${ms(lat.p50)} ms (p99 ${ms(lat.p99)} ms)`,
  );
  console.log(`${integrityPass ? "PASS" : "FAIL"}  ${JOBS} jobs: all succeeded, none lost, none run twice`);
  const results = {
    seconds: Math.round((Date.now() - t0) / 100) / 10,
    submitToRunningMs: roundSummary(lat),
    spawnBaselineMs: roundSummary(base),
    throughput: {
      jobs: JOBS,
      concurrency: CONCURRENCY,
      wallSeconds: round3(wall / 1000),
      jobsPerSecond: round3(jobsPerSecond),
      statuses: final,
      ranTwice,
      neverRan,
    },
  };
  if (args.json) fs.writeFileSync(args.json, `${JSON.stringify(results, null, 2)}\n`);
  console.log(`\n(run took ${results.seconds} s)`);
  if (!args.json) console.log(JSON.stringify(results));
  if (!integrityPass || (args.strict && !latencyPass)) process.exitCode = 1;
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
