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

/** Query parameters whose values are secrets in the earlier systems' APIs. */
const SECRET_QUERY = /([?&](?:token|secure_token|api_key|apikey|key|auth|access_token)=)[^&#]*/gi;

export function redactUrl(url: string): string {
  return url.replace(SECRET_QUERY, "$1[Redacted]");
}

export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: "agentgate" },
      redact: { paths: REDACT_PATHS, censor: "[Redacted]" },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}
