/**
 * Shared plumbing for calling an upstream over HTTP: one cancellation per call
 * tied to the caller's signal (client gone, RPC deadline) and to first-byte and
 * idle timeouts, and one place that turns transport and HTTP failures into
 * GatewayErrors that name the upstream.
 */
import { GatewayError } from "../errors/gateway-error.js";
import { Cancellation, type CancelSignal } from "../util/cancel-signal.js";

export interface UpstreamIdentity {
  readonly name: string;
  readonly describe: string;
}

export class UpstreamTimeout extends Error {
  override readonly name = "UpstreamTimeout";
}

/**
 * One upstream request's lifetime. The timer first bounds the wait for the
 * upstream's first byte, then (after `answered`) the silence between chunks
 * (`progress` restarts it), so an upstream that stalls mid-stream is cut with
 * UpstreamTimeout instead of holding the caller forever. A call marked
 * `complete` is not aborted by `finish` (nothing to cancel, and creating the
 * abort reason costs more than the rest of the bookkeeping).
 */
export class UpstreamCall {
  // A Cancellation, not an AbortController: see util/cancel-signal.ts.
  private readonly cancellation = new Cancellation();
  private readonly timer: NodeJS.Timeout;
  private phase: "waiting" | "answering" | "complete" = "waiting";

  constructor(
    private readonly caller: CancelSignal,
    private readonly timeoutMs: number,
  ) {
    // The call itself is the caller's abort listener (`handleEvent`): no closure per call.
    if (caller.aborted) this.cancellation.cancel(caller.reason);
    else caller.addEventListener("abort", this, { once: true });
    this.timer = setTimeout(() => {
      const what = this.phase === "waiting" ? `no answer within ${timeoutMs} ms` : `no data for ${timeoutMs} ms`;
      this.cancellation.cancel(new UpstreamTimeout(what));
    }, timeoutMs);
  }

  get signal(): CancelSignal {
    return this.cancellation;
  }

  /** The caller's signal aborted. */
  handleEvent(): void {
    this.cancellation.cancel(this.caller.reason);
  }

  /** The upstream started answering: from now on the timer measures silence between chunks. */
  answered(): void {
    this.phase = "answering";
    this.timer.refresh();
  }

  /** A chunk arrived. */
  progress(): void {
    this.timer.refresh();
  }

  /** The upstream finished its answer. */
  complete(): void {
    this.phase = "complete";
    clearTimeout(this.timer);
  }

  /** Releases listeners; aborts the upstream request unless it completed. */
  finish(): void {
    clearTimeout(this.timer);
    this.caller.removeEventListener("abort", this);
    if (this.phase !== "complete") this.cancellation.cancel();
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
  if (status === 400 || status === 422)
    return new GatewayError("invalid_argument", text, { code: "upstream_rejected" });
  if (status === 401 || status === 403)
    return new GatewayError("upstream_error", text, { code: "upstream_auth_failed" });
  if (status === 429) return new GatewayError("resource_exhausted", text, { code: "upstream_rate_limited" });
  if (status === 503) return new GatewayError("unavailable", text, { code: "upstream_unavailable" });
  return new GatewayError("upstream_error", text, { code: "upstream_error" });
}

/**
 * Classifies a failure of an upstream call. `signal` is the call's signal: its
 * abort reason tells a caller cancellation or deadline from a first-byte timeout.
 */
export function upstreamFailure(up: UpstreamIdentity, err: unknown, signal: CancelSignal): GatewayError {
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
  const status =
    (err as { status_code?: unknown; status?: unknown }).status_code ?? (err as { status?: unknown }).status;
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
