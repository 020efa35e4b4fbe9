/**
 * Runs the Ollama double as its own process (for benches that must not share the event loop):
 *   tsx test/doubles/ollama-double-main.ts [--port N] [--first-byte-delay-ms N] [--chunk-delay-ms N]
 * The port may also be the first positional argument or OLLAMA_DOUBLE_PORT (default: ephemeral).
 * Prints the URL on stdout as the only line, then serves until SIGINT/SIGTERM.
 */
import { parseArgs } from "node:util";

import { startOllamaDouble } from "./ollama-double.js";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    port: { type: "string" },
    "first-byte-delay-ms": { type: "string" },
    "chunk-delay-ms": { type: "string" },
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

// Records are unreadable from another process and would only grow during a bench.
const double = await startOllamaDouble({ port, record: false });
// Without delays nothing is scripted, so the double answers immediately with the echo.
if (firstByteDelayMs > 0 || chunkDelayMs > 0) double.setDefault({ firstByteDelayMs, chunkDelayMs });
console.log(double.url);

const stop = (): void => {
  void double.close().then(() => process.exit(0));
};
process.once("SIGINT", stop);
process.once("SIGTERM", stop);
