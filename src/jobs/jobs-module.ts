/** Builds the job domain from the configuration (the composition root calls this). */
import os from "node:os";
import path from "node:path";
import type { Logger } from "pino";
import { locateCodex } from "../backends/codex/locate-codex.js";
import { CallbackSender } from "../callbacks/callback-sender.js";
import type { Config } from "../config/config.js";
import type { Database } from "../storage/database.js";
import { UidPool } from "../sandbox/uid-pool.js";
import { installationSecret } from "../storage/installation-secret.js";
import { SystemTools } from "../system/system-tools.js";
import { CodexSessionReader } from "./codex-sessions.js";
import { JobManager } from "./job-manager.js";
import { TriggerScheduler } from "./triggers/trigger-scheduler.js";
import { FINAL_STATUSES } from "./types.js";
import { JobRunner } from "./job-runner.js";
import { DEFAULT_WORKSPACE_LIMITS } from "./job-workspace.js";
import { SessionCatalog } from "./session-catalog.js";

/** Bytes of stdout and of stderr kept in each job record. */
const OUTPUT_CAP_BYTES = 1024 * 1024;

export async function openJobs(
  config: Config,
  deps: {
    db: Database;
    instanceId: string;
    logger?: Logger;
    env?: NodeJS.ProcessEnv;
    /** Sandbox uids, shared with the agent supervisor (default: a pool of its own over the default range). */
    uidPool?: UidPool;
    tools?: SystemTools;
  },
): Promise<{ jobs: JobManager; callbacks: CallbackSender; sessions: SessionCatalog; triggers: TriggerScheduler }> {
  const secret =
    config.codex.callbackSecret ?? config.authToken ?? (await installationSecret(deps.db, "callback_secret"));
  const callbacks = new CallbackSender({ secret, logger: deps.logger });
  const env = deps.env ?? process.env;
  // setReplicaAddress() updates this object once agentgate listens; sandboxed Codex calls that address.
  const owner = { instanceId: deps.instanceId, nodeKey: `${os.hostname()}:${config.dataDir}`, replicaAddress: "" };
  const runner = new JobRunner({
    codex: () => locateCodex(config.codex.bin, env),
    workspaceRoot: path.join(config.dataDir, "jobs"),
    serverExecOptions: config.codex.execOpts,
    defaultSandbox: config.codex.defaultSandbox,
    defaultTimeoutMs: config.codex.timeoutMs,
    keepWorkspaces: config.codex.keepWorkspaces,
    outputCapBytes: OUTPUT_CAP_BYTES,
    workspaceLimits: DEFAULT_WORKSPACE_LIMITS,
    env,
    killGraceMs: 2000,
    // Jobs with sandbox "bwrap" (docs/jobs.md, "Jobs inside agentgate's sandbox").
    sandbox: {
      tools: deps.tools ?? new SystemTools(),
      uidPool: deps.uidPool ?? new UidPool(),
      hiddenPaths: [path.resolve(config.dataDir)],
      replicaAddress: () => owner.replicaAddress,
      authToken: config.authToken,
      providerModel: config.model,
    },
  });
  const jobs = await JobManager.open({
    db: deps.db,
    runner,
    owner,
    concurrency: config.codex.jobConcurrency,
    workspaceLimits: DEFAULT_WORKSPACE_LIMITS,
    retentionSeconds: config.codex.jobRetentionSeconds,
    callbacks,
    logger: deps.logger,
  });
  const codexHome = env.CODEX_HOME || path.join(os.homedir(), ".codex");
  const sessions = new SessionCatalog({ reader: new CodexSessionReader(codexHome), jobs, codexHome });
  const triggers = new TriggerScheduler({
    db: deps.db,
    allowedRoots: config.searchRoots,
    logger: deps.logger,
    validateJobTemplate: (template) => jobs.validateSpec(template),
    submit: async (t) => {
      const job = await jobs.submit(t.spec.jobTemplate, { triggerId: t.id });
      return { jobId: job.id, status: job.status };
    },
    isJobActive: async (id) => {
      const job = await jobs.get(id).catch(() => undefined);
      return job !== undefined && !FINAL_STATUSES.has(job.status);
    },
  });
  jobs.onJobFinished((job) => {
    if (job.triggerId) void triggers.jobFinished(job.triggerId, job.id, job.status, job.error).catch(() => undefined);
  });
  await triggers.start();
  return { jobs, callbacks, sessions, triggers };
}
