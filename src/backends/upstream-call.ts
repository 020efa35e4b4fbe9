/**
 * Shared plumbing for calling an upstream over HTTP: one AbortController per call
 * tied to the caller's signal (client gone, RPC deadline) and to a first-byte
 * timeout, and one place that turns transport and HTTP failures into
 * GatewayErrors that name the upstream.
 */
import { GatewayError } from "../errors/gateway-error.js";

export interface UpstreamIdentity {
  readonly name: string;
  readonly describe: string;
}

export class UpstreamTimeout extends Error {
  override readonly name = "UpstreamTimeout";
}

export class UpstreamCall {
  readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private readonly onCallerAbort: () => void;

  constructor(
    private readonly caller: AbortSignal,
    private readonly firstByteTimeoutMs: number,
  ) {
    this.onCallerAbort = () => this.controller.abort(caller.reason);
    if (caller.aborted) this.controller.abort(caller.reason);
    else caller.addEventListener("abort", this.onCallerAbort, { once: true });
    this.timer = setTimeout(
      () => this.controller.abort(new UpstreamTimeout(`no answer within ${firstByteTimeoutMs} ms`)),
      firstByteTimeoutMs,
    );
  }

  get signal(): AbortSignal {
    return this.controller.signal;
  }

  /** Call once the upstream has started answering. */
  answered(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /**
   * Call with the upstream's response once it has started answering, and read the body of the
   * Response returned: the first-byte timer stops and an idle timer of the same length starts,
   * restarted by every body chunk, so an upstream that stalls mid-stream is cut (UpstreamTimeout,
   * then the stream's error frame) instead of holding the caller forever.
   */
  watch(res: Response): Response {
    this.answered();
    if (!res.body) return res;
    const signal = this.controller.signal;
    const ms = this.firstByteTimeoutMs;
    const idle = setTimeout(() => this.controller.abort(new UpstreamTimeout(`no data for ${ms} ms`)), ms);
    this.timer = idle;
    const onAbort = (ctl: TransformStreamDefaultController<Uint8Array>) => () => ctl.error(signal.reason);
    let listener: (() => void) | undefined;
    const body = res.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        start: (ctl) => {
          if (signal.aborted) return ctl.error(signal.reason);
          listener = onAbort(ctl);
          signal.addEventListener("abort", listener, { once: true });
        },
        transform: (chunk, ctl) => {
          idle.refresh();
          ctl.enqueue(chunk);
        },
        flush: () => {
          clearTimeout(idle);
          if (listener) signal.removeEventListener("abort", listener);
        },
      }),
    );
    return new Response(body, { status: res.status, statusText: res.statusText, headers: res.headers });
  }

  /** Releases listeners; aborts the upstream request if it is still open. */
  finish(): void {
    clearTimeout(this.timer);
    this.caller.removeEventListener("abort", this.onCallerAbort);
    if (!this.controller.signal.aborted) this.controller.abort();
  }
}

const NETWORK_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ENOTFOUND",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EAI_AGAIN",
  "EPIPE",
  "UND_ERR_SOCKET",
  "UND_ERR_CONNECT_TIMEOUT",
]);

function networkCode(err: unknown): string | undefined {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && NETWORK_CODES.has(code)) return code;
  }
  return undefined;
}

/** Maps an upstream HTTP status and message to a gateway error. */
export function upstreamStatusError(up: UpstreamIdentity, status: number, message: string): GatewayError {
  const text = `upstream ${up.describe} answered ${status}: ${message}`;
  if (status === 404) return new GatewayError("not_found", text, { code: "model_not_found", param: "model" });
  if (status === 400 || status === 422) return new GatewayError("invalid_argument", text, { code: "upstream_rejected" });
  if (status === 401 || status === 403) return new GatewayError("upstream_error", text, { code: "upstream_auth_failed" });
  if (status === 429) return new GatewayError("resource_exhausted", text, { code: "upstream_rate_limited" });
  if (status === 503) return new GatewayError("unavailable", text, { code: "upstream_unavailable" });
  return new GatewayError("upstream_error", text, { code: "upstream_error" });
}

/**
 * Classifies a failure of an upstream call. `signal` is the call's signal: its
 * abort reason tells a caller cancellation or deadline from a first-byte timeout.
 */
export function upstreamFailure(up: UpstreamIdentity, err: unknown, signal: AbortSignal): GatewayError {
  if (err instanceof GatewayError) return err;
  if (signal.aborted) {
    const reason: unknown = signal.reason;
    if (reason instanceof UpstreamTimeout) {
      return new GatewayError("deadline_exceeded", `upstream ${up.describe} sent ${reason.message}`, {
        code: "upstream_timeout",
      });
    }
    if (reason instanceof GatewayError) return reason;
    const name = (reason as { name?: string } | undefined)?.name;
    if (name === "TimeoutError" || (reason as { code?: number } | undefined)?.code === 4) {
      return new GatewayError("deadline_exceeded", `deadline exceeded waiting for upstream ${up.describe}`);
    }
    return new GatewayError("canceled", "the caller went away", { cause: err });
  }
  const net = networkCode(err);
  if (net) {
    return new GatewayError("unavailable", `upstream ${up.describe} is unreachable (${net})`, {
      code: "upstream_unavailable",
      cause: err,
    });
  }
  const status = (err as { status_code?: unknown; status?: unknown }).status_code ?? (err as { status?: unknown }).status;
  if (typeof status === "number" && status >= 400) {
    const msg = (err as { error?: unknown }).error ?? (err as Error).message;
    return upstreamStatusError(up, status, String(msg));
  }
  const message = err instanceof Error ? err.message : String(err);
  return new GatewayError("upstream_error", `upstream ${up.describe} failed: ${message}`, {
    code: "upstream_error",
    cause: err,
  });
}
