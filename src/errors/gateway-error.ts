/**
 * One error type for the whole gateway. Domain code throws GatewayError with a
 * kind; the REST layer renders it as an OpenAI error object with the matching HTTP
 * status, the RPC layer as a ConnectError with the matching code.
 */
import { Code, ConnectError } from "@connectrpc/connect";

export type ErrorKind =
  | "invalid_argument"
  | "unauthenticated"
  | "permission_denied"
  | "not_found"
  | "already_exists"
  | "aborted"
  | "resource_exhausted"
  | "failed_precondition"
  | "unavailable"
  | "upstream_error"
  | "deadline_exceeded"
  | "canceled"
  | "unimplemented"
  | "internal";

interface KindInfo {
  status: number;
  openaiType: string;
  code: Code;
}

const KINDS: Record<ErrorKind, KindInfo> = {
  invalid_argument: { status: 400, openaiType: "invalid_request_error", code: Code.InvalidArgument },
  unauthenticated: { status: 401, openaiType: "authentication_error", code: Code.Unauthenticated },
  permission_denied: { status: 403, openaiType: "permission_error", code: Code.PermissionDenied },
  not_found: { status: 404, openaiType: "invalid_request_error", code: Code.NotFound },
  already_exists: { status: 409, openaiType: "invalid_request_error", code: Code.AlreadyExists },
  aborted: { status: 409, openaiType: "invalid_request_error", code: Code.Aborted },
  resource_exhausted: { status: 429, openaiType: "rate_limit_error", code: Code.ResourceExhausted },
  failed_precondition: { status: 400, openaiType: "invalid_request_error", code: Code.FailedPrecondition },
  unavailable: { status: 503, openaiType: "api_error", code: Code.Unavailable },
  upstream_error: { status: 502, openaiType: "api_error", code: Code.Unavailable },
  deadline_exceeded: { status: 504, openaiType: "timeout_error", code: Code.DeadlineExceeded },
  canceled: { status: 499, openaiType: "api_error", code: Code.Canceled },
  unimplemented: { status: 501, openaiType: "invalid_request_error", code: Code.Unimplemented },
  internal: { status: 500, openaiType: "server_error", code: Code.Internal },
};

export interface GatewayErrorOptions {
  /** The request field at fault (OpenAI `param`). */
  param?: string;
  /** A machine-readable code (OpenAI `code`), e.g. "model_not_found". */
  code?: string;
  /** For rate limits: when to try again (REST sends it as Retry-After). */
  retryAfterSeconds?: number;
  /**
   * REST only: answer with this HTTP status instead of the kind's. For clients whose retry
   * policy keys on the status (Codex retries every 5xx up to 30 times; see rest/responses).
   */
  httpStatus?: number;
  cause?: unknown;
}

export class GatewayError extends Error {
  override readonly name = "GatewayError";
  readonly kind: ErrorKind;
  readonly param?: string;
  readonly code?: string;
  readonly retryAfterSeconds?: number;
  readonly httpStatus?: number;

  constructor(kind: ErrorKind, message: string, options: GatewayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    this.param = options.param;
    this.code = options.code;
    this.retryAfterSeconds = options.retryAfterSeconds;
    this.httpStatus = options.httpStatus;
  }

  get status(): number {
    return this.httpStatus ?? KINDS[this.kind].status;
  }

  /** The same error answered with another HTTP status. */
  withHttpStatus(status: number): GatewayError {
    return new GatewayError(this.kind, this.message, {
      param: this.param,
      code: this.code,
      retryAfterSeconds: this.retryAfterSeconds,
      httpStatus: status,
      cause: this.cause,
    });
  }
}

export const invalidArgument = (message: string, param?: string, code?: string) =>
  new GatewayError("invalid_argument", message, { param, code });

export interface OpenAIErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

/** Renders any thrown value as an OpenAI error object and HTTP status. */
export function toOpenAIError(err: unknown): { status: number; body: OpenAIErrorBody } {
  const g = asGatewayError(err);
  const info = KINDS[g.kind];
  return {
    status: g.status,
    body: { error: { message: g.message, type: info.openaiType, param: g.param ?? null, code: g.code ?? g.kind } },
  };
}

/** Renders any thrown value as a ConnectError. */
export function toConnectError(err: unknown): ConnectError {
  if (err instanceof ConnectError) return err;
  const g = asGatewayError(err);
  const message = g.param ? `${g.message} (field ${g.param})` : g.message;
  return new ConnectError(message, KINDS[g.kind].code, undefined, undefined, err);
}

const CONNECT_TO_KIND: Partial<Record<Code, ErrorKind>> = {
  [Code.InvalidArgument]: "invalid_argument",
  [Code.Unauthenticated]: "unauthenticated",
  [Code.PermissionDenied]: "permission_denied",
  [Code.NotFound]: "not_found",
  [Code.AlreadyExists]: "already_exists",
  [Code.Aborted]: "aborted",
  [Code.ResourceExhausted]: "resource_exhausted",
  [Code.FailedPrecondition]: "failed_precondition",
  [Code.Unavailable]: "unavailable",
  [Code.DeadlineExceeded]: "deadline_exceeded",
  [Code.Canceled]: "canceled",
  [Code.Unimplemented]: "unimplemented",
};

export function asGatewayError(err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  if (err instanceof ConnectError) {
    return new GatewayError(CONNECT_TO_KIND[err.code] ?? "internal", err.rawMessage, { cause: err });
  }
  if (err instanceof Error && err.name === "AbortError") {
    return new GatewayError("canceled", "the request was canceled", { cause: err });
  }
  // Never leak internals (stack traces, SQL) to clients; the log has the cause.
  return new GatewayError("internal", "internal error", { cause: err });
}
