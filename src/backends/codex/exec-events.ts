/**
 * The JSONL event stream of `codex exec --json` (Codex 0.169.0; openai/codex
 * `codex-rs/exec/src/exec_events.rs`), and a reader that turns stdout chunks into typed events.
 *
 * The reader is deliberately forgiving: lines arrive split across chunks, and anything that is not a
 * JSON object with a known `type` and the fields we rely on (log noise, a truncated line, an event a
 * newer Codex added) is skipped rather than failing the turn.
 */
import { StringDecoder } from "node:string_decoder";

/** Token counts of `turn.completed`: totals for the whole thread, not for the turn. */
export interface ExecUsage {
  input_tokens: number;
  cached_input_tokens: number;
  cache_write_input_tokens: number;
  output_tokens: number;
  reasoning_output_tokens: number;
}

export type ExecItem =
  | { id: string; type: "agent_message"; text: string }
  | { id: string; type: "reasoning"; text: string }
  | {
      id: string;
      type: "command_execution";
      command: string;
      aggregated_output: string;
      exit_code: number | null;
      status: string;
    }
  | { id: string; type: "file_change"; changes: { path: string; kind: string }[]; status: string }
  | { id: string; type: "mcp_tool_call"; server: string; tool: string; status: string }
  | { id: string; type: "web_search"; query: string }
  | { id: string; type: "todo_list"; items: { text: string; completed: boolean }[] }
  | { id: string; type: "error"; message: string }
  /** An item type this version does not know; carried along, never interpreted. */
  | { id: string; type: "other"; originalType: string };

export type ExecEvent =
  | { type: "thread.started"; thread_id: string }
  | { type: "turn.started" }
  | { type: "item.started" | "item.updated" | "item.completed"; item: ExecItem }
  | { type: "turn.completed"; usage: ExecUsage }
  | { type: "turn.failed"; error: { message: string } }
  /** Fatal or not: Codex also reports "Reconnecting... 1/5" this way, so only turn.failed ends a turn. */
  | { type: "error"; message: string };

/** Lines longer than this (a runaway command output) are dropped rather than buffered without bound. */
const MAX_LINE_CHARS = 32 * 1024 * 1024;

/** Parses a byte stream of JSONL into the objects on its lines, skipping lines that are not JSON. */
export async function* readJsonLines(chunks: AsyncIterable<Buffer | string>): AsyncIterable<unknown> {
  const decoder = new StringDecoder("utf8");
  let pending = "";
  let skipping = false;
  for await (const chunk of chunks) {
    pending += typeof chunk === "string" ? chunk : decoder.write(chunk);
    let start = 0;
    for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n", start)) {
      const line = pending.slice(start, nl);
      start = nl + 1;
      if (skipping) skipping = false;
      else {
        const value = parseLine(line);
        if (value !== undefined) yield value;
      }
    }
    pending = pending.slice(start);
    if (pending.length > MAX_LINE_CHARS) {
      pending = "";
      skipping = true;
    }
  }
  pending += decoder.end();
  if (!skipping) {
    const value = parseLine(pending);
    if (value !== undefined) yield value;
  }
}

function parseLine(line: string): unknown {
  const trimmed = line.trim();
  if (!trimmed.startsWith("{")) return undefined;
  try {
    return JSON.parse(trimmed) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * Typed events from stdout chunks; unknown or malformed events are skipped. `onJsonLine` sees every
 * JSON value first, typed or not (jobs keep the raw event).
 */
export async function* readExecEvents(
  chunks: AsyncIterable<Buffer | string>,
  onJsonLine?: (value: unknown) => void,
): AsyncIterable<ExecEvent> {
  for await (const value of readJsonLines(chunks)) {
    onJsonLine?.(value);
    const event = toExecEvent(value);
    if (event) yield event;
  }
}

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === "object" && v !== null && !Array.isArray(v);
const str = (v: unknown): string => (typeof v === "string" ? v : "");
const num = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) && v >= 0 ? v : 0);

export function toExecEvent(value: unknown): ExecEvent | undefined {
  if (!isObject(value) || typeof value.type !== "string") return undefined;
  switch (value.type) {
    case "thread.started":
      return typeof value.thread_id === "string" && value.thread_id
        ? { type: "thread.started", thread_id: value.thread_id }
        : undefined;
    case "turn.started":
      return { type: "turn.started" };
    case "item.started":
    case "item.updated":
    case "item.completed": {
      const item = toItem(value.item);
      return item ? { type: value.type, item } : undefined;
    }
    case "turn.completed": {
      const u = isObject(value.usage) ? value.usage : {};
      return {
        type: "turn.completed",
        usage: {
          input_tokens: num(u.input_tokens),
          cached_input_tokens: num(u.cached_input_tokens),
          cache_write_input_tokens: num(u.cache_write_input_tokens),
          output_tokens: num(u.output_tokens),
          reasoning_output_tokens: num(u.reasoning_output_tokens),
        },
      };
    }
    case "turn.failed": {
      const message = isObject(value.error) ? str(value.error.message) : "";
      return { type: "turn.failed", error: { message: message || "the Codex turn failed" } };
    }
    case "error":
      return { type: "error", message: str(value.message) };
    default:
      return undefined;
  }
}

function toItem(v: unknown): ExecItem | undefined {
  if (!isObject(v) || typeof v.type !== "string") return undefined;
  const id = str(v.id);
  switch (v.type) {
    case "agent_message":
    case "reasoning":
      return { id, type: v.type, text: str(v.text) };
    case "command_execution":
      return {
        id,
        type: "command_execution",
        command: str(v.command),
        aggregated_output: str(v.aggregated_output),
        exit_code: typeof v.exit_code === "number" ? v.exit_code : null,
        status: str(v.status),
      };
    case "file_change":
      return {
        id,
        type: "file_change",
        changes: Array.isArray(v.changes)
          ? v.changes.filter(isObject).map((c) => ({ path: str(c.path), kind: str(c.kind) }))
          : [],
        status: str(v.status),
      };
    case "mcp_tool_call":
      return { id, type: "mcp_tool_call", server: str(v.server), tool: str(v.tool), status: str(v.status) };
    case "web_search":
      return { id, type: "web_search", query: str(v.query) };
    case "todo_list":
      return {
        id,
        type: "todo_list",
        items: Array.isArray(v.items)
          ? v.items.filter(isObject).map((i) => ({ text: str(i.text), completed: i.completed === true }))
          : [],
      };
    case "error":
      return { id, type: "error", message: str(v.message) };
    default:
      return { id, type: "other", originalType: v.type };
  }
}
