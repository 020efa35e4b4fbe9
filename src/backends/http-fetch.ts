/**
 * A small `fetch` on node:http with one keep-alive Agent per upstream.
 *
 * Why not the global fetch: measured with bench/completion.ts, undici's fetch
 * and its web streams cost 230-700 µs of CPU per upstream call, node:http
 * 60-80 µs, and the upstream call is the gateway's hot path. The `ollama`
 * client accepts a custom fetch and uses only `ok`, `status`, `statusText`,
 * `headers.get`, `json`, `text` and `body.getReader`; the OpenAI backend uses
 * the same subset, so this returns exactly that surface (`HttpResponse`).
 */
import http from "node:http";
import https from "node:https";
import type { Readable } from "node:stream";
import { urlToHttpOptions } from "node:url";
import type { CancelSignal } from "../util/cancel-signal.js";

export interface HttpRequestInit {
  method?: string;
  headers?: Record<string, string> | Headers | [string, string][];
  body?: string | Uint8Array | null;
  signal?: CancelSignal | null;
}

/** The part of `Response` agentgate and the `ollama` client use. */
export interface HttpResponse {
  readonly ok: boolean;
  readonly status: number;
  readonly statusText: string;
  readonly headers: { get(name: string): string | null };
  readonly body: { getReader(): ReadableStreamDefaultReader<Uint8Array> } & AsyncIterable<Uint8Array>;
  json(): Promise<unknown>;
  text(): Promise<string>;
}

export type HttpFetch = (url: string | URL, init?: HttpRequestInit) => Promise<HttpResponse>;

function headerRecord(h: HttpRequestInit["headers"]): Record<string, string> {
  if (!h) return {};
  if (h instanceof Headers) return Object.fromEntries(h.entries());
  if (Array.isArray(h)) return Object.fromEntries(h);
  return h;
}

/**
 * Response headers by name. A class, not an object literal with an arrow: tsx compiles with
 * esbuild's keepNames, which wraps every named closure created per call in a defineProperty.
 */
class HeaderView {
  constructor(private readonly h: http.IncomingHttpHeaders) {}

  get(name: string): string | null {
    const v = this.h[name.toLowerCase()];
    return v === undefined ? null : Array.isArray(v) ? v.join(", ") : v;
  }
}

const PREMATURE_CLOSE = "Premature close";
const RESOLVED = Promise.resolve(undefined);

/**
 * A minimal reader over the response stream: no web-stream machinery, and cheaper than the
 * stream's own async iterator (with the URL cache and listener objects below, ~10 µs less CPU
 * per upstream call in bench/completion).
 * Chunks flow through 'data' events; the stream is paused while a chunk waits for its read, so
 * a slow consumer still slows the upstream instead of growing a buffer.
 */
class BodyReader implements AsyncIterator<Uint8Array> {
  private readonly queue: Buffer[] = [];
  private ended = false;
  private error: Error | undefined;
  private pending: { resolve(r: IteratorResult<Uint8Array>): void; reject(err: Error): void } | undefined;

  constructor(private readonly res: http.IncomingMessage) {
    res.on("data", (chunk: Buffer) => {
      const p = this.pending;
      if (p) {
        this.pending = undefined;
        p.resolve({ done: false, value: chunk });
      } else {
        this.queue.push(chunk);
        res.pause();
      }
    });
    res.on("end", () => {
      this.ended = true;
      this.settle();
    });
    res.on("error", (err: Error) => {
      this.error ??= err;
      this.settle();
    });
    res.on("close", () => {
      if (!this.ended) this.error ??= Object.assign(new Error(PREMATURE_CLOSE), { code: "ERR_STREAM_PREMATURE_CLOSE" });
      this.settle();
    });
  }

  private settle(): void {
    const p = this.pending;
    if (!p || this.queue.length) return;
    this.pending = undefined;
    if (this.error) p.reject(this.error);
    else if (this.ended) p.resolve({ done: true, value: undefined });
  }

  next(): Promise<IteratorResult<Uint8Array>> {
    const chunk = this.queue.shift();
    if (chunk) {
      if (this.queue.length === 0 && !this.ended) this.res.resume();
      return Promise.resolve({ done: false, value: chunk });
    }
    if (this.error) return Promise.reject(this.error);
    if (this.ended) return Promise.resolve({ done: true, value: undefined });
    return new Promise((resolve, reject) => {
      this.pending = { resolve, reject };
    });
  }

  /** A consumer that stops early (for await ... break) releases the connection. */
  return(): Promise<IteratorResult<Uint8Array>> {
    if (!this.ended) this.res.destroy();
    return Promise.resolve({ done: true, value: undefined });
  }

  // The ReadableStreamDefaultReader surface the ollama client uses.
  read(): Promise<IteratorResult<Uint8Array>> {
    return this.next();
  }

  releaseLock(): void {}

  cancel(): Promise<void> {
    this.res.destroy();
    return RESOLVED;
  }

  get closed(): Promise<undefined> {
    return RESOLVED;
  }
}

class BodyView {
  private reader: BodyReader | undefined;

  constructor(private readonly take: () => Readable) {}

  getReader(): ReadableStreamDefaultReader<Uint8Array> {
    this.reader ??= new BodyReader(this.take() as http.IncomingMessage);
    return this.reader as unknown as ReadableStreamDefaultReader<Uint8Array>;
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    this.reader ??= new BodyReader(this.take() as http.IncomingMessage);
    return this.reader;
  }
}

class NodeHttpResponse implements HttpResponse {
  readonly ok: boolean;
  readonly status: number;
  readonly statusText: string;
  readonly headers: { get(name: string): string | null };
  private consumed = false;

  constructor(private readonly res: http.IncomingMessage) {
    this.status = res.statusCode ?? 0;
    this.ok = this.status >= 200 && this.status < 300;
    this.statusText = res.statusMessage ?? "";
    this.headers = new HeaderView(res.headers);
  }

  private take(): Readable {
    if (this.consumed) throw new TypeError("body already used");
    this.consumed = true;
    return this.res;
  }

  async text(): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const chunk of this.take()) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  }

  async json(): Promise<unknown> {
    return JSON.parse(await this.text());
  }

  private bodyView: BodyView | undefined;

  /** Memoised: callers (the ollama client among them) test `res.body` before reading it. */
  get body(): HttpResponse["body"] {
    this.bodyView ??= new BodyView(() => this.take());
    return this.bodyView;
  }
}

function abortError(signal: CancelSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const e = new Error("the operation was aborted");
  e.name = "AbortError";
  return e;
}

/**
 * One upstream request's abort wiring: the signal calls `handleEvent` on this listener object,
 * so no closures are made per call.
 */
class Exchange {
  response: http.IncomingMessage | undefined;

  constructor(
    private readonly req: http.ClientRequest,
    private readonly signal: CancelSignal,
  ) {
    signal.addEventListener("abort", this, { once: true });
  }

  handleEvent(): void {
    // A complete response has nothing left to cancel, and its keep-alive socket may
    // already serve another request: destroying it then would hit the wrong call.
    if (this.response?.complete) return;
    const err = abortError(this.signal);
    if (this.response) this.response.destroy(err);
    else this.req.destroy(err);
  }

  detach(): void {
    this.signal.removeEventListener("abort", this);
  }
}

/** Upstream URLs repeat (a few per backend): each is parsed once, not twice per call (ours and http.request's). */
const MAX_CACHED_URLS = 256;

/** A fetch whose connections are pooled in `agent` (keep-alive). */
export function createHttpFetch(options: { maxSockets?: number } = {}): HttpFetch & { destroy(): void } {
  const agents = {
    "http:": new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 256, scheduling: "lifo" }),
    "https:": new https.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 256, scheduling: "lifo" }),
  };
  const targets = new Map<string, http.RequestOptions>();
  function target(input: string | URL): http.RequestOptions {
    if (typeof input !== "string") return urlToHttpOptions(input);
    let t = targets.get(input);
    if (!t) {
      t = urlToHttpOptions(new URL(input));
      if (targets.size >= MAX_CACHED_URLS) targets.clear();
      targets.set(input, t);
    }
    return t;
  }
  function fetchFn(input: string | URL, init: HttpRequestInit = {}): Promise<HttpResponse> {
    return new Promise((resolve, reject) => {
      const t = target(input);
      const signal = init.signal ?? undefined;
      if (signal?.aborted) {
        reject(abortError(signal));
        return;
      }
      const agent = agents[t.protocol as "http:" | "https:"];
      if (!agent) {
        reject(new TypeError(`unsupported protocol ${t.protocol}`));
        return;
      }
      const lib = t.protocol === "https:" ? https : http;
      const body = init.body ?? undefined;
      const headers = headerRecord(init.headers);
      if (body !== undefined) headers["content-length"] = String(Buffer.byteLength(body));
      const req = lib.request({ ...t, method: init.method ?? "GET", headers, agent });
      const exchange = signal ? new Exchange(req, signal) : undefined;
      req.on("error", (err) => {
        exchange?.detach();
        reject(err);
      });
      req.once("response", (res) => {
        if (exchange) {
          exchange.response = res;
          res.on("end", () => exchange.detach());
          res.on("close", () => exchange.detach());
        }
        // Until the body is complete, an abort tears it down and its reader sees the error.
        res.on("error", () => undefined);
        resolve(new NodeHttpResponse(res));
      });
      req.end(body);
    });
  }
  return Object.assign(fetchFn, {
    destroy() {
      agents["http:"].destroy();
      agents["https:"].destroy();
    },
  });
}
