/**
 * `agentgate codex-config [--write] ...`: prints (or merges into $CODEX_HOME/config.toml) the Codex CLI
 * settings that make this agentgate its model provider. Reads the serve settings of the same
 * environment (BIND, MODEL) unless --base-url and --model say everything.
 */
import { parseArgs } from "node:util";
import { ConfigError } from "../config/config-error.js";
import { loadConfig } from "../config/config.js";

export async function codexConfig(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        write: { type: "boolean" },
        "codex-home": { type: "string" },
        "base-url": { type: "string" },
        model: { type: "string" },
        "env-key": { type: "string" },
        "provider-id": { type: "string" },
      },
    }));
  } catch (err) {
    throw new ConfigError((err as Error).message.split("\n")[0]!);
  }
  const str = (k: string) => values[k] as string | undefined;
  if (str("codex-home") !== undefined && !values.write) throw new ConfigError("--codex-home needs --write");
  const codex = await import("../codex/codex-config.js");
  // The serve settings (same environment) give the address and default model; not needed when both are given.
  const config = str("base-url") !== undefined && str("model") !== undefined ? undefined : loadConfig(process.env);
  const options = {
    baseUrl: str("base-url") ?? codex.baseUrlForBind(config!.bind),
    model: str("model") ?? config!.model,
    envKey: str("env-key"),
    providerId: str("provider-id"),
  };
  if (!values.write) {
    process.stdout.write(codex.renderCodexConfig(options));
    return 0;
  }
  let result: ReturnType<typeof codex.writeCodexConfig>;
  try {
    result = codex.writeCodexConfig(str("codex-home") ?? codex.defaultCodexHome(), options);
  } catch (err) {
    if (err instanceof ConfigError || !(err as NodeJS.ErrnoException).code) throw err;
    // A file-system failure (permissions, read-only home): one line, not a stack trace.
    process.stderr.write(`agentgate: cannot write the Codex config: ${(err as Error).message}\n`);
    return 1;
  }
  const where = !result.changed
    ? `# ${result.path} already had these settings; nothing written.`
    : result.backup
      ? `# Wrote ${result.path} (the previous file, comments included, is kept as ${result.backup}):`
      : `# Wrote ${result.path}:`;
  process.stdout.write(`${where}\n\n${result.text}`);
  return 0;
}
