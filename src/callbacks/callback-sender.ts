/**
 * Delivers an event (a finished job's record, later a dreamed endpoint's) to a client's callback URL:
 * one signed JSON POST per attempt, retried on non-2xx answers and network errors with a backoff
 * schedule. Signatures follow Standard Webhooks (webhook-id / webhook-timestamp / webhook-signature),
 * so receivers can verify with an existing library; see docs/callbacks.md.
 *
 * `deliver` never throws: a bad receiver must not crash the job that triggered it. Every attempt is
 * reported through `onAttempt` (the job stores them as `callbackAttempts`).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import http from "node:http";
import https from "node:https";
import { performance } from "node:perf_hooks";
import { urlToHttpOptions } from "node:url";
import type { Logger } from "pino";
import { GatewayError } from "../errors/gateway-error.js";
import type { CallbackAttempt } from "../jobs/types.js";
import { newId } from "../util/ids.js";
import { VERSION } from "../version.js";

export type { CallbackAttempt } from "../jobs/types.js";

export interface CallbackSenderOptions {
  /** Signing secret. `whsec_<base64>` is base64-decoded (as Standard Webhooks libraries do); anything else is used as UTF-8 bytes. */
  secret: string;
  /** Attempts in all, first one included (default 5). */
  attempts?: number;
  /** Waits before the 2nd, 3rd, ... attempt; the last entry repeats (default [1000, 5000, 30000, 120000]). */
  backoffMs?: number[];
  /** Per attempt: connect, send, status and response body (default 10000). */
  timeoutMs?: number;
  /** Largest request body sent; a larger payload is reported as one failed attempt (default 1 MiB). */
  maxBodyBytes?: number;
  logger?: Logger;
}

export type HeaderSource = Headers | Record<string, string | string[] | undefined>;

export const DEFAULT_CALLBACK_ATTEMPTS = 5;
export const DEFAULT_CALLBACK_BACKOFF_MS: readonly number[] = [1000, 5000, 30000, 120000];
export const DEFAULT_CALLBACK_TIMEOUT_MS = 10_000;
export const DEFAULT_CALLBACK_MAX_BODY_BYTES = 1024 * 1024;
export const MAX_CALLBACK_URL_LENGTH = 2048;
/** Response bodies are read (so the connection can be reused) and discarded up to this size. */
export const MAX_CALLBACK_RESPONSE_BYTES = 64 * 1024;

const USER_AGENT = `agentgate/${VERSION}`;
const ERROR_SNIPPET_CHARS = 200;

// --- signing ---------------------------------------------------------------------------------------

function secretKey(secret: string): Buffer {
  return secret.startsWith("whsec_") ? Buffer.from(secret.slice(6), "base64") : Buffer.from(secret, "utf8");
}

function hmac(secret: string, id: string, timestamp: number | string, body: string | Uint8Array): Buffer {
  const h = createHmac("sha256", secretKey(secret));
  h.update(`${id}.${timestamp}.`);
  h.update(body);
  return h.digest();
}

/** The `webhook-signature` value: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`. */
export function signCallback(secret: string, id: string, timestamp: number, body: string | Uint8Array): string {
  return `v1,${hmac(secret, id, timestamp, body).toString("base64")}`;
}

function header(headers: HeaderSource, name: string): string | undefined {
  if (typeof (headers as Headers).get === "function" && typeof (headers as Headers).has === "function") {
    return (headers as Headers).get(name) ?? undefined;
  }
  const record = headers as Record<string, string | string[] | undefined>;
  let v = record[name];
  if (v === undefined) {
    for (const key of Object.keys(record)) {
      if (key.toLowerCase() === name) {
        v = record[key];
        break;
      }
    }
  }
  return Array.isArray(v) ? v.join(" ") : v;
}

/**
 * Checks a received callback: the signature (any `v1,` entry of the space-separated list matches,
 * compared in constant time) and a timestamp within `toleranceSeconds` of now, either direction.
 * `body` must be the raw request body, byte for byte.
 */
export function verifyCallbackSignature(
  secret: string,
  headers: HeaderSource,
  body: string | Uint8Array,
  toleranceSeconds = 300,
): boolean {
  const id = header(headers, "webhook-id");
  const ts = header(headers, "webhook-timestamp");
  const signatures = header(headers, "webhook-signature");
  if (!id || !ts || !signatures || !/^\d{1,15}$/.test(ts)) return false;
  const timestamp = Number(ts);
  if (Math.abs(Math.floor(Date.now() / 1000) - timestamp) > toleranceSeconds) return false;
  const expected = hmac(secret, id, ts, body);
  let ok = false;
  for (const entry of signatures.split(" ")) {
    const comma = entry.indexOf(",");
    if (comma < 0 || entry.slice(0, comma) !== "v1") continue;
    const given = Buffer.from(entry.slice(comma + 1), "base64");
    // No early exit: every listed signature costs the same.
    if (given.length === expected.length && timingSafeEqual(given, expected)) ok = true;
  }
  return ok;
}

// --- URL validation --------------------------------------------------------------------------------

/**
 * Parses a client-supplied callback URL: http(s) only, no credentials, at most 2048 characters.
 * Loopback and private addresses are allowed on purpose (see docs/callbacks.md on SSRF).
 */
export function validateCallbackUrl(url: string): URL {
  const fail = (message: string): never => {
    throw new GatewayError("invalid_argument", message, { param: "callback_url" });
  };
  if (typeof url !== "string" || url.length === 0) return fail("callback_url is empty");
  if (url.length > MAX_CALLBACK_URL_LENGTH) {
    return fail(`callback_url is longer than ${MAX_CALLBACK_URL_LENGTH} characters`);
  }
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return fail("callback_url is not a valid absolute URL");
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    return fail(`callback_url must use http or https, not ${parsed.protocol.replace(/:$/, "")}`);
  }
  if (parsed.username || parsed.password) {
    return fail("callback_url must not contain credentials (user:password@)");
  }
  if (!parsed.hostname) return fail("callback_url has no host");
  return parsed;
}

// --- delivery --------------------------------------------------------------------------------------

interface AttemptResult {
  httpStatus: number;
  error: string;
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as NodeJS.ErrnoException).code;
    return code && !err.message.includes(code) ? `${code}: ${err.message}` : err.message || String(code ?? err);
  }
  return String(err);
}

function statusError(status: number, statusMessage: string, snippet: Buffer[], location: string | undefined): string {
  if (status >= 200 && status < 300) return "";
  let msg = `HTTP ${status}${statusMessage ? ` ${statusMessage}` : ""}`;
  if (status >= 300 && status < 400 && location) msg += ` (redirects are not followed; location ${location})`;
  const text = Buffer.concat(snippet).toString("utf8").replace(/\s+/g, " ").trim();
  if (text) msg += `: ${text.length > ERROR_SNIPPET_CHARS ? `${text.slice(0, ERROR_SNIPPET_CHARS)}…` : text}`;
  return msg;
}

/** Waits `ms`; false when `signal` aborted first. */
function sleep(ms: number, signal: AbortSignal): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
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

export class CallbackSender {
  private readonly secret: string;
  private readonly attempts: number;
  private readonly backoffMs: number[];
  private readonly timeoutMs: number;
  private readonly maxBodyBytes: number;
  private readonly logger: Logger | undefined;
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });
  private readonly httpsAgent = new https.Agent({ keepAlive: true, maxSockets: 16 });
  /** Aborted by close(): pending deliveries stop retrying. */
  private readonly closing = new AbortController();

  constructor(o: CallbackSenderOptions) {
    if (!o.secret) throw new Error("CallbackSender needs a signing secret");
    this.secret = o.secret;
    this.attempts = Math.max(1, Math.floor(o.attempts ?? DEFAULT_CALLBACK_ATTEMPTS));
    const backoff = o.backoffMs && o.backoffMs.length > 0 ? o.backoffMs : DEFAULT_CALLBACK_BACKOFF_MS;
    this.backoffMs = backoff.map((ms) => Math.max(0, ms));
    this.timeoutMs = o.timeoutMs ?? DEFAULT_CALLBACK_TIMEOUT_MS;
    this.maxBodyBytes = o.maxBodyBytes ?? DEFAULT_CALLBACK_MAX_BODY_BYTES;
    this.logger = o.logger;
  }

  /** The wait after attempt `attempt` (1-based) before the next one. */
  private backoffAfter(attempt: number): number {
    return this.backoffMs[Math.min(attempt - 1, this.backoffMs.length - 1)]!;
  }

  /**
   * POSTs `{ event, data: payload, id, timestamp }` to `url` until a 2xx answer, a 410 Gone, the last
   * attempt, or an abort (of `signal` or by close()). Resolves true when delivered; never rejects.
   */
  async deliver(
    url: string,
    event: string,
    payload: unknown,
    onAttempt: (a: CallbackAttempt) => void | Promise<void>,
    signal?: AbortSignal,
  ): Promise<boolean> {
    const stop = new AbortController();
    const onStop = () => stop.abort();
    if (signal?.aborted || this.closing.signal.aborted) return false;
    signal?.addEventListener("abort", onStop, { once: true });
    this.closing.signal.addEventListener("abort", onStop, { once: true });
    try {
      return await this.run(url, event, payload, onAttempt, stop.signal);
    } catch (err) {
      // Defensive: run() is written not to throw.
      this.logger?.error({ err, event }, "callback delivery failed unexpectedly");
      return false;
    } finally {
      signal?.removeEventListener("abort", onStop);
      this.closing.signal.removeEventListener("abort", onStop);
    }
  }

  private async report(onAttempt: (a: CallbackAttempt) => void | Promise<void>, a: CallbackAttempt): Promise<void> {
    try {
      await onAttempt(a);
    } catch (err) {
      this.logger?.warn({ err, event: a.event, attempt: a.attempt }, "callback onAttempt handler failed");
    }
  }

  private async run(
    rawUrl: string,
    event: string,
    payload: unknown,
    onAttempt: (a: CallbackAttempt) => void | Promise<void>,
    signal: AbortSignal,
  ): Promise<boolean> {
    const id = newId("msg_");
    const failEarly = async (error: string): Promise<false> => {
      this.logger?.warn({ event, deliveryId: id, error }, "callback not sent");
      await this.report(onAttempt, {
        attempt: 1,
        event,
        attemptedAt: new Date(),
        httpStatus: 0,
        error,
        delivered: false,
        durationMs: 0,
      });
      return false;
    };

    let url: URL;
    try {
      url = validateCallbackUrl(rawUrl);
    } catch (err) {
      return failEarly(describeError(err));
    }
    const target = url.origin; // never log the path or query: receivers put tokens there

    for (let attempt = 1; attempt <= this.attempts; attempt++) {
      const attemptedAt = new Date();
      const timestamp = Math.floor(attemptedAt.getTime() / 1000);
      let body: Buffer;
      try {
        const json = JSON.stringify({ event, data: payload, id, timestamp });
        if (json === undefined) throw new Error("not JSON-serialisable");
        body = Buffer.from(json, "utf8");
      } catch (err) {
        return failEarly(`payload is not JSON-serialisable: ${describeError(err)}`);
      }
      if (body.length > this.maxBodyBytes) {
        return failEarly(`payload is ${body.length} bytes, over the ${this.maxBodyBytes}-byte limit`);
      }

      const started = performance.now();
      const result = await this.attemptOnce(url, id, timestamp, body, signal);
      const durationMs = Math.round(performance.now() - started);
      const delivered = result.httpStatus >= 200 && result.httpStatus < 300;
      const aborted = signal.aborted && !delivered;
      const gone = result.httpStatus === 410;
      const more = !delivered && !aborted && !gone && attempt < this.attempts;
      const wait = more ? this.backoffAfter(attempt) : 0;
      const a: CallbackAttempt = {
        attempt,
        event,
        attemptedAt,
        httpStatus: result.httpStatus,
        error: delivered ? "" : aborted && !result.error ? "aborted" : result.error,
        delivered,
        durationMs,
      };
      if (more) a.nextAttemptAt = new Date(Date.now() + wait);
      this.logger?.[delivered ? "debug" : "info"](
        { event, deliveryId: id, target, attempt, httpStatus: a.httpStatus, error: a.error || undefined, durationMs },
        delivered ? "callback delivered" : "callback attempt failed",
      );
      await this.report(onAttempt, a);

      if (delivered) return true;
      if (aborted) return false;
      if (gone) {
        this.logger?.info({ event, deliveryId: id, target }, "callback receiver answered 410 Gone: not retrying");
        return false;
      }
      if (!more) break;
      if (!(await sleep(wait, signal))) return false;
    }
    this.logger?.warn({ event, deliveryId: id, target, attempts: this.attempts }, "callback attempts exhausted");
    return false;
  }

  private attemptOnce(
    url: URL,
    id: string,
    timestamp: number,
    body: Buffer,
    signal: AbortSignal,
  ): Promise<AttemptResult> {
    return new Promise<AttemptResult>((resolve) => {
      const isHttps = url.protocol === "https:";
      let settled = false;
      let status = 0;
      let statusMessage = "";
      let location: string | undefined;
      const snippet: Buffer[] = [];
      let snippetBytes = 0;
      let req: http.ClientRequest | undefined;

      const finish = (error: string | undefined): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        signal.removeEventListener("abort", onAbort);
        resolve({
          httpStatus: status,
          // With a status line, the status decides; a later body error does not undo a 2xx.
          error: status ? statusError(status, statusMessage, snippet, location) : (error ?? "no response"),
        });
      };
      const onAbort = (): void => {
        finish("aborted");
        req?.destroy();
      };
      const timer = setTimeout(() => {
        finish(`timed out after ${this.timeoutMs} ms`);
        req?.destroy();
      }, this.timeoutMs);
      signal.addEventListener("abort", onAbort, { once: true });

      try {
        req = (isHttps ? https : http).request(
          {
            ...urlToHttpOptions(url),
            method: "POST",
            agent: isHttps ? this.httpsAgent : this.httpAgent,
            headers: {
              "content-type": "application/json",
              "content-length": String(body.length),
              "user-agent": USER_AGENT,
              "webhook-id": id,
              "webhook-timestamp": String(timestamp),
              "webhook-signature": signCallback(this.secret, id, timestamp, body),
            },
          },
          (response) => {
            status = response.statusCode ?? 0;
            statusMessage = response.statusMessage ?? "";
            const loc = response.headers.location;
            location = typeof loc === "string" ? loc.slice(0, 300) : undefined;
            let read = 0;
            response.on("data", (chunk: Buffer) => {
              read += chunk.length;
              if (snippetBytes < 1024) {
                snippet.push(chunk.subarray(0, 1024 - snippetBytes));
                snippetBytes += Math.min(chunk.length, 1024 - snippetBytes);
              }
              if (read > MAX_CALLBACK_RESPONSE_BYTES) {
                // Enough: drop the rest (and the connection) rather than read an endless body.
                finish(undefined);
                response.destroy();
              }
            });
            response.on("end", () => finish(undefined));
            response.on("error", () => finish(undefined));
            response.on("close", () => finish(undefined));
          },
        );
        req.on("error", (err) => finish(describeError(err)));
        req.end(body);
      } catch (err) {
        finish(describeError(err));
      }
    });
  }

  /** Stops pending deliveries' retries and closes idle keep-alive connections. */
  close(): void {
    this.closing.abort();
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
