/**
 * `agentgate <command>`. `serve` runs the gateway until SIGTERM/SIGINT; a bad
 * setting prints one line and exits 2.
 */
import { ConfigError } from "../config/config-error.js";
import { loadConfig, settingsHelp } from "../config/config.js";
import { VERSION } from "../version.js";
import { agentsCommand, attachCommand } from "./attach-command.js";
import { codexConfig } from "./codex-config-command.js";

const USAGE = `agentgate ${VERSION}: one address for local models, the Codex CLI and sandboxed agents.

Usage:
  agentgate serve [flags]    serve Connect, gRPC, gRPC-Web and the OpenAI REST/SSE layer on BIND
  agentgate codex-config [flags]
                             print the Codex CLI config.toml that uses this agentgate (BIND, MODEL)
      --write                merge it into $CODEX_HOME/config.toml (default ~/.codex), keeping a .bak
      --codex-home <dir>     the Codex home to write into
      --base-url <url>       agentgate's URL as Codex reaches it (default http://<BIND>/v1)
      --model <id>           Codex's default model (default MODEL)
      --env-key <name>       variable holding the key Codex sends (default AGENTGATE_API_KEY)
      --provider-id <id>     the model_providers table to write (default agentgate)
  agentgate attach <agent-id> [--url URL] [--token T] [--read-only] [--no-replay]
                             this terminal becomes the agent's (raw mode, resize follows); Ctrl-] detaches
  agentgate agents [--url URL] [--token T]
                             list the agents
                             (URL defaults to this environment's BIND, the token to AUTH_TOKEN)
  agentgate version          print the version
  agentgate help             this text

Flags of serve (each also read from the environment variable named):
${settingsHelp()}
`;

async function serve(argv: string[]): Promise<number> {
  const config = loadConfig(process.env, argv);
  // Loaded only once the settings are valid: a bad setting fails fast, before the server's
  // dependencies (Fastify, Connect, PGlite) are even read.
  const { createAgentgate } = await import("../agentgate.js");
  const gate = await createAgentgate(config, { processMetrics: true });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      gate.app.log.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    stopping = true;
    gate.app.log.info({ signal, graceMs: config.shutdownGraceMs }, "shutting down");
    gate.close().then(
      () => process.exit(0),
      (err: unknown) => {
        gate.app.log.error({ err }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
  try {
    await gate.listen();
  } catch (err) {
    await gate.close().catch(() => undefined);
    throw err;
  }
  return new Promise<number>(() => {
    // Runs until a signal; stop() exits the process.
  });
}

export async function main(argv: string[]): Promise<number> {
  const [command = "serve", ...rest] = argv;
  try {
    switch (command) {
      case "serve":
        return await serve(rest);
      case "codex-config":
        return await codexConfig(rest);
      case "attach":
        return await attachCommand(rest);
      case "agents":
        return await agentsCommand(rest);
      case "version":
      case "--version":
        process.stdout.write(`${VERSION}\n`);
        return 0;
      case "help":
      case "--help":
      case "-h":
        process.stdout.write(USAGE);
        return 0;
      default:
        if (command.startsWith("--")) return await serve(argv);
        process.stderr.write(`agentgate: unknown command ${JSON.stringify(command)}; try agentgate help\n`);
        return 2;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`agentgate: ${err.message}\n`);
      return 2;
    }
    const e = err as NodeJS.ErrnoException;
    if (e.code === "EADDRINUSE" || e.code === "EACCES" || e.code === "EADDRNOTAVAIL") {
      process.stderr.write(`agentgate: cannot listen: ${e.message}\n`);
      return 2;
    }
    if (e.name === "DatabaseLockedError") {
      process.stderr.write(`agentgate: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`agentgate: ${e.stack ?? String(err)}\n`);
    return 1;
  }
}
