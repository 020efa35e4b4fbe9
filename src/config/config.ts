/**
 * Resolves the settings table into a typed, validated Config. Environment first
 * (aliases included), then `serve` flags; any invalid value or an unsafe bind is a
 * ConfigError (one line, exit code 2 in the CLI).
 */
import net from "node:net";
import path from "node:path";
import { parseArgs } from "node:util";
import { ConfigError } from "./config-error.js";
import { settings, type SettingKey, type SettingsTable } from "./settings.js";

export interface OpenAIBackendConfig {
  name: string;
  baseUrl: string;
  apiKey?: string;
}

type Values = { [K in SettingKey]: ReturnType<SettingsTable[K]["parse"]> };

export interface Config {
  bind: { host: string; port: number };
  upstream: string;
  model: string;
  authToken?: string;
  disableAuth: boolean;
  dataDir: string;
  databaseUrl?: string;
  qdrantUrl?: string;
  qdrantApiKey?: string;
  codex: {
    bin?: string;
    execOpts: string[];
    defaultSandbox: Values["codexDefaultSandbox"];
    timeoutMs: number;
    keepWorkspaces: boolean;
    jobRetentionSeconds: number;
    /** JOB_CONCURRENCY: jobs run at once on this replica. */
    jobConcurrency: number;
    /** CALLBACK_SECRET; unset: AUTH_TOKEN, else a key kept in the database. */
    callbackSecret?: string;
    /** Sandbox of the `codex` model backend. */
    modelSandbox: Values["codexModelSandbox"];
    /** Slugs listed as `codex/<slug>`. */
    models: string[];
  };
  responsesHeartbeatMs: number;
  /** SEARCH_ROOTS, resolved; the working directory when unset. */
  searchRoots: string[];
  /** SEARCH_WRITE: WriteFile/ApplyPatch allowed. */
  searchWrite: boolean;
  /** SEARCH_WATCH: index the roots at start and watch them. */
  searchWatch: boolean;
  backends: OpenAIBackendConfig[];
  embedModel: string;
  /** Dreamed endpoints (docs/endpoints.md). */
  endpoints: {
    similarity: number;
    ttlSeconds: number;
    refreshAheadSeconds: number;
    handlerTimeoutMs: number;
    sandbox: Values["endpointSandbox"];
  };
  ollamaNumCtx: number;
  rateLimitRpm: number;
  bodyLimitBytes: number;
  rpcMessageLimitBytes: number;
  upstreamTimeoutMs: number;
  shutdownGraceMs: number;
  agents: {
    /** AGENT_MAX_LOG_BYTES: the in-memory ring per agent. */
    maxLogBytes: number;
    /** AGENT_LOG_FILE_MAX_BYTES: the on-disk log cap per agent. */
    logFileMaxBytes: number;
  };
  logLevel: Values["logLevel"];
}

const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet("127.0.0.0", 8, "ipv4");
LOOPBACK.addAddress("::1", "ipv6");

/**
 * Hostnames and addresses that only this machine can reach. Addresses are compared as addresses,
 * so every spelling of ::1 and IPv4-mapped 127.x.y.z count.
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, "").toLowerCase();
  if (h === "localhost") return true;
  if (net.isIPv4(h)) return LOOPBACK.check(h, "ipv4");
  if (net.isIPv6(h)) return LOOPBACK.check(h, "ipv6");
  return false;
}

export function parseBind(raw: string, name = "BIND"): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s]+)):(\d{1,5})$/.exec(raw.trim());
  if (!m) throw new ConfigError(`invalid ${name} ${JSON.stringify(raw)}: expected host:port, e.g. 127.0.0.1:3210`);
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port > 65535) throw new ConfigError(`invalid ${name} ${JSON.stringify(raw)}: port must be 0-65535`);
  if (m[1] !== undefined && !net.isIPv6(host)) {
    throw new ConfigError(`invalid ${name} ${JSON.stringify(raw)}: bracketed host must be an IPv6 address`);
  }
  if (m[2] !== undefined && !net.isIPv4(host) && !/^[a-zA-Z0-9.-]+$/.test(host)) {
    throw new ConfigError(`invalid ${name} ${JSON.stringify(raw)}: bad host`);
  }
  return { host, port };
}

function parseBackends(entries: string[], env: NodeJS.ProcessEnv): OpenAIBackendConfig[] {
  const seen = new Set<string>(["ollama", "codex"]);
  return entries.map((entry) => {
    const eq = entry.indexOf("=");
    const name = eq > 0 ? entry.slice(0, eq).trim() : "";
    const url = eq > 0 ? entry.slice(eq + 1).trim() : "";
    if (!/^[a-z][a-z0-9_-]{0,31}$/.test(name)) {
      throw new ConfigError(
        `invalid BACKENDS entry ${JSON.stringify(entry)}: expected name=url with a lower-case name`,
      );
    }
    if (seen.has(name)) throw new ConfigError(`invalid BACKENDS entry ${JSON.stringify(entry)}: name ${name} is taken`);
    seen.add(name);
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw new ConfigError(`invalid BACKENDS entry ${JSON.stringify(entry)}: not a URL`);
    }
    if (u.protocol !== "http:" && u.protocol !== "https:") {
      throw new ConfigError(`invalid BACKENDS entry ${JSON.stringify(entry)}: expected http or https`);
    }
    const keyVar = `${name.toUpperCase().replace(/-/g, "_")}_API_KEY`;
    return { name, baseUrl: url.replace(/\/+$/, ""), apiKey: env[keyVar] || undefined };
  });
}

/**
 * Reads raw strings for every setting: flags override environment; aliases fill in. `names` says
 * where each value came from (`--flag`, the variable or the alias), so an error names what the
 * user actually set.
 */
function rawValues(
  env: NodeJS.ProcessEnv,
  argv: string[],
): { values: Record<SettingKey, string | undefined>; names: Record<SettingKey, string> } {
  const options: Record<string, { type: "string" | "boolean" }> = {};
  for (const s of Object.values(settings)) options[s.flag] = { type: s.boolean ? "boolean" : "string" };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: false });
  } catch (err) {
    throw new ConfigError((err as Error).message.split("\n")[0]!);
  }
  const values = {} as Record<SettingKey, string | undefined>;
  const names = {} as Record<SettingKey, string>;
  for (const [key, s] of Object.entries(settings) as [SettingKey, SettingsTable[SettingKey]][]) {
    const flagValue = parsed.values[s.flag];
    if (flagValue !== undefined) {
      values[key] = String(flagValue);
      names[key] = `--${s.flag}`;
      continue;
    }
    let value = env[s.env];
    let name = s.env;
    for (const alias of s.aliases ?? []) {
      if ((value === undefined || value === "") && env[alias] !== undefined) {
        value = env[alias];
        name = alias;
      }
    }
    values[key] = value;
    names[key] = name;
  }
  return { values, names };
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env, argv: string[] = []): Config {
  const { values: raw, names } = rawValues(env, argv);
  const v = {} as Values;
  for (const key of Object.keys(settings) as SettingKey[]) {
    (v as Record<string, unknown>)[key] = settings[key].parse(raw[key], names[key]);
  }
  const bind = parseBind(v.bind, names.bind);
  if (!isLoopbackHost(bind.host) && !v.authToken && !v.disableAuth) {
    throw new ConfigError(
      `refusing to serve ${bind.host}:${bind.port} without AUTH_TOKEN: set AUTH_TOKEN, bind a loopback address, or set DISABLE_AUTH=true`,
    );
  }
  return {
    bind,
    upstream: v.upstream,
    model: v.model,
    authToken: v.authToken,
    disableAuth: v.disableAuth,
    dataDir: path.resolve(v.dataDir),
    databaseUrl: v.databaseUrl,
    qdrantUrl: v.qdrantUrl,
    qdrantApiKey: v.qdrantApiKey,
    codex: {
      bin: v.codexBin,
      execOpts: v.codexExecOpts,
      defaultSandbox: v.codexDefaultSandbox,
      timeoutMs: v.codexTimeoutMs,
      keepWorkspaces: v.codexKeepWorkspaces,
      jobRetentionSeconds: v.codexJobRetentionSeconds,
      jobConcurrency: v.jobConcurrency,
      callbackSecret: v.callbackSecret,
      modelSandbox: v.codexModelSandbox,
      models: v.codexModels,
    },
    responsesHeartbeatMs: v.responsesHeartbeatMs,
    searchRoots: (v.searchRoots.length ? v.searchRoots : [process.cwd()]).map((r) => path.resolve(r)),
    searchWrite: v.searchWrite,
    searchWatch: v.searchWatch,
    backends: parseBackends(v.backends, env),
    embedModel: v.embedModel,
    endpoints: {
      similarity: v.endpointSimilarity,
      ttlSeconds: v.endpointTtlSeconds,
      refreshAheadSeconds: v.endpointRefreshAheadSeconds,
      handlerTimeoutMs: v.endpointHandlerTimeoutMs,
      sandbox: v.endpointSandbox,
    },
    ollamaNumCtx: v.ollamaNumCtx,
    rateLimitRpm: v.rateLimitRpm,
    bodyLimitBytes: v.bodyLimitBytes,
    rpcMessageLimitBytes: v.rpcMessageLimitBytes,
    upstreamTimeoutMs: v.upstreamTimeoutMs,
    shutdownGraceMs: v.shutdownGraceMs,
    agents: { maxLogBytes: v.agentMaxLogBytes, logFileMaxBytes: v.agentLogFileMaxBytes },
    logLevel: v.logLevel,
  };
}

/** Usage text for `agentgate serve --help`, generated from the settings table. */
export function settingsHelp(): string {
  const lines = Object.values(settings).map((s) => {
    const names = [s.env, ...(s.aliases ?? [])].join(", ");
    return `  --${s.flag}${s.boolean ? "" : " <value>"}\n      ${s.description} (env ${names}; default ${s.defaultText})`;
  });
  return lines.join("\n");
}
