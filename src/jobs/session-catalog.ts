/**
 * Codex sessions (threads) as JobService shows them: merged from the Codex CLI's own rollout files
 * (CodexSessionReader) and from agentgate's job records that name the thread. When both know a
 * thread, the rollout file's data wins (title, messages, usage ...) and the thread's job ids are
 * added. A thread with jobs but no rollout file (a CODEX_HOME elsewhere, or a Codex that writes
 * none) is built from its jobs: each job's prompt (user) and final message (assistant).
 *
 * `source` says who started the thread: AGENTGATE_JOB when its first job did not resume an existing
 * thread (or no rollout file exists), CODEX_SESSION_FILE when it was started outside agentgate.
 */
import { realpath } from "node:fs/promises";
import path from "node:path";
import { GatewayError, invalidArgument } from "../errors/gateway-error.js";
import type {
  CodexSessionDetail,
  CodexSessionReader,
  CodexSessionRole,
  CodexSessionSummary,
} from "./codex-sessions.js";
import type { JobManager } from "./job-manager.js";
import type { JobRecord, JobStatus, JobUsage } from "./types.js";

export type SessionSource = "codex_session_file" | "agentgate_job";

export interface SessionMessage {
  role: CodexSessionRole;
  text: string;
  time?: Date;
  /** The job that produced it (sessions built from job records). */
  jobId?: string;
}

export interface SessionEvent {
  time?: Date;
  /** A rollout line's type ("response_item", "event_msg" ...) or a `codex exec --json` event type. */
  type: string;
  payload: Record<string, unknown>;
}

export interface SessionSummary {
  /** The Codex thread id. */
  id: string;
  source: SessionSource;
  title: string;
  model: string;
  cwd: string;
  createdAt: Date;
  updatedAt: Date;
  /** Relative to CODEX_HOME when it lies inside it; "" when there is no rollout file. */
  rolloutFile: string;
  /** agentgate jobs in the thread, oldest first. */
  jobIds: string[];
  lastAgentMessage: string;
  /** Cumulative usage of the thread. */
  usage?: JobUsage;
  /** User and assistant messages. */
  messageCount: number;
  /** The status of the thread's latest agentgate job; undefined when agentgate ran none. */
  lastJobStatus?: JobStatus;
}

export interface SessionDetail extends SessionSummary {
  /** User and assistant messages, oldest first (the tail). */
  messages: SessionMessage[];
  /** Raw events, oldest first (the tail); empty unless asked for. */
  events: SessionEvent[];
}

export interface ListSessionsOptions {
  /** 0/undefined: 50; at most 200. */
  pageSize?: number;
  pageToken?: string;
  updatedAfter?: Date;
  source?: SessionSource;
}

export interface GetSessionOptions {
  /** 0/undefined: 200; at most 2000. */
  tailMessages?: number;
  includeEvents?: boolean;
  /** 0/undefined: 200; at most 2000. */
  tailEvents?: number;
}

export interface ResumeSessionOptions {
  /** Empty: DEFAULT_NUDGE_PROMPT. */
  prompt?: string;
  /** Empty: the model the thread last used. */
  model?: string;
  timeoutMs?: number;
  callbackUrl?: string;
  labels?: Record<string, string>;
  requestId?: string;
}

export const DEFAULT_NUDGE_PROMPT =
  "Continue with the task where you left off. If it is already done, say so and summarize the result.";

const DEFAULT_PAGE_SIZE = 50;
const MAX_PAGE_SIZE = 200;
const DEFAULT_TAIL = 200;
const MAX_TAIL = 2000;
const TITLE_MAX = 200;
/** Job pages read to find the threads agentgate ran (500 jobs each; retention keeps this small). */
const MAX_JOB_PAGES = 40;

export class SessionCatalog {
  private readonly reader: CodexSessionReader;
  private readonly jobs: JobManager;
  private readonly codexHome?: string;

  constructor(o: { reader: CodexSessionReader; jobs: JobManager; codexHome?: string }) {
    this.reader = o.reader;
    this.jobs = o.jobs;
    this.codexHome = o.codexHome;
  }

  async list(o: ListSessionsOptions = {}): Promise<{ sessions: SessionSummary[]; nextPageToken: string }> {
    const size = pageSizeOf(o.pageSize);
    const filter = filterKey(o);
    const after = o.pageToken ? decodeToken(o.pageToken, filter) : undefined;

    const [files, byThread] = await Promise.all([
      this.reader.list({ limit: Number.MAX_SAFE_INTEGER }),
      this.jobThreads(),
    ]);
    const merged = new Map<string, SessionSummary>();
    for (const f of files) merged.set(f.id, await this.fromFile(f, byThread.get(f.id) ?? []));
    for (const [id, jobs] of byThread) if (!merged.has(id)) merged.set(id, fromJobs(id, jobs));

    const since = o.updatedAfter?.getTime();
    const all = [...merged.values()]
      .filter((s) => since === undefined || s.updatedAt.getTime() >= since)
      .filter((s) => !o.source || s.source === o.source)
      .sort(byUpdatedDesc)
      .filter((s) => !after || isAfter(s, after));
    const sessions = all.slice(0, size);
    const last = sessions.at(-1);
    const nextPageToken = all.length > size && last ? encodeToken(last, filter) : "";
    return { sessions, nextPageToken };
  }

  async get(id: string, o: GetSessionOptions = {}): Promise<SessionDetail> {
    if (!id) throw invalidArgument("session_id is required", "session_id");
    const tailMessages = tailOf(o.tailMessages, "tail_messages");
    const tailEvents = tailOf(o.tailEvents, "tail_events");
    const jobs = await this.threadJobs(id);
    const file = await this.reader.get(id, { includeEvents: o.includeEvents, tailEvents });
    if (file) {
      const summary = await this.fromFile(file, jobs);
      const messages = conversation(file).map((m) => ({ role: m.role, text: m.text, time: m.time }));
      return {
        ...summary,
        messages: tail(messages, tailMessages),
        events: o.includeEvents ? file.events : [],
      };
    }
    if (jobs.length === 0) throw notFound(id);
    return {
      ...fromJobs(jobs[0].threadId, jobs),
      messages: tail(jobMessages(jobs), tailMessages),
      events: o.includeEvents ? tail(jobEvents(jobs), tailEvents) : [],
    };
  }

  /**
   * The thread a resume of `id` continues, in the spelling Codex knows it by, and the model the
   * thread last used ("" when none is recorded). not_found when neither a rollout file nor a job
   * knows the thread.
   */
  async resumeTarget(id: string): Promise<{ threadId: string; model: string }> {
    if (!id) throw invalidArgument("session_id is required", "session_id");
    const jobs = await this.threadJobs(id);
    let model = "";
    let threadId = id;
    if (jobs.length) {
      threadId = jobs[0].threadId;
      model = [...jobs].reverse().find((j) => j.spec.model)?.spec.model ?? "";
    }
    const file = await this.reader.get(id, { tailMessages: 0 });
    if (file) {
      threadId = file.id;
      model ||= file.model;
    }
    if (!file && jobs.length === 0) throw notFound(id);
    return { threadId, model };
  }

  /** Submits a job that continues the thread (`codex exec resume <thread> <prompt>`). */
  async resume(id: string, o: ResumeSessionOptions = {}): Promise<JobRecord> {
    const { threadId, model } = await this.resumeTarget(id);
    return this.jobs.submit(
      {
        prompt: o.prompt?.trim() ? o.prompt : DEFAULT_NUDGE_PROMPT,
        resumeThreadId: threadId,
        model: o.model || model || undefined,
        timeoutMs: o.timeoutMs || undefined,
        callbackUrl: o.callbackUrl || undefined,
        labels: o.labels && Object.keys(o.labels).length ? o.labels : undefined,
      },
      { requestId: o.requestId || undefined },
    );
  }

  // --- sources ---

  /** Jobs of one thread, oldest first (ids are matched as given and lower-cased). */
  private async threadJobs(id: string): Promise<JobRecord[]> {
    const jobs = await this.jobs.jobsOfThread(id);
    if (jobs.length || id === id.toLowerCase()) return jobs;
    return this.jobs.jobsOfThread(id.toLowerCase());
  }

  /** Every thread agentgate's job records name, with its jobs oldest first (without captured output). */
  private async jobThreads(): Promise<Map<string, JobRecord[]>> {
    const byThread = new Map<string, JobRecord[]>();
    let pageToken = "";
    for (let page = 0; page < MAX_JOB_PAGES; page++) {
      const r = await this.jobs.list({ pageSize: 500, pageToken });
      for (const j of r.jobs) {
        if (!j.threadId) continue;
        const key = j.threadId.toLowerCase();
        const group = byThread.get(key);
        if (group) group.push(j);
        else byThread.set(key, [j]);
      }
      if (!r.nextPageToken) break;
      pageToken = r.nextPageToken;
    }
    for (const group of byThread.values()) group.sort(byCreated);
    return byThread;
  }

  private async fromFile(f: CodexSessionSummary, jobs: JobRecord[]): Promise<SessionSummary> {
    return {
      id: f.id,
      source: jobs.length && !jobs[0].spec.resumeThreadId ? "agentgate_job" : "codex_session_file",
      title: shorten(f.title),
      model: f.model,
      cwd: f.cwd,
      createdAt: f.createdAt,
      // A job that ended after the file's last line (a failed resume, say) still counts as a change.
      updatedAt: new Date(Math.max(f.updatedAt.getTime(), ...jobs.map((j) => j.updatedAt.getTime()))),
      rolloutFile: await this.relativeToHome(f.rolloutFile),
      jobIds: jobs.map((j) => j.id),
      lastAgentMessage: f.lastAgentMessage,
      ...(f.usage ? { usage: f.usage } : {}),
      messageCount: f.messageCount,
      ...(jobs.length ? { lastJobStatus: jobs.at(-1)!.status } : {}),
    };
  }

  private async relativeToHome(file: string): Promise<string> {
    if (!this.codexHome || !file) return file;
    const home = path.resolve(this.codexHome);
    const inside = (base: string) => {
      const rel = path.relative(base, file);
      return rel && !rel.startsWith("..") && !path.isAbsolute(rel) ? rel : undefined;
    };
    const direct = inside(home);
    if (direct) return direct;
    try {
      return inside(await realpath(home)) ?? file;
    } catch {
      return file;
    }
  }
}

// --- sessions built from job records ---

function fromJobs(id: string, jobs: JobRecord[]): SessionSummary {
  const first = jobs[0];
  const usage = jobs.reduce<JobUsage | undefined>((sum, j) => (j.usage ? addUsage(sum, j.usage) : sum), undefined);
  return {
    id,
    source: "agentgate_job",
    title: shorten(promptOf(first)),
    model: [...jobs].reverse().find((j) => j.spec.model)?.spec.model ?? "",
    cwd: "",
    createdAt: first.createdAt,
    updatedAt: new Date(Math.max(...jobs.map((j) => j.updatedAt.getTime()))),
    rolloutFile: "",
    jobIds: jobs.map((j) => j.id),
    lastAgentMessage: [...jobs].reverse().find((j) => j.finalMessage)?.finalMessage ?? "",
    ...(usage ? { usage } : {}),
    messageCount: jobMessages(jobs).length,
    lastJobStatus: jobs.at(-1)!.status,
  };
}

function promptOf(j: JobRecord): string {
  return j.spec.prompt?.trim() ? j.spec.prompt : (j.spec.operatorRequest ?? "");
}

function jobMessages(jobs: JobRecord[]): SessionMessage[] {
  const out: SessionMessage[] = [];
  for (const j of jobs) {
    const prompt = promptOf(j);
    if (prompt) out.push({ role: "user", text: prompt, time: j.createdAt, jobId: j.id });
    if (j.finalMessage)
      out.push({ role: "assistant", text: j.finalMessage, time: j.completedAt ?? j.updatedAt, jobId: j.id });
  }
  return out;
}

/** The `codex exec --json` events of each job, read back from its captured stdout. */
function jobEvents(jobs: JobRecord[]): SessionEvent[] {
  const out: SessionEvent[] = [];
  for (const j of jobs) {
    for (const line of j.stdout.split("\n")) {
      if (!line.startsWith("{")) continue;
      let v: unknown;
      try {
        v = JSON.parse(line);
      } catch {
        continue;
      }
      if (
        typeof v === "object" &&
        v !== null &&
        !Array.isArray(v) &&
        typeof (v as { type?: unknown }).type === "string"
      )
        out.push({
          time: j.completedAt ?? j.updatedAt,
          type: (v as { type: string }).type,
          payload: v as Record<string, unknown>,
        });
    }
  }
  return out;
}

function addUsage(a: JobUsage | undefined, b: JobUsage): JobUsage {
  if (!a) return { ...b };
  return {
    inputTokens: a.inputTokens + b.inputTokens,
    cachedInputTokens: a.cachedInputTokens + b.cachedInputTokens,
    cacheWriteInputTokens: a.cacheWriteInputTokens + b.cacheWriteInputTokens,
    outputTokens: a.outputTokens + b.outputTokens,
    reasoningOutputTokens: a.reasoningOutputTokens + b.reasoningOutputTokens,
  };
}

// --- helpers ---

/** The user and assistant messages of a rollout (Codex's own developer/system instructions left out). */
function conversation(d: CodexSessionDetail) {
  return d.messages.filter((m) => m.role === "user" || m.role === "assistant");
}

function shorten(text: string): string {
  const line = text.trim().split("\n", 1)[0]?.trim() ?? "";
  const chars = [...line];
  return chars.length <= TITLE_MAX ? line : `${chars.slice(0, TITLE_MAX - 1).join("")}…`;
}

function pageSizeOf(n: number | undefined): number {
  if (!n) return DEFAULT_PAGE_SIZE;
  if (n > MAX_PAGE_SIZE) throw invalidArgument(`page_size must be at most ${MAX_PAGE_SIZE}`, "page_size");
  return Math.floor(n);
}

function tailOf(n: number | undefined, param: string): number {
  if (!n) return DEFAULT_TAIL;
  if (n > MAX_TAIL) throw invalidArgument(`${param} must be at most ${MAX_TAIL}`, param);
  return Math.floor(n);
}

function tail<T>(items: T[], n: number): T[] {
  return items.length <= n ? items : items.slice(-n);
}

function notFound(id: string): GatewayError {
  return new GatewayError("not_found", `session ${id} not found`, { param: "session_id", code: "session_not_found" });
}

const byCreated = (a: JobRecord, b: JobRecord) =>
  a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Most recently updated first; ties by id, so the order (and paging) is total. */
const byUpdatedDesc = (a: SessionSummary, b: SessionSummary) =>
  b.updatedAt.getTime() - a.updatedAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

interface Cursor {
  updatedAt: number;
  id: string;
}

const isAfter = (s: SessionSummary, c: Cursor) =>
  s.updatedAt.getTime() < c.updatedAt || (s.updatedAt.getTime() === c.updatedAt && s.id > c.id);

/** The filter a page token belongs to: a token used with other filters is refused. */
function filterKey(o: ListSessionsOptions): string {
  return `${o.source ?? ""}|${o.updatedAfter?.getTime() ?? ""}`;
}

/** Keyset token: (updated_at, id) of the page's last session, plus its filter. */
function encodeToken(s: SessionSummary, filter: string): string {
  return Buffer.from(JSON.stringify([s.updatedAt.getTime(), s.id, filter])).toString("base64url");
}

function decodeToken(token: string, filter: string): Cursor {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(token, "base64url").toString("utf8"));
  } catch {
    v = undefined;
  }
  if (!Array.isArray(v) || typeof v[0] !== "number" || typeof v[1] !== "string" || typeof v[2] !== "string")
    throw invalidArgument("page_token is not a token this server issued", "page_token");
  if (v[2] !== filter) throw invalidArgument("page_token belongs to a request with other filters", "page_token");
  return { updatedAt: v[0], id: v[1] };
}
