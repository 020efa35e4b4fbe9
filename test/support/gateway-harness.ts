/**
 * Starts a real agentgate on 127.0.0.1 (ephemeral port) in front of a fresh Ollama
 * double and an in-memory database, exactly as `agentgate serve` composes it.
 *
 *   const h = await startGateway();            // h.url, h.ollama, h.gate
 *   ...
 *   await h.close();
 */
import { Writable } from "node:stream";
import { createAgentgate, type Agentgate } from "../../src/agentgate.js";
import { loadConfig, type Config } from "../../src/config/config.js";
import { createLogger } from "../../src/observability/logger.js";
import { startOllamaDouble, type OllamaDouble, type OllamaDoubleOptions } from "../doubles/ollama-double.js";
import { openTestDatabase } from "./test-database.js";

export interface GatewayHarness {
  url: string;
  port: number;
  gate: Agentgate;
  config: Config;
  ollama: OllamaDouble;
  /** Every log line the gateway wrote (parsed JSON). */
  logs: Record<string, unknown>[];
  close(): Promise<void>;
}

export interface HarnessOptions {
  /** Environment for loadConfig (BIND, UPSTREAM and DATA_DIR are filled in). */
  env?: Record<string, string>;
  /** Reuse a running Ollama double instead of starting one. */
  ollama?: OllamaDouble;
  ollamaOptions?: OllamaDoubleOptions;
}

export async function startGateway(opts: HarnessOptions = {}): Promise<GatewayHarness> {
  const ollama = opts.ollama ?? (await startOllamaDouble(opts.ollamaOptions));
  const config = loadConfig({
    BIND: "127.0.0.1:0",
    UPSTREAM: ollama.url,
    DATA_DIR: "/nonexistent-agentgate-test-dir",
    SHUTDOWN_GRACE_MS: "500",
    LOG_LEVEL: "info",
    // Not indexing and watching the working directory (the default root) in every test's gateway;
    // search tests set SEARCH_ROOTS and SEARCH_WATCH themselves.
    SEARCH_WATCH: "false",
    ...opts.env,
  });
  const logs: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString("utf8").split("\n"))
        if (line) logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const db = await openTestDatabase();
  const gate = await createAgentgate(config, { logger: createLogger(config.logLevel, sink), database: db });
  const { port, url } = await gate.listen();
  return {
    url,
    port,
    gate,
    config,
    ollama,
    logs,
    async close() {
      await gate.close();
      await db.close();
      if (!opts.ollama) await ollama.close();
    },
  };
}
