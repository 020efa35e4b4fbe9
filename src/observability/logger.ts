/**
 * pino logger with redaction: tokens and keys never reach the log, whatever
 * object they ride in on.
 */
import { pino, type Logger } from "pino";

export const REDACT_PATHS = [
  "authToken",
  "*.authToken",
  "apiKey",
  "*.apiKey",
  "*.*.apiKey",
  "qdrantApiKey",
  "*.qdrantApiKey",
  "databaseUrl",
  "*.databaseUrl",
  "token",
  "*.token",
  "password",
  "*.password",
  "headers.authorization",
  "headers.cookie",
  'headers["x-apphub-proxy-token"]',
  "req.headers.authorization",
  "req.headers.cookie",
  'req.headers["x-apphub-proxy-token"]',
];

/** Query parameters the earlier systems' APIs used for secrets: kept by name, value redacted. */
const SECRET_QUERY_KEYS = new Set([
  "token",
  "secure_token",
  "api_key",
  "apikey",
  "key",
  "auth",
  "access_token",
  "authorization",
  "x-apphub-proxy-token",
]);
/** Connect GET parameters whose values say nothing about the caller. */
const PLAIN_QUERY_KEYS = new Set(["connect", "encoding", "compression", "base64"]);

/**
 * The URL as logged: the path, and of the query only what cannot carry a secret. Values are
 * redacted except Connect's GET flags (a caller may put a token in any parameter, and Connect's
 * `message` carries the request itself); names outside the known lists are redacted too, since a
 * bare `?<token>` is a name.
 */
export function redactUrl(url: string): string {
  const q = url.indexOf("?");
  if (q < 0) return url;
  const query = url.slice(q + 1).split("#", 1)[0]!;
  if (query === "") return url.slice(0, q);
  const parts = query.split("&").map((part) => {
    const eq = part.indexOf("=");
    const name = (eq < 0 ? part : part.slice(0, eq)).toLowerCase();
    if (PLAIN_QUERY_KEYS.has(name)) return part;
    if (SECRET_QUERY_KEYS.has(name) || name === "message") return `${name}=[Redacted]`;
    return "[Redacted]";
  });
  return `${url.slice(0, q)}?${parts.join("&")}`;
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "agentgate" },
      redact: { paths: REDACT_PATHS, censor: "[Redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    // Asynchronous stdout: under load, lines written while a write is in flight are coalesced
    // into one syscall instead of one each (sonic-boom; pino flushes it on exit).
    destination ?? pino.destination({ dest: 1, sync: false }),
  );
}
