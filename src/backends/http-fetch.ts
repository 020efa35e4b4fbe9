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

export interface HttpRequestInit {
  method?: string;
  headers?: Record<string, string> | Headers | [string, string][];
  body?: string | Uint8Array | null;
  signal?: AbortSignal | null;
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
    this.headers = {
      get: (name) => {
        const v = res.headers[name.toLowerCase()];
        return v === undefined ? null : Array.isArray(v) ? v.join(", ") : v;
      },
    };
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

  private bodyView: HttpResponse["body"] | undefined;

  /** Memoised: callers (the ollama client among them) test `res.body` before reading it. */
  get body(): HttpResponse["body"] {
    this.bodyView ??= this.makeBody();
    return this.bodyView;
  }

  private makeBody(): HttpResponse["body"] {
    const stream = this.take();
    const iterator = stream[Symbol.asyncIterator]() as AsyncIterator<Uint8Array>;
    return {
      [Symbol.asyncIterator]: () => iterator,
      // A minimal reader over the Node stream: no web-stream machinery on the hot path.
      getReader: () =>
        ({
          read: async () => {
            const r = await iterator.next();
            return r.done ? { done: true, value: undefined } : { done: false, value: r.value };
          },
          releaseLock: () => undefined,
          cancel: async () => {
            stream.destroy();
          },
          closed: Promise.resolve(undefined),
        }) as unknown as ReadableStreamDefaultReader<Uint8Array>,
    };
  }
}

function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  const e = new Error("the operation was aborted");
  e.name = "AbortError";
  return e;
}

/** A fetch whose connections are pooled in `agent` (keep-alive). */
export function createHttpFetch(options: { maxSockets?: number } = {}): HttpFetch & { destroy(): void } {
  const agents = {
    "http:": new http.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 256, scheduling: "lifo" }),
    "https:": new https.Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 256, scheduling: "lifo" }),
  };
  const fetchFn = (input: string | URL, init: HttpRequestInit = {}): Promise<HttpResponse> =>
    new Promise((resolve, reject) => {
      const url = typeof input === "string" ? new URL(input) : input;
      const signal = init.signal ?? undefined;
      if (signal?.aborted) {
        reject(abortError(signal));
        return;
      }
      const lib = url.protocol === "https:" ? https : http;
      const agent = agents[url.protocol as "http:" | "https:"];
      if (!agent) {
        reject(new TypeError(`unsupported protocol ${url.protocol}`));
        return;
      }
      const body = init.body ?? undefined;
      const headers = headerRecord(init.headers);
      if (body !== undefined) headers["content-length"] = String(Buffer.byteLength(body));
      const req = lib.request(url, { method: init.method ?? "GET", headers, agent });
      let response: http.IncomingMessage | undefined;
      const onAbort = () => {
        // A complete response has nothing left to cancel, and its keep-alive socket may
        // already serve another request: destroying it then would hit the wrong call.
        if (response?.complete) return;
        const err = abortError(signal!);
        if (response) response.destroy(err);
        else req.destroy(err);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      const detach = () => signal?.removeEventListener("abort", onAbort);
      req.on("error", (err) => {
        detach();
        reject(err);
      });
      req.once("response", (res) => {
        response = res;
        res.once("end", detach);
        res.once("close", detach);
        // Until the body is complete, an abort tears it down and its reader sees the error.
        res.on("error", () => undefined);
        resolve(new NodeHttpResponse(res));
      });
      req.end(body);
    });
  return Object.assign(fetchFn, {
    destroy() {
      agents["http:"].destroy();
      agents["https:"].destroy();
    },
  });
}
