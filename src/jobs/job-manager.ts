/**
 * JobService's domain: submits jobs to the durable queue (table `jobs`), runs up to `concurrency`
 * of them on this replica, and answers queries, cancellations and watchers. Several replicas on one
 * Postgres share the queue: claims use SKIP LOCKED, cancellations of a job on another replica go
 * through its record (seen at that replica's next heartbeat), and a replica that stopped without
 * finishing its jobs has them marked `interrupted` (at its own next start, or by any replica once its
 * heartbeat is stale).
 *
 * Submit-to-running latency: a submit on this replica wakes the claim loop at once; jobs submitted
 * on another replica are seen within `pollMs`.
 */
import type { Logger } from "pino";
import type { CallbackSender } from "../callbacks/callback-sender.js";
import { GatewayError, invalidArgument } from "../errors/gateway-error.js";
import type { Database } from "../storage/database.js";
import { newId } from "../util/ids.js";
import { JobEventHub } from "./job-events.js";
import type { JobRunner } from "./job-runner.js";
import {
  cancelPendingJob,
  claimPendingJobs,
  deleteExpiredJobs,
  finishJob,
  getJobRecord,
  heartbeat,
  insertJob,
  interruptOrphanedJobs,
  interruptStaleJobs,
  jobsOfThread,
  listJobRecords,
  recordProgress,
  requestCancel,
  setCallbackAttempts,
  type JobOwner,
  type ListJobsQuery,
} from "./job-store.js";
import type { WorkspaceLimits } from "./job-workspace.js";
import {
  FINAL_STATUSES,
  type CallbackAttempt,
  type JobRecord,
  type JobSpec,
  type JobEvent,
  type JobUsage,
  type SequencedJobEvent,
} from "./types.js";
import { validateJobSpec } from "./validate-spec.js";

export interface JobManagerOptions {
  db: Database;
  runner: JobRunner;
  owner: JobOwner;
  /** JOB_CONCURRENCY: jobs run at once on this replica. */
  concurrency: number;
  workspaceLimits: WorkspaceLimits;
  /** CODEX_PROXY_JOB_RETENTION_SECONDS. */
  retentionSeconds: number;
  callbacks?: CallbackSender;
  logger?: Logger;
  /** How often the queue is checked for other replicas' jobs (default 1000 ms). */
  pollMs?: number;
  /** Heartbeat of running jobs (default 5000 ms); stale after 6 missed beats. */
  heartbeatMs?: number;
}

export interface SubmitOptions {
  requestId?: string;
  retryOfJobId?: string;
  triggerId?: string;
}

const INTERRUPTED_AT_START = "agentgate stopped while the job ran (found at the next start)";
const INTERRUPTED_STALE = "the replica running the job stopped answering (heartbeat lost)";
const INTERRUPTED_SHUTDOWN = "agentgate was shut down while the job ran";

interface Running {
  job: JobRecord;
  cancel: AbortController;
  done: Promise<void>;
}

export class JobManager {
  private readonly o: Required<Omit<JobManagerOptions, "callbacks" | "logger">> & JobManagerOptions;
  readonly events = new JobEventHub();
  private readonly running = new Map<string, Running>();
  /** Jobs whose record is polled for watchers (they run elsewhere or wait). */
  private readonly polled = new Set<string>();
  private closed = false;
  private pumping = false;
  private pumpAgain = false;
  private pollTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly shutdown = new AbortController();
  /** Hooks for other modules (triggers) that want to know when a job ends. */
  private readonly finishedListeners = new Set<(job: JobRecord) => void>();

  private constructor(o: JobManagerOptions) {
    this.o = { pollMs: 1000, heartbeatMs: 5000, ...o } as JobManager["o"];
  }

  static async open(o: JobManagerOptions): Promise<JobManager> {
    const m = new JobManager(o);
    const interrupted = await interruptOrphanedJobs(o.db, o.owner, processAlive, INTERRUPTED_AT_START);
    if (interrupted.length) o.logger?.warn({ jobs: interrupted }, "jobs from an earlier run marked interrupted");
    m.pollTimer = setInterval(() => m.wake(), m.o.pollMs);
    m.pollTimer.unref();
    m.heartbeatTimer = setInterval(() => void m.beat(), m.o.heartbeatMs);
    m.heartbeatTimer.unref();
    m.wake();
    return m;
  }

  onJobFinished(fn: (job: JobRecord) => void): () => void {
    this.finishedListeners.add(fn);
    return () => this.finishedListeners.delete(fn);
  }

  setReplicaAddress(address: string): void {
    this.o.owner.replicaAddress = address;
  }

  // --- commands ---

  async submit(spec: JobSpec, opts: SubmitOptions = {}): Promise<JobRecord> {
    this.checkOpen();
    if (opts.retryOfJobId) {
      const earlier = await this.get(opts.retryOfJobId);
      spec = earlier.spec;
    }
    validateJobSpec(spec, this.o.workspaceLimits);
    if (opts.requestId !== undefined && opts.requestId.length > 200)
      throw invalidArgument("request_id is longer than 200 characters", "request_id");
    const id = newId("job_");
    const job = await insertJob(this.o.db, {
      ...blankJob(id, spec, new Date()),
      requestId: opts.requestId ?? "",
      retryOfJobId: opts.retryOfJobId ?? "",
      triggerId: opts.triggerId ?? "",
    });
    // A new job (not the one an earlier call with the same request id made): watchers from now on
    // see it from PENDING, whichever replica runs it.
    if (job.id === id) {
      this.events.emit(id, { type: "status", previous: "pending", status: "pending", job });
      this.followElsewhere(id);
    }
    this.wake();
    return this.get(job.id);
  }

  /** Checks a spec as SubmitJob would (trigger templates are checked when the trigger is made). */
  validateSpec(spec: JobSpec): void {
    validateJobSpec(spec, this.o.workspaceLimits);
  }

  async get(id: string): Promise<JobRecord> {
    if (!id) throw invalidArgument("job_id is required", "job_id");
    const rec = await getJobRecord(this.o.db, id);
    if (!rec) throw new GatewayError("not_found", `job ${id} not found`, { param: "job_id", code: "job_not_found" });
    const { cancelRequested: _, ...job } = rec;
    return job;
  }

  list(q: ListJobsQuery): Promise<{ jobs: JobRecord[]; nextPageToken: string }> {
    return listJobRecords(this.o.db, q);
  }

  jobsOfThread(threadId: string): Promise<JobRecord[]> {
    return jobsOfThread(this.o.db, threadId);
  }

  /** Pending: canceled at once. Running here: stopped, then canceled. Running elsewhere: requested. */
  async cancel(id: string, reason = ""): Promise<JobRecord> {
    const why = reason.trim() || "canceled by request";
    const job = await this.get(id);
    if (FINAL_STATUSES.has(job.status)) return job;
    if (job.status === "pending" && (await cancelPendingJob(this.o.db, id, why))) {
      const after = await this.get(id);
      this.events.emit(id, { type: "status", previous: "pending", status: "canceled", job: after }, true);
      this.notifyFinished(after);
      void this.deliverCallback(after);
      return after;
    }
    const local = this.running.get(id);
    if (local) {
      local.cancel.abort(why);
      await local.done;
      return this.get(id);
    }
    await requestCancel(this.o.db, id, why);
    return this.get(id);
  }

  /** WatchJob: replay after `afterSequence`, then live events until the job ends. */
  async *watch(
    id: string,
    afterSequence: number,
    includeOutput: boolean,
    signal: AbortSignal,
  ): AsyncIterable<SequencedJobEvent> {
    const job = await this.get(id);
    const stop = AbortSignal.any([signal, this.shutdown.signal]);
    if (!this.events.has(id)) {
      const snapshot: JobEvent = { type: "status", previous: job.status, status: job.status, job };
      if (FINAL_STATUSES.has(job.status)) {
        // Ended, and its events are no longer held: the record is all there is.
        yield { sequence: 1, time: new Date(), event: snapshot };
        return;
      }
      this.events.emit(id, snapshot);
    }
    this.followElsewhere(id);
    for await (const e of this.events.follow(id, afterSequence, stop))
      if (includeOutput || e.event.type !== "output") yield e;
  }

  /** RunJob: submit and wait for the end (cancel when the caller goes away, if asked). */
  async run(
    spec: JobSpec,
    opts: SubmitOptions & { cancelOnDisconnect?: boolean },
    signal: AbortSignal,
  ): Promise<JobRecord> {
    const job = await this.submit(spec, opts);
    try {
      for await (const _ of this.watch(job.id, 0, false, signal)) {
        // status changes and Codex events: only the end matters here
      }
    } finally {
      if (signal.aborted && opts.cancelOnDisconnect)
        await this.cancel(job.id, "the RunJob caller went away").catch(() => undefined);
    }
    if (signal.aborted) throw new GatewayError("canceled", "the caller went away");
    return this.get(job.id);
  }

  /** Ends the claim loop; running jobs are stopped and recorded as interrupted. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.pollTimer);
    clearInterval(this.heartbeatTimer);
    this.shutdown.abort();
    for (const r of this.running.values()) r.cancel.abort(SHUTDOWN);
    await Promise.allSettled([...this.running.values()].map((r) => r.done));
    this.events.close();
  }

  // --- the queue ---

  private wake(): void {
    if (this.closed) return;
    if (this.pumping) {
      this.pumpAgain = true;
      return;
    }
    this.pumping = true;
    void this.pump().finally(() => {
      this.pumping = false;
      if (this.pumpAgain) {
        this.pumpAgain = false;
        this.wake();
      }
    });
  }

  private async pump(): Promise<void> {
    try {
      const free = this.o.concurrency - this.running.size;
      if (free <= 0 || this.closed) return;
      const claimed = await claimPendingJobs(this.o.db, this.o.owner, free);
      for (const job of claimed) this.start(job);
    } catch (err) {
      if (!this.closed) this.o.logger?.error({ err }, "claiming jobs failed");
    }
  }

  private start(job: JobRecord): void {
    const cancel = new AbortController();
    const entry: Running = { job, cancel, done: Promise.resolve() };
    this.running.set(job.id, entry);
    this.events.emit(job.id, { type: "status", previous: "pending", status: "running", job });
    entry.done = this.execute(job, cancel.signal)
      .catch((err: unknown) => this.o.logger?.error({ err, job: job.id }, "job execution failed"))
      .finally(() => {
        this.running.delete(job.id);
        this.wake();
      });
  }

  private async execute(job: JobRecord, cancel: AbortSignal): Promise<void> {
    const previousUsage = job.spec.resumeThreadId ? await this.threadUsage(job.spec.resumeThreadId) : undefined;
    const outcome = await this.o.runner.run(
      { job, previousUsage, cancel },
      {
        output: (stream, offset, data) => this.events.emit(job.id, { type: "output", stream, offset, data }),
        codexEvent: (raw) => this.events.emit(job.id, { type: "codex", event: { type: raw.type as never, raw } }),
        progress: (p) => void recordProgress(this.o.db, job.id, p).catch(() => undefined),
      },
    );
    if (outcome.status === "canceled" && cancel.reason === SHUTDOWN) {
      outcome.status = "interrupted";
      outcome.error = INTERRUPTED_SHUTDOWN;
    }
    const stored = await finishJob(this.o.db, job.id, outcome);
    const after = await this.get(job.id);
    if (!stored)
      this.o.logger?.warn({ job: job.id, status: after.status }, "job ended after it was no longer running here");
    this.events.emit(job.id, { type: "status", previous: "running", status: after.status, job: after }, true);
    this.notifyFinished(after);
    await this.deliverCallback(after);
  }

  /**
   * Usage of the thread before this job. Each job records only its own turns (the first one also
   * whatever the thread had before agentgate ran it), so the thread's total is their sum.
   */
  private async threadUsage(threadId: string): Promise<JobUsage | undefined> {
    const usages = (await jobsOfThread(this.o.db, threadId)).flatMap((j) => (j.usage ? [j.usage] : []));
    if (usages.length === 0) return undefined;
    const sum = (k: keyof JobUsage) => usages.reduce((n, u) => n + u[k], 0);
    return {
      inputTokens: sum("inputTokens"),
      cachedInputTokens: sum("cachedInputTokens"),
      cacheWriteInputTokens: sum("cacheWriteInputTokens"),
      outputTokens: sum("outputTokens"),
      reasoningOutputTokens: sum("reasoningOutputTokens"),
    };
  }

  private notifyFinished(job: JobRecord): void {
    for (const fn of this.finishedListeners) {
      try {
        fn(job);
      } catch (err) {
        this.o.logger?.warn({ err }, "a job-finished listener failed");
      }
    }
  }

  private async deliverCallback(job: JobRecord): Promise<void> {
    const url = job.spec.callbackUrl;
    if (!url || !this.o.callbacks) return;
    const attempts: CallbackAttempt[] = [...job.callbackAttempts];
    await this.o.callbacks.deliver(
      url,
      `job.${job.status}`,
      publicJob(job),
      async (a) => {
        attempts.push(a);
        await setCallbackAttempts(this.o.db, job.id, attempts).catch(() => undefined);
      },
      this.shutdown.signal,
    );
  }

  /** Heartbeat for this replica's jobs, cancel requests from others, stale jobs, retention. */
  private async beat(): Promise<void> {
    try {
      const requests = await heartbeat(this.o.db, this.o.owner.instanceId, [...this.running.keys()]);
      for (const r of requests) this.running.get(r.id)?.cancel.abort(r.reason);
      const stale = await interruptStaleJobs(this.o.db, this.o.heartbeatMs * 6, INTERRUPTED_STALE);
      if (stale.length) this.o.logger?.warn({ jobs: stale }, "jobs of a replica that stopped marked interrupted");
      if (this.o.retentionSeconds > 0) await deleteExpiredJobs(this.o.db, this.o.retentionSeconds);
    } catch (err) {
      if (!this.closed) this.o.logger?.warn({ err }, "job heartbeat failed");
    }
  }

  /**
   * While a watched job is not run by this replica (pending, or claimed by another one), its status
   * changes are read from its record and emitted to the hub, so watchers and RunJob see it end.
   * Once this replica runs it, its own events take over; once nobody watches, polling stops.
   */
  private followElsewhere(id: string): void {
    if (this.polled.has(id)) return;
    this.polled.add(id);
    void (async () => {
      try {
        while (!this.closed && !this.events.finished(id)) {
          await new Promise((resolve) => setTimeout(resolve, POLL_ELSEWHERE_MS));
          if (this.running.has(id)) continue;
          if (!this.events.watched(id)) {
            this.events.drop(id);
            return;
          }
          const job = await this.get(id);
          const previous = this.events.status(id) ?? job.status;
          // Running here meanwhile (claimed between the check above and the read): its events come.
          if (job.status === previous || this.running.has(id)) continue;
          this.events.emit(id, { type: "status", previous, status: job.status, job }, FINAL_STATUSES.has(job.status));
        }
      } catch (err) {
        if (!this.closed) this.o.logger?.warn({ err, job: id }, "following a job's record failed");
      } finally {
        this.polled.delete(id);
      }
    })();
  }

  private checkOpen(): void {
    if (this.closed) throw new GatewayError("unavailable", "agentgate is shutting down");
  }
}

const SHUTDOWN = "agentgate is shutting down";
const POLL_ELSEWHERE_MS = 250;

/** Whether a process with this pid exists on this host (EPERM: it does, as another user). */
function processAlive(pid: number): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

function blankJob(id: string, spec: JobSpec, now: Date): JobRecord {
  return {
    id,
    status: "pending",
    spec,
    createdAt: now,
    updatedAt: now,
    durationMs: 0,
    stdout: "",
    stderr: "",
    stdoutTruncated: false,
    stderrTruncated: false,
    summary: "",
    finalMessage: "",
    error: "",
    threadId: "",
    workspace: "",
    outputPath: "",
    replicaAddress: "",
    triggerId: "",
    retryOfJobId: "",
    callbackAttempts: [],
    queuePosition: 0,
    requestId: "",
  };
}

/** The job as callbacks and REST show it: context file contents are left out (they can be large). */
export function publicJob(job: JobRecord): JobRecord {
  return {
    ...job,
    spec: { ...job.spec, contextFiles: job.spec.contextFiles?.map((f) => ({ path: f.path, contents: "" })) },
  };
}
