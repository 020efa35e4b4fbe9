/**
 * Machinery shared by the upstream test doubles (Ollama, OpenAI-compatible): a loopback HTTP server
 * that can refuse connections and come back on the same port, request recording, client-abort
 * detection, a FIFO of reply scripts, and a player that turns a script into timed frames.
 */
import { createHash } from "node:crypto";
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from "node:http";
import type { AddressInfo, Socket } from "node:net";

export interface RecordedRequest {
  method: string;
  /** Path without the query string. */
  path: string;
  headers: IncomingHttpHeaders;
  /** Parsed JSON body; the raw text when it is not JSON; undefined when empty. */
  body: unknown;
  /** Date.now() when the request head arrived. */
  receivedAt: number;
}

export interface ScriptToolCall {
  name: string;
  /**
   * An object, as Ollama sends it (the OpenAI double serialises and fragments it). A string models a
   * model that wrote malformed arguments: sent as is.
   */
  arguments: Record<string, unknown> | string;
  /** Defaults to a deterministic `call_xxxxxxxx`. */
  id?: string;
}

/** `true` = before anything is sent (no status line either); `{afterChunks: n}` = after n frames. */
export type StopPoint = true | { afterChunks: number };

/** How the next chat/generate (or chat/completions) reply behaves. Every field is optional. */
export interface ReplyScript {
  /** Content chunks, one frame each. Defaults to the echo of the prompt unless `toolCalls` is set. */
  content?: string[];
  /** Reasoning chunks, sent before the content (dropped when the request says `think: false`). */
  thinking?: string[];
  /** Sent whole, in one frame after the content (Ollama), or as index-based fragments (OpenAI). */
  toolCalls?: ScriptToolCall[];
  doneReason?: "stop" | "length" | (string & {});
  promptEvalCount?: number;
  /** Defaults to the number of frames. */
  evalCount?: number;
  firstByteDelayMs?: number;
  /** Pause before every frame after the first, the final one included. */
  chunkDelayMs?: number;
  /** Answer with this status and the upstream's JSON error body instead of a reply. */
  httpError?: { status: number; message: string };
  /** An error frame after a 200 (or a 500 JSON error when nothing was sent yet / not streaming). */
  midStreamError?: { afterChunks: number; message: string };
  /** Destroy the socket abruptly. */
  destroy?: StopPoint;
  /** Never finish; ends only when the client goes away or the double closes. */
  hang?: StopPoint;
}

/** One request being answered. Responses are written through it so that aborts are classified. */
export class Exchange {
  body: unknown = undefined;
  /** Set when the body is not valid JSON. */
  bodyError: string | undefined;
  /** True when the double itself cut the connection (scripted destroy, down(), close()). */
  deliberate = false;
  private readonly controller = new AbortController();
  /** Settles when the last streamed frame has been handed to the kernel. */
  private flushed: Promise<void> = Promise.resolve();

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly record: RecordedRequest,
  ) {}

  /** Aborted as soon as the response can no longer be written (client gone or double closing). */
  get signal(): AbortSignal {
    return this.controller.signal;
  }

  setBody(raw: string): void {
    if (raw.length === 0) return;
    try {
      this.body = JSON.parse(raw);
    } catch (err) {
      this.body = raw;
      this.bodyError = (err as Error).message;
    }
    this.record.body = this.body;
  }

  json(status: number, body: unknown, contentType = "application/json; charset=utf-8"): void {
    if (this.res.headersSent || this.res.destroyed) return;
    const text = JSON.stringify(body);
    this.res.writeHead(status, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(text) });
    this.res.end(text);
  }

  text(status: number, text: string): void {
    if (this.res.headersSent || this.res.destroyed) return;
    this.res.writeHead(status, {
      "Content-Type": "text/plain; charset=utf-8",
      "Content-Length": Buffer.byteLength(text),
    });
    this.res.end(text);
  }

  /** Streams one frame; the first one sends a 200 with `contentType` (as Go's streaming handlers do). */
  write(contentType: string, data: string): void {
    if (this.res.destroyed) return;
    if (!this.res.headersSent) this.res.writeHead(200, { "Content-Type": contentType });
    this.flushed = new Promise((resolve) => this.res.write(data, () => resolve()));
  }

  end(contentType: string, data: string): void {
    if (this.res.destroyed) return;
    if (!this.res.headersSent) this.res.writeHead(200, { "Content-Type": contentType });
    this.res.end(data);
  }

  /** Resolves true after `ms`, or false as soon as the exchange is aborted. */
  sleep(ms: number): Promise<boolean> {
    const signal = this.signal;
    if (signal.aborted) return Promise.resolve(false);
    return new Promise((resolve) => {
      const onAbort = (): void => {
        clearTimeout(timer);
        resolve(false);
      };
      const timer = setTimeout(() => {
        signal.removeEventListener("abort", onAbort);
        resolve(true);
      }, ms);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  }

  hang(): Promise<void> {
    const signal = this.signal;
    return new Promise((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener("abort", () => resolve(), { once: true });
    });
  }

  /** Cuts the connection once the frames already written have reached the kernel. */
  async destroy(): Promise<void> {
    this.deliberate = true;
    await this.flushed;
    this.res.socket?.destroy();
  }

  /** Called once the response is closed, finished or not. */
  closed(): void {
    this.controller.abort();
  }
}

export interface DoubleServerOptions {
  /** Keep every request in `requests` (default true); turn off for long benches to bound memory. */
  record?: boolean;
}

/** Base class of the doubles: lifecycle, recording, aborts and the script queue. */
export abstract class DoubleServer {
  readonly requests: RecordedRequest[] = [];
  /** Requests whose client disconnected before the reply finished, in order. */
  readonly abortedRequests: RecordedRequest[] = [];
  private abortsConsumed = 0;
  private readonly abortWaiters = new Set<() => void>();
  private readonly queue: ReplyScript[] = [];
  private defaultScript: ReplyScript | undefined;
  private readonly server: Server;
  private readonly live = new Set<Exchange>();
  private readonly sockets = new Set<Socket>();
  private port = 0;
  private listening = false;
  private readonly recording: boolean;

  constructor(options: DoubleServerOptions = {}) {
    this.recording = options.record ?? true;
    this.server = createServer({ keepAliveTimeout: 5_000 }, (req, res) => this.onRequest(req, res));
    this.server.on("connection", (socket) => {
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    });
  }

  /** Route the request; write the reply through `ex`. */
  protected abstract handle(ex: Exchange): Promise<void> | void;

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get aborted(): number {
    return this.abortedRequests.length;
  }

  /** Script the next reply (FIFO). Only requests that pass validation consume a script. */
  enqueue(...scripts: ReplyScript[]): void {
    this.queue.push(...scripts);
  }

  /** Used when the queue is empty; `undefined` restores the echo. */
  setDefault(script: ReplyScript | undefined): void {
    this.defaultScript = script;
  }

  protected nextScript(): ReplyScript | undefined {
    return this.queue.shift() ?? this.defaultScript;
  }

  /**
   * Resolves with the next aborted request not yet returned by an earlier call (so an abort that
   * happened before the call is not missed); rejects after `timeoutMs`.
   */
  waitForAbort(timeoutMs = 1_000): Promise<RecordedRequest> {
    return new Promise((resolve, reject) => {
      const take = (): boolean => {
        if (this.abortedRequests.length <= this.abortsConsumed) return false;
        clearTimeout(timer);
        this.abortWaiters.delete(waiter);
        resolve(this.abortedRequests[this.abortsConsumed++]);
        return true;
      };
      const waiter = (): void => void take();
      const timer = setTimeout(() => {
        this.abortWaiters.delete(waiter);
        reject(new Error(`no client abort within ${timeoutMs} ms`));
      }, timeoutMs);
      if (!take()) this.abortWaiters.add(waiter);
    });
  }

  /** Forgets requests, aborts and scripts. */
  reset(): void {
    this.requests.length = 0;
    this.abortedRequests.length = 0;
    this.abortsConsumed = 0;
    this.queue.length = 0;
    this.defaultScript = undefined;
  }

  async listen(port = 0): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(port, "127.0.0.1", () => {
        this.server.off("error", reject);
        resolve();
      });
    });
    this.port = (this.server.address() as AddressInfo).port;
    this.listening = true;
  }

  /** Stops listening and drops every connection: clients now get ECONNREFUSED. */
  async down(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    for (const ex of this.live) ex.deliberate = true;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    for (const socket of this.sockets) socket.destroy();
    await closed;
  }

  /** Listens again on the same port. */
  async up(): Promise<void> {
    if (!this.listening) await this.listen(this.port);
  }

  async close(): Promise<void> {
    await this.down();
  }

  private onRequest(req: IncomingMessage, res: ServerResponse): void {
    const record: RecordedRequest = {
      method: req.method ?? "GET",
      path: (req.url ?? "/").split("?")[0],
      headers: req.headers,
      body: undefined,
      receivedAt: Date.now(),
    };
    if (this.recording) this.requests.push(record);
    const ex = new Exchange(req, res, record);
    this.live.add(ex);
    // 'close' before 'finish' means the connection went away mid-reply: a client abort unless we cut it.
    res.once("close", () => {
      this.live.delete(ex);
      if (!res.writableFinished && !ex.deliberate) {
        this.abortedRequests.push(record);
        for (const waiter of [...this.abortWaiters]) waiter();
      }
      ex.closed();
    });
    readBody(req)
      .then((raw) => {
        ex.setBody(raw);
        return this.handle(ex);
      })
      .catch((err: unknown) => {
        if (!res.headersSent) ex.json(500, { error: String(err) });
        else res.destroy();
      });
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    req.on("error", reject);
  });
}

/** What the player needs from an upstream dialect to run a script. */
export interface ReplyPlan {
  stream: boolean;
  contentType: string;
  /** Serialised frames before the end of the stream. */
  frames: string[];
  /** End of the stream (final NDJSON line, or finish chunk + usage + [DONE]); called when due. */
  tail(): string;
  /** The whole reply when not streaming; called when due. */
  body(): unknown;
  /** JSON error body, for `httpError` and errors before anything was sent. */
  errorBody(message: string, status: number): unknown;
  /** Error written into an already started stream. */
  errorFrame(message: string): string;
}

/** Plays `script` through `plan`: delays, frames, then exactly one of hang/destroy/error/tail. */
export async function play(ex: Exchange, script: ReplyScript, plan: ReplyPlan): Promise<void> {
  const firstDelay = script.firstByteDelayMs ?? 0;
  if (firstDelay > 0 && !(await ex.sleep(firstDelay))) return;
  if (ex.signal.aborted) return;
  if (script.httpError) {
    ex.json(script.httpError.status, plan.errorBody(script.httpError.message, script.httpError.status));
    return;
  }
  const n = plan.frames.length;
  const at = (point: StopPoint | undefined): number =>
    point === undefined ? -1 : point === true ? 0 : Math.min(Math.max(point.afterChunks, 0), n);
  const hangAt = at(script.hang);
  const destroyAt = at(script.destroy);
  const errorAt = at(script.midStreamError);
  const delay = script.chunkDelayMs ?? 0;

  // Fast path for benches: nothing timed or broken, so one write instead of one per frame.
  if (plan.stream && delay <= 0 && hangAt < 0 && destroyAt < 0 && errorAt < 0) {
    ex.end(plan.contentType, plan.frames.join("") + plan.tail());
    return;
  }
  for (let i = 0; i <= n; i++) {
    if (i > 0 && delay > 0 && !(await ex.sleep(delay))) return;
    if (ex.signal.aborted) return;
    if (i === hangAt) return ex.hang();
    if (i === destroyAt) return ex.destroy();
    if (i === errorAt && script.midStreamError) {
      const { message } = script.midStreamError;
      if (ex.res.headersSent) ex.end(plan.contentType, plan.errorFrame(message));
      else ex.json(500, plan.errorBody(message, 500));
      return;
    }
    if (i < n && plan.stream) ex.write(plan.contentType, plan.frames[i]);
  }
  if (plan.stream) ex.end(plan.contentType, plan.tail());
  else ex.json(200, plan.body());
}

/** Rough token count (~4 characters a token) used for usage counters and context checks. */
export function estimateTokens(text: string): number {
  return text.length === 0 ? 0 : Math.ceil(text.length / 4);
}

/**
 * The unscripted answer: "You said: <text>" in word-sized chunks, cut to `maxTokens` chunks
 * (done reason "length") so that max_tokens / num_predict mapping can be tested without a script.
 */
export function echoReply(text: string, maxTokens?: number): { content: string[]; doneReason: "stop" | "length" } {
  const chunks = `You said: ${text.trim() || "nothing"}`.split(/(?=\s)/);
  if (maxTokens !== undefined && maxTokens > 0 && chunks.length > maxTokens) {
    return { content: chunks.slice(0, maxTokens), doneReason: "length" };
  }
  return { content: chunks, doneReason: "stop" };
}

/** Script fields override the echo; the echo content is dropped when the script has tool calls. */
export function withEcho(script: ReplyScript | undefined, text: string, maxTokens?: number): ReplyScript {
  if (!script) return echoReply(text, maxTokens);
  if (script.content || script.toolCalls) return script;
  const echo = echoReply(text, maxTokens);
  return { ...script, content: echo.content, doneReason: script.doneReason ?? echo.doneReason };
}

/**
 * Deterministic unit vector of the text's words (the hashing trick): equal texts give equal vectors,
 * and texts that share words point the same way, so a vector ranking over these embeddings behaves
 * like a crude bag-of-words model instead of noise. Words are split at camelCase and snake_case;
 * a text without words falls back to a hash of the whole text.
 */
export function hashEmbedding(text: string, dims: number): number[] {
  const v = new Array<number>(dims).fill(0);
  let words = 0;
  for (const m of text.matchAll(/[\p{L}\p{N}]+/gu)) {
    for (const part of m[0].match(/\p{Lu}+(?=\p{Lu}\p{Ll})|\p{Lu}?\p{Ll}+|\p{Lu}+|\p{N}+/gu) ?? []) {
      if (part.length < 2) continue;
      const h = fnv1a(part.toLowerCase());
      v[h % dims]! += h & 0x80000000 ? -1 : 1;
      words++;
    }
  }
  return words && v.some((x) => x !== 0) ? normalize(v) : normalize(rawHashVector(text, dims));
}

function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/** Un-normalised variant (Ollama's legacy /api/embeddings does not normalise). */
export function rawHashVector(text: string, dims: number): number[] {
  let state = createHash("sha256").update(text).digest().readUInt32LE(0);
  const out = new Array<number>(dims);
  for (let i = 0; i < dims; i++) {
    // mulberry32: tiny, fast and good enough to make unrelated texts near-orthogonal.
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    out[i] = ((t ^ (t >>> 14)) >>> 0) / 2 ** 31 - 1;
  }
  return out;
}

export function normalize(vector: number[]): number[] {
  let sum = 0;
  for (const x of vector) sum += x * x;
  const norm = Math.sqrt(sum) || 1;
  return vector.map((x) => x / norm);
}

/** `call_` + 8 lowercase alphanumerics, like Ollama's ids, but derived from `seed`. */
export function toolCallId(seed: string): string {
  return `call_${createHash("sha256").update(seed).digest("hex").slice(0, 8)}`;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
