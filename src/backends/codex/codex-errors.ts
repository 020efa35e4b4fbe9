/**
 * Turns what a failed `codex exec` said into one clear GatewayError: Codex's own message when it gave
 * one (turn.failed, an `error` event), else the informative end of its stderr, never the whole of it.
 */
import { GatewayError } from "../../errors/gateway-error.js";

/**
 * Without credentials Codex 0.169.0 still calls the provider and fails only after its retries (about
 * 13 s), e.g. "unexpected status 401 Unauthorized: You didn't provide an API key. …, url: …"; `codex
 * login status` says "Not logged in". Offline it never fails: it waits for the network (see the docs).
 */
const NOT_AUTHENTICATED =
  /\b401\b|unauthorized|not logged in|not signed in|no codex credentials|didn't provide an api key|missing bearer|invalid_api_key|incorrect api key/i;

const MAX_MESSAGE_CHARS = 600;

export function codexFailure(message: string, codexHome: string): GatewayError {
  const said = clip(message);
  if (NOT_AUTHENTICATED.test(message)) {
    return new GatewayError(
      "upstream_error",
      `Codex is not signed in to a model provider: run \`codex login\` as the user agentgate runs as ` +
        `(CODEX_HOME=${codexHome}), or configure a model provider in ${codexHome}/config.toml. Codex said: ${said}`,
      { code: "codex_not_logged_in" },
    );
  }
  return new GatewayError("upstream_error", `Codex failed: ${said}`, { code: "codex_failed" });
}

/**
 * The useful end of Codex's stderr: without the Rust backtrace ("Stack backtrace:" and its
 * "N: <unknown>" frames) and the "Reading additional input from stdin..." banner, the last three lines.
 */
export function summariseStderr(stderr: string): string {
  const cut = stderr.indexOf("Stack backtrace:");
  const lines = (cut >= 0 ? stderr.slice(0, cut) : stderr)
    .replace(/\x1b\[[0-9;]*[A-Za-z]/g, "")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && l !== "Reading additional input from stdin...");
  return clip(lines.slice(-3).join(" | "), "end");
}

/** Long texts keep their start (a message) or their end (a log tail). */
function clip(text: string, keep: "start" | "end" = "start"): string {
  const t = text.trim();
  if (t.length <= MAX_MESSAGE_CHARS) return t;
  return keep === "start" ? `${t.slice(0, MAX_MESSAGE_CHARS)}…` : `…${t.slice(-MAX_MESSAGE_CHARS)}`;
}
