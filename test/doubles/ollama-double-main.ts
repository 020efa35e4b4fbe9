/**
 * Runs the Ollama double as its own process (for benches that must not share the event loop):
 *   tsx test/doubles/ollama-double-main.ts [--port N] [--first-byte-delay-ms N] [--chunk-delay-ms N]
 *                                          [--chunk-directive]
 * The port may also be the first positional argument or OLLAMA_DOUBLE_PORT (default: ephemeral).
 * Prints the URL on stdout as the only line, then serves until SIGINT/SIGTERM.
 *
 * --chunk-directive (or OLLAMA_DOUBLE_CHUNK_DIRECTIVE=1; off by default, so the double behaves as
 * in the tests): a chat/generate request whose last user message (or prompt) is exactly
 * `reply in N chunks` (1 <= N <= 100000) is answered with N content chunks, one short word each
 * (`w1`, ` w2`, … ` wN`), done reason "stop". Any other request gets the usual echo. A bench can
 * then vary the number of streamed chunks per request without a script channel into this process
 * (bench/responses.ts). The delay flags do not apply to these replies.
 */
import { parseArgs } from "node:util";

import type { Exchange, ReplyScript } from "./double-server.js";
import { OllamaDouble } from "./ollama-double.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: "string" },
    "first-byte-delay-ms": { type: "string" },
    "chunk-delay-ms": { type: "string" },
    "chunk-directive": { type: "boolean", default: false },
  },
});

function integer(name: string, raw: string | undefined): number {
  const value = Number(raw ?? 0);
  if (!Number.isInteger(value) || value < 0) {
    console.error(`ollama-double: invalid ${name}: ${raw}`);
    process.exit(2);
  }
  return value;
}

const port = integer("port", values.port ?? positionals[0] ?? process.env.OLLAMA_DOUBLE_PORT);
const firstByteDelayMs = integer("--first-byte-delay-ms", values["first-byte-delay-ms"]);
const chunkDelayMs = integer("--chunk-delay-ms", values["chunk-delay-ms"]);
const chunkDirective = values["chunk-directive"] || process.env.OLLAMA_DOUBLE_CHUNK_DIRECTIVE === "1";

const DIRECTIVE = /^reply in (\d{1,6}) chunks$/;

/** The `reply in N chunks` script for a request body, if it asks for one. */
function directiveScript(body: unknown): ReplyScript | undefined {
  if (typeof body !== "object" || body === null) return undefined;
  const b = body as { messages?: unknown; prompt?: unknown };
  let text: unknown = b.prompt;
  if (Array.isArray(b.messages)) {
    const users = b.messages.filter(
      (m): m is { content?: unknown } =>
        typeof m === "object" && m !== null && (m as { role?: unknown }).role === "user",
    );
    text = users.at(-1)?.content;
  }
  const match = typeof text === "string" ? DIRECTIVE.exec(text.trim()) : null;
  const n = match ? Number(match[1]) : 0;
  if (n < 1 || n > 100_000) return undefined;
  return { content: Array.from({ length: n }, (_, i) => (i === 0 ? "w1" : ` w${i + 1}`)), doneReason: "stop" };
}

/** Answers `reply in N chunks` with N chunks; the script is picked while the request is routed. */
class DirectiveDouble extends OllamaDouble {
  private pending: ReplyScript | undefined;

  protected override handle(ex: Exchange): Promise<void> | void {
    // Routing reaches nextScript() synchronously, so `pending` belongs to this request only.
    this.pending = directiveScript(ex.body);
    try {
      return super.handle(ex);
    } finally {
      this.pending = undefined;
    }
  }

  protected override nextScript(): ReplyScript | undefined {
    const script = this.pending;
    this.pending = undefined;
    return script ?? super.nextScript();
  }
}

// Records are unreadable from another process and would only grow during a bench.
const double = chunkDirective ? new DirectiveDouble({ record: false }) : new OllamaDouble({ record: false });
await double.listen(port);
// Without delays nothing is scripted, so the double answers immediately with the echo.
if (firstByteDelayMs > 0 || chunkDelayMs > 0) double.setDefault({ firstByteDelayMs, chunkDelayMs });
console.log(double.url);

const stop = (): void => {
  void double.close().then(() => process.exit(0));
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
