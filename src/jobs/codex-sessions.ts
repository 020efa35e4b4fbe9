/**
 * Reads the Codex CLI's own session files ("rollouts") so JobService can list and show Codex threads,
 * including ones agentgate never started.
 *
 * Layout (Codex 0.169.0, measured): `<CODEX_HOME>/sessions/YYYY/MM/DD/rollout-<ts>-<thread-uuid>.jsonl`,
 * one JSON object a line: `{timestamp, ordinal, type, payload}`. Types seen: `session_meta` (id, cwd,
 * timestamp, base_instructions ...), `turn_context` (model, cwd), `world_state`, `response_item`
 * (payload.type `message` with role developer/user/assistant, `function_call`, `function_call_output`,
 * `reasoning` ...), `event_msg` (payload.type task_started, item_completed, token_count, task_complete
 * ...), `token_usage_record`, `compacted`. `codex exec resume` appends to the same file; should an older
 * or future version write a second file for a thread, the files are merged by time.
 *
 * The conversation is taken from `response_item` messages (the model's history), not from the
 * `event_msg` mirrors, whose names change between versions. Codex also injects user-role messages
 * (`<environment_context>`, AGENTS.md): those are recognised by their provenance metadata (or, in
 * files without it, by their well-known prefixes) and are left out of titles, messages and counts.
 */
import { constants as fsConstants, type Dirent } from "node:fs";
import { lstat, open, readdir, realpath, type FileHandle } from "node:fs/promises";
import path from "node:path";

export interface CodexSessionUsage {
  inputTokens: number;
  cachedInputTokens: number;
  cacheWriteInputTokens: number;
  outputTokens: number;
  reasoningOutputTokens: number;
}

export interface CodexSessionSummary {
  /** The Codex thread id (a UUID). */
  id: string;
  /** First line of the first user prompt, at most 120 characters; "" when there is none yet. */
  title: string;
  /** The model of the last turn. */
  model: string;
  cwd: string;
  createdAt: Date;
  /** The last line's timestamp, else the file's mtime. */
  updatedAt: Date;
  /** Absolute path of the rollout file (the newest one, should a thread have several). */
  rolloutFile: string;
  lastAgentMessage: string;
  /** The thread's cumulative usage (the last token_count's total). */
  usage?: CodexSessionUsage;
  /** User prompts plus assistant messages. */
  messageCount: number;
}

export type CodexSessionRole = "user" | "assistant" | "system" | "developer";

export interface CodexSessionMessage {
  role: CodexSessionRole;
  text: string;
  time?: Date;
}

export interface CodexSessionEvent {
  time?: Date;
  /** The rollout line's type: "response_item", "event_msg", "session_meta" ... */
  type: string;
  payload: Record<string, unknown>;
}

export interface CodexSessionDetail extends CodexSessionSummary {
  /** Oldest first; developer/system messages are Codex's own instructions. */
  messages: CodexSessionMessage[];
  /** Raw rollout lines, oldest first; empty unless includeEvents. */
  events: CodexSessionEvent[];
}

export interface CodexSessionListOptions {
  limit: number;
  /** Only sessions updated at or after this time. */
  updatedAfter?: Date;
}

export interface CodexSessionGetOptions {
  /** Last N messages; undefined for all. */
  tailMessages?: number;
  includeEvents?: boolean;
  /** Last N events; undefined for all. */
  tailEvents?: number;
}

const UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}";
const UUID_RE = new RegExp(`^${UUID}$`);
const ROLLOUT_NAME_RE = new RegExp(`^rollout-.+-(${UUID})\\.jsonl$`);
const YEAR_RE = /^\d{4}$/;
const MONTH_OR_DAY_RE = /^\d{2}$/;

/** Beyond this only the head (for the session's metadata and title) and the tail are read. */
export const MAX_ROLLOUT_READ_BYTES = 64 * 1024 * 1024;
const HEAD_BYTES = 1024 * 1024;
const TITLE_MAX = 120;
const PARSE_CONCURRENCY = 8;

/** Prefixes of the user-role messages Codex injects, for rollouts without provenance metadata. */
const INJECTED_USER_PREFIXES = [
  "<environment_context>",
  "<user_instructions>",
  "# AGENTS.md instructions",
  "<INSTRUCTIONS>",
  "<turn_aborted>",
  "<user_shell_command>",
  "<subagent_notification>",
  "<skill>",
];

interface RolloutFile {
  path: string;
  id: string;
  size: number;
  mtimeMs: number;
}

interface Line {
  time?: Date;
  type: string;
  payload: Record<string, unknown>;
}

interface ReadRollout {
  /** The file's lines (only its tail when it is larger than the cap). */
  lines: Line[];
  /** Complete lines of the head when only the tail is in `lines`; used for metadata and the title. */
  head: Line[];
}

export class CodexSessionReader {
  private readonly sessionsDir: string;
  private readonly summaries = new Map<string, { size: number; mtimeMs: number; summary: CodexSessionSummary }>();

  constructor(codexHome: string) {
    this.sessionsDir = path.join(path.resolve(codexHome), "sessions");
  }

  async list(opts: CodexSessionListOptions): Promise<CodexSessionSummary[]> {
    const limit = Math.max(0, Math.floor(opts.limit));
    const files = await this.scan();
    // Entries of deleted or rewritten files would otherwise pile up in a long-running process.
    const present = new Set(files.map((f) => f.path));
    for (const key of this.summaries.keys()) if (!present.has(key)) this.summaries.delete(key);

    const parsed = await mapLimit(files, PARSE_CONCURRENCY, (f) => this.summaryOf(f));
    const byId = new Map<string, CodexSessionSummary[]>();
    for (const s of parsed) {
      if (!s) continue;
      const group = byId.get(s.id);
      if (group) group.push(s);
      else byId.set(s.id, [s]);
    }
    const after = opts.updatedAfter?.getTime();
    return [...byId.values()]
      .map((group) => (group.length === 1 ? group[0] : mergeSummaries(group)))
      .filter((s) => after === undefined || s.updatedAt.getTime() >= after)
      .sort((a, b) => b.updatedAt.getTime() - a.updatedAt.getTime() || (a.id < b.id ? -1 : 1))
      .slice(0, limit);
  }

  async get(id: string, opts: CodexSessionGetOptions = {}): Promise<CodexSessionDetail | undefined> {
    const files = await this.findRollouts(id);
    if (files.length === 0) return undefined;
    const reads: { file: RolloutFile; read: ReadRollout }[] = [];
    for (const file of files) {
      const read = await readRollout(file.path);
      if (read) reads.push({ file, read });
    }
    if (reads.length === 0) return undefined;
    // One file is the normal case; several are ordered by their first line, lines kept in file order.
    reads.sort((a, b) => firstTime(a.read) - firstTime(b.read));
    const lines = reads.flatMap((r) => r.read.lines);
    const head = reads[0].read.head;
    const newest = reads.reduce((a, b) => (b.file.mtimeMs > a.file.mtimeMs ? b : a)).file;
    const { summary, messages } = summarize(id.toLowerCase(), newest, lines, head, true);
    const events: CodexSessionEvent[] = opts.includeEvents
      ? tail(lines, opts.tailEvents).map((l) => ({ time: l.time, type: l.type, payload: l.payload }))
      : [];
    return { ...summary, messages: tail(messages, opts.tailMessages), events };
  }

  async findRollout(id: string): Promise<string | undefined> {
    const files = await this.findRollouts(id);
    if (files.length === 0) return undefined;
    return files.reduce((a, b) => (b.mtimeMs > a.mtimeMs ? b : a)).path;
  }

  /** All rollout files of a thread; nothing is touched unless the id is a UUID. */
  private async findRollouts(id: string): Promise<RolloutFile[]> {
    if (typeof id !== "string" || !UUID_RE.test(id)) return [];
    const wanted = id.toLowerCase();
    return (await this.scan()).filter((f) => f.id === wanted);
  }

  private async summaryOf(file: RolloutFile): Promise<CodexSessionSummary | undefined> {
    const cached = this.summaries.get(file.path);
    if (cached && cached.size === file.size && cached.mtimeMs === file.mtimeMs) return cached.summary;
    const read = await readRollout(file.path);
    if (!read) return undefined;
    const { summary } = summarize(file.id, file, read.lines, read.head, false);
    this.summaries.set(file.path, { size: file.size, mtimeMs: file.mtimeMs, summary });
    return summary;
  }

  /**
   * Every `sessions/YYYY/MM/DD/rollout-*-<uuid>.jsonl` regular file. Symlinked entries are skipped
   * (readdir's Dirent does not follow them), so nothing outside the sessions tree is ever opened.
   * The sessions directory itself may be a symlink: that is the user's own set-up.
   */
  private async scan(): Promise<RolloutFile[]> {
    let root: string;
    try {
      root = await realpath(this.sessionsDir);
    } catch {
      return [];
    }
    const out: RolloutFile[] = [];
    for (const year of await subdirs(root, YEAR_RE)) {
      for (const month of await subdirs(year, MONTH_OR_DAY_RE)) {
        for (const day of await subdirs(month, MONTH_OR_DAY_RE)) {
          for (const entry of await entries(day)) {
            const m = entry.isFile() ? ROLLOUT_NAME_RE.exec(entry.name) : null;
            if (!m) continue;
            const p = path.join(day, entry.name);
            try {
              const st = await lstat(p);
              if (st.isFile()) out.push({ path: p, id: m[1].toLowerCase(), size: st.size, mtimeMs: st.mtimeMs });
            } catch {
              // removed meanwhile
            }
          }
        }
      }
    }
    return out;
  }
}

async function entries(dir: string): Promise<Dirent[]> {
  try {
    return await readdir(dir, { withFileTypes: true });
  } catch {
    return [];
  }
}

async function subdirs(dir: string, name: RegExp): Promise<string[]> {
  return (await entries(dir))
    .filter((e) => e.isDirectory() && name.test(e.name))
    .map((e) => path.join(dir, e.name))
    .sort();
}

/**
 * Reads a rollout without following a symlink swapped in after the scan (O_NOFOLLOW) and without
 * hanging on a FIFO (O_NONBLOCK). Undefined when it cannot be read.
 */
async function readRollout(file: string): Promise<ReadRollout | undefined> {
  let fh: FileHandle;
  try {
    fh = await open(file, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch {
    return undefined;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) return undefined;
    if (st.size <= MAX_ROLLOUT_READ_BYTES) {
      return { lines: parseLines(await readAt(fh, 0, st.size), false), head: [] };
    }
    // Too big to read whole: the head still names the session; the tail holds the latest state.
    const headText = await readAt(fh, 0, HEAD_BYTES);
    const tailText = await readAt(fh, st.size - MAX_ROLLOUT_READ_BYTES, MAX_ROLLOUT_READ_BYTES);
    return {
      head: parseLines(headText.slice(0, headText.lastIndexOf("\n") + 1), false),
      lines: parseLines(tailText, true),
    };
  } catch {
    return undefined;
  } finally {
    await fh.close().catch(() => undefined);
  }
}

async function readAt(fh: FileHandle, position: number, length: number): Promise<string> {
  const buf = Buffer.allocUnsafe(length);
  let got = 0;
  while (got < length) {
    const { bytesRead } = await fh.read(buf, got, length - got, position + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.toString("utf8", 0, got);
}

/** One Line per well-formed JSON line; anything else (a torn last line, garbage) is skipped. */
function parseLines(text: string, dropFirst: boolean): Line[] {
  const raw = text.split("\n");
  if (dropFirst) raw.shift(); // starts mid-line
  const out: Line[] = [];
  for (const s of raw) {
    if (s.length < 2) continue;
    let v: unknown;
    try {
      v = JSON.parse(s);
    } catch {
      continue;
    }
    if (!isRecord(v) || typeof v.type !== "string") continue;
    out.push({ time: toDate(v.timestamp), type: v.type, payload: isRecord(v.payload) ? v.payload : {} });
  }
  return out;
}

function summarize(
  id: string,
  file: RolloutFile,
  lines: Line[],
  head: Line[],
  withMessages: boolean,
): { summary: CodexSessionSummary; messages: CodexSessionMessage[] } {
  let meta: Record<string, unknown> | undefined;
  let model = "";
  let turnCwd = "";
  let title: string | undefined;
  let lastAgentMessage = "";
  let usage: CodexSessionUsage | undefined;
  let messageCount = 0;
  let first: Date | undefined;
  let last: Date | undefined;
  const messages: CodexSessionMessage[] = [];

  for (const l of head) {
    if (l.type === "session_meta") meta ??= l.payload;
    else if (l.type === "turn_context") {
      if (typeof l.payload.model === "string") model = l.payload.model;
      if (typeof l.payload.cwd === "string") turnCwd = l.payload.cwd;
    } else if (title === undefined && l.type === "response_item") {
      const m = toMessage(l);
      if (m?.role === "user") title = titleOf(m.text);
    }
  }
  for (const l of lines) {
    if (l.time) {
      if (!first || l.time < first) first = l.time;
      if (!last || l.time > last) last = l.time;
    }
    const p = l.payload;
    switch (l.type) {
      case "session_meta":
        meta ??= p;
        break;
      case "turn_context":
        if (typeof p.model === "string") model = p.model;
        if (typeof p.cwd === "string") turnCwd = p.cwd;
        break;
      case "response_item": {
        const m = toMessage(l);
        if (!m) break;
        if (m.role === "user" || m.role === "assistant") messageCount++;
        if (m.role === "user") title ??= titleOf(m.text);
        if (m.role === "assistant") lastAgentMessage = m.text;
        if (withMessages) messages.push(m);
        break;
      }
      case "event_msg":
        if (p.type === "task_complete" && typeof p.last_agent_message === "string") {
          lastAgentMessage = p.last_agent_message;
        } else if (p.type === "token_count" && isRecord(p.info)) {
          usage = toUsage(p.info.total_token_usage) ?? usage;
        }
        break;
    }
  }
  const mtime = new Date(file.mtimeMs);
  return {
    summary: {
      id,
      title: title ?? "",
      model: model || str(meta?.model),
      cwd: str(meta?.cwd) || turnCwd,
      createdAt: toDate(meta?.timestamp) ?? first ?? mtime,
      updatedAt: last ?? mtime,
      rolloutFile: file.path,
      lastAgentMessage,
      ...(usage ? { usage } : {}),
      messageCount,
    },
    messages,
  };
}

/** A `response_item` message as shown to people; undefined for other items and injected context. */
function toMessage(l: Line): CodexSessionMessage | undefined {
  const p = l.payload;
  if (p.type !== "message" || !Array.isArray(p.content)) return undefined;
  const role = p.role;
  if (role !== "user" && role !== "assistant" && role !== "system" && role !== "developer") return undefined;
  let content = p.content as unknown[];
  if (role === "user") {
    // Codex 0.169 tags each content item with its provenance: "user" for what was typed, "harness"
    // or "skills" for what Codex added. Older rollouts lack it; there the prefixes tell.
    const passthrough = p.internal_chat_message_metadata_passthrough;
    const meta = isRecord(passthrough) ? passthrough.content_item_metadata : undefined;
    if (Array.isArray(meta) && meta.length === content.length) {
      content = content.filter((_, i) => {
        const item = meta[i];
        const prov = isRecord(item) && isRecord(item.provenance) ? item.provenance.type : undefined;
        return prov === undefined || prov === "user";
      });
    }
  }
  const text = content
    .map((c) => (isRecord(c) && typeof c.text === "string" ? c.text : ""))
    .filter((t) => t.length > 0)
    .join("\n");
  if (!text) return undefined;
  if (role === "user" && INJECTED_USER_PREFIXES.some((prefix) => text.trimStart().startsWith(prefix))) return undefined;
  return { role, text, time: l.time };
}

function titleOf(text: string): string {
  const line = text.trim().split("\n", 1)[0].trim();
  const chars = [...line]; // code points, so a surrogate pair is never cut
  return chars.length <= TITLE_MAX ? line : `${chars.slice(0, TITLE_MAX - 1).join("")}…`;
}

function toUsage(v: unknown): CodexSessionUsage | undefined {
  if (!isRecord(v)) return undefined;
  const n = (k: string) => (typeof v[k] === "number" && Number.isFinite(v[k]) ? (v[k] as number) : 0);
  return {
    inputTokens: n("input_tokens"),
    cachedInputTokens: n("cached_input_tokens"),
    cacheWriteInputTokens: n("cache_write_input_tokens"),
    outputTokens: n("output_tokens"),
    reasoningOutputTokens: n("reasoning_output_tokens"),
  };
}

/** Several files of one thread: identity from the oldest, state from the newest, counts added up. */
function mergeSummaries(group: CodexSessionSummary[]): CodexSessionSummary {
  const byCreated = [...group].sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime());
  const oldest = byCreated[0];
  const newest = byCreated.reduce((a, b) => (b.updatedAt > a.updatedAt ? b : a));
  return {
    ...newest,
    title: byCreated.find((s) => s.title)?.title ?? "",
    cwd: oldest.cwd || newest.cwd,
    createdAt: oldest.createdAt,
    lastAgentMessage:
      newest.lastAgentMessage || [...byCreated].reverse().find((s) => s.lastAgentMessage)?.lastAgentMessage || "",
    messageCount: group.reduce((n, s) => n + s.messageCount, 0),
  };
}

function firstTime(r: ReadRollout): number {
  return (r.head[0]?.time ?? r.lines.find((l) => l.time)?.time)?.getTime() ?? 0;
}

function tail<T>(items: T[], n: number | undefined): T[] {
  if (n === undefined) return items;
  const k = Math.max(0, Math.floor(n));
  return k === 0 ? [] : items.slice(-k);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function str(v: unknown): string {
  return typeof v === "string" ? v : "";
}

function toDate(v: unknown): Date | undefined {
  if (typeof v !== "string") return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
