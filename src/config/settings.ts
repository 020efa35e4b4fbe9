/**
 * The settings table: one row per setting, read from the environment (with the
 * earlier systems' names as aliases) and from `agentgate serve --flag` (flags win).
 * README's configuration table is this list.
 */
import { ConfigError } from "./config-error.js";

export type SettingValue = string | number | boolean | string[] | undefined;

export interface Setting<T extends SettingValue = SettingValue> {
  /** Primary environment variable; the flag is its kebab-case form. */
  env: string;
  /** Older names still accepted (seed systems). */
  aliases?: string[];
  /** Flag name without dashes. */
  flag: string;
  description: string;
  /** Shown in help and README; undefined means unset. */
  defaultText: string;
  /** Whether the value is a secret (never logged or echoed back). */
  secret?: boolean;
  /** A boolean flag takes no value on the command line. */
  boolean?: boolean;
  parse(raw: string | undefined, name: string): T;
}

function fail(name: string, raw: string, why: string): never {
  throw new ConfigError(`invalid ${name} ${JSON.stringify(raw)}: ${why}`);
}

export const parsers = {
  string(def?: string) {
    return (raw: string | undefined): string | undefined => (raw === undefined || raw === "" ? def : raw);
  },
  requiredString(def: string) {
    return (raw: string | undefined, name: string): string => {
      if (raw === undefined) return def;
      if (raw.trim() === "") fail(name, raw, "must not be empty");
      return raw;
    };
  },
  bool(def: boolean) {
    return (raw: string | undefined, name: string): boolean => {
      if (raw === undefined || raw === "") return def;
      const v = raw.trim().toLowerCase();
      if (["1", "true", "yes", "on"].includes(v)) return true;
      if (["0", "false", "no", "off"].includes(v)) return false;
      fail(name, raw, "expected true or false");
    };
  },
  int(def: number | undefined, min: number, max: number) {
    return (raw: string | undefined, name: string): number | undefined => {
      if (raw === undefined || raw === "") return def;
      if (!/^\d+$/.test(raw.trim())) fail(name, raw, `expected a whole number from ${min} to ${max}`);
      const n = Number(raw.trim());
      if (n < min || n > max) fail(name, raw, `expected a whole number from ${min} to ${max}`);
      return n;
    };
  },
  url(def?: string) {
    return (raw: string | undefined, name: string): string | undefined => {
      if (raw === undefined || raw === "") return def;
      let u: URL;
      try {
        u = new URL(raw);
      } catch {
        fail(name, raw, "not a URL");
      }
      if (u.protocol !== "http:" && u.protocol !== "https:")
        fail(name, raw, `expected an http:// or https:// URL, not ${u.protocol}`);
      return raw.replace(/\/+$/, "");
    };
  },
  /**
   * Space-separated words (exec options), split as a POSIX shell would without expanding anything:
   * '...' and "..." group (also inside a word: -c key="a b" is one word), backslash escapes. No shell
   * is involved.
   */
  words(raw: string | undefined, name: string): string[] {
    if (raw === undefined || raw.trim() === "") return [];
    const out: string[] = [];
    let word = "";
    let inWord = false;
    for (let i = 0; i < raw.length;) {
      const c = raw[i]!;
      if (/\s/.test(c)) {
        if (inWord) out.push(word);
        word = "";
        inWord = false;
        i++;
        continue;
      }
      inWord = true;
      if (c === "'") {
        const end = raw.indexOf("'", i + 1);
        if (end < 0) fail(name, raw, "unbalanced quotes");
        word += raw.slice(i + 1, end);
        i = end + 1;
      } else if (c === '"') {
        for (i++; ;) {
          if (i >= raw.length) fail(name, raw, "unbalanced quotes");
          const d = raw[i]!;
          if (d === '"') {
            i++;
            break;
          }
          if (d === "\\" && (raw[i + 1] === '"' || raw[i + 1] === "\\")) {
            word += raw[i + 1];
            i += 2;
          } else {
            word += d;
            i++;
          }
        }
      } else if (c === "\\" && i + 1 < raw.length) {
        word += raw[i + 1];
        i += 2;
      } else {
        word += c;
        i++;
      }
    }
    if (inWord) out.push(word);
    return out;
  },
  oneOf<T extends string>(def: T, values: readonly T[]) {
    return (raw: string | undefined, name: string): T => {
      if (raw === undefined || raw === "") return def;
      if (!(values as readonly string[]).includes(raw)) fail(name, raw, `expected one of ${values.join(", ")}`);
      return raw as T;
    };
  },
};

export const SANDBOX_MODES = ["read-only", "workspace-write", "danger-full-access"] as const;
export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;

function setting<T extends SettingValue>(s: Setting<T>): Setting<T> {
  return s;
}

export const settings = {
  bind: setting({
    env: "BIND",
    flag: "bind",
    description: "address:port to serve every protocol on",
    defaultText: "127.0.0.1:3210",
    parse: parsers.requiredString("127.0.0.1:3210"),
  }),
  upstream: setting({
    env: "UPSTREAM",
    flag: "upstream",
    description: "Ollama base URL",
    defaultText: "http://127.0.0.1:11434",
    parse: (raw, name) => parsers.url("http://127.0.0.1:11434")(raw, name)!,
  }),
  model: setting({
    env: "MODEL",
    flag: "model",
    description: "default model for requests that name none",
    defaultText: "qwen3:8b",
    parse: parsers.requiredString("qwen3:8b"),
  }),
  authToken: setting({
    env: "AUTH_TOKEN",
    aliases: ["CODEX_PROXY_TOKEN"],
    flag: "auth-token",
    description: "shared secret: `Authorization: Bearer` or `X-AppHub-Proxy-Token`",
    defaultText: "unset",
    secret: true,
    parse: (raw, name) => {
      if (raw === undefined || raw === "") return undefined;
      if (raw.length < 8) fail(name, "<redacted>", "must be at least 8 characters");
      if (/[\s\x00-\x1f\x7f]/.test(raw)) fail(name, "<redacted>", "must not contain spaces or control characters");
      return raw;
    },
  }),
  disableAuth: setting({
    env: "DISABLE_AUTH",
    flag: "disable-auth",
    boolean: true,
    description: "allow serving a non-loopback address with no token",
    defaultText: "false",
    parse: parsers.bool(false),
  }),
  dataDir: setting({
    env: "DATA_DIR",
    flag: "data-dir",
    description: "embedded database, logs, workspaces",
    defaultText: "./.agentgate",
    parse: parsers.requiredString("./.agentgate"),
  }),
  databaseUrl: setting({
    env: "DATABASE_URL",
    flag: "database-url",
    description: "Postgres server instead of the embedded database",
    defaultText: "unset",
    secret: true,
    parse: (raw, name) => {
      if (raw === undefined || raw === "") return undefined;
      if (!/^postgres(ql)?:\/\//.test(raw)) fail(name, "<redacted>", "expected postgres:// or postgresql://");
      return raw;
    },
  }),
  qdrantUrl: setting({
    env: "QDRANT_URL",
    flag: "qdrant-url",
    description: "Qdrant instead of pgvector for vectors",
    defaultText: "unset",
    parse: parsers.url(undefined),
  }),
  qdrantApiKey: setting({
    env: "QDRANT_API_KEY",
    flag: "qdrant-api-key",
    description: "Qdrant API key",
    defaultText: "unset",
    secret: true,
    parse: parsers.string(undefined),
  }),
  codexBin: setting({
    env: "CODEX_BIN",
    aliases: ["CODEX_PROXY_CLI"],
    flag: "codex-bin",
    description: "Codex CLI executable",
    defaultText: "the bundled @openai/codex, else PATH",
    parse: parsers.string(undefined),
  }),
  codexExecOpts: setting({
    env: "CODEX_PROXY_EXEC_OPTS",
    flag: "codex-exec-opts",
    description: "extra `codex exec` options (words, no shell)",
    defaultText: "empty",
    parse: parsers.words,
  }),
  codexDefaultSandbox: setting({
    env: "CODEX_PROXY_DEFAULT_SANDBOX",
    flag: "codex-default-sandbox",
    description: "`--sandbox` for Codex jobs whose options name none",
    defaultText: "workspace-write",
    parse: parsers.oneOf("workspace-write", SANDBOX_MODES),
  }),
  codexTimeoutMs: setting({
    env: "CODEX_PROXY_TIMEOUT_MS",
    flag: "codex-timeout-ms",
    description: "default Codex job timeout",
    defaultText: "600000",
    parse: (raw, name) => parsers.int(600_000, 1_000, 86_400_000)(raw, name)!,
  }),
  codexKeepWorkspaces: setting({
    env: "CODEX_PROXY_KEEP_WORKSPACES",
    aliases: ["APPHUB_CODEX_DEBUG_WORKSPACES"],
    flag: "codex-keep-workspaces",
    boolean: true,
    description: "keep job workspaces after the job ends",
    defaultText: "false",
    parse: parsers.bool(false),
  }),
  codexJobRetentionSeconds: setting({
    env: "CODEX_PROXY_JOB_RETENTION_SECONDS",
    flag: "codex-job-retention-seconds",
    description: "how long finished jobs are kept",
    defaultText: "3600",
    parse: (raw, name) => parsers.int(3600, 0, 31_536_000)(raw, name)!,
  }),
  searchRoots: setting({
    env: "SEARCH_ROOTS",
    flag: "search-roots",
    description:
      "directories agentgate may read and watch (search, file-change triggers), separated by `:`; paths outside them are refused",
    defaultText: "the working directory",
    parse: (raw) =>
      (raw ?? "")
        .split(":")
        .map((s) => s.trim())
        .filter(Boolean),
  }),
  searchWrite: setting({
    env: "SEARCH_WRITE",
    flag: "search-write",
    description: "allow SearchService WriteFile and ApplyPatch inside the search roots (never under `.git/`)",
    defaultText: "false",
    parse: parsers.bool(false),
  }),
  searchWatch: setting({
    env: "SEARCH_WATCH",
    flag: "search-watch",
    description: "index the search roots at start and keep the index current by watching them",
    defaultText: "true",
    parse: parsers.bool(true),
  }),
  jobConcurrency: setting({
    env: "JOB_CONCURRENCY",
    flag: "job-concurrency",
    description: "Codex jobs run at once by this replica",
    defaultText: "2",
    parse: (raw, name) => parsers.int(2, 1, 256)(raw, name)!,
  }),
  callbackSecret: setting({
    env: "CALLBACK_SECRET",
    flag: "callback-secret",
    description: "HMAC key of job callbacks' `webhook-signature` (docs/callbacks.md)",
    defaultText: "AUTH_TOKEN, else a random key kept in the database",
    secret: true,
    parse: parsers.string(undefined),
  }),
  codexModelSandbox: setting({
    env: "CODEX_MODEL_SANDBOX",
    flag: "codex-model-sandbox",
    description: "`--sandbox` of the `codex` model (Codex CLI answering chat requests)",
    defaultText: "read-only",
    parse: parsers.oneOf("read-only", SANDBOX_MODES),
  }),
  codexModels: setting({
    env: "CODEX_MODELS",
    flag: "codex-models",
    description: "Codex model slugs listed as `codex/<slug>` (comma-separated); `codex` alone is Codex's default",
    defaultText: "none",
    parse: (raw, name) => {
      const slugs = (raw ?? "")
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      for (const slug of slugs)
        if (!/^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/.test(slug))
          fail(name, raw!, `bad model slug ${JSON.stringify(slug)}`);
      return slugs;
    },
  }),
  responsesHeartbeatMs: setting({
    env: "RESPONSES_HEARTBEAT_MS",
    flag: "responses-heartbeat-ms",
    description:
      "/v1/responses: after this much silence (model loading, long thinking) send a `response.in_progress` event",
    defaultText: "5000",
    parse: (raw, name) => parsers.int(5_000, 50, 600_000)(raw, name)!,
  }),
  backends: setting({
    env: "BACKENDS",
    flag: "backends",
    description: "OpenAI-compatible upstreams, `name=url` comma-separated (API key from `<NAME>_API_KEY`)",
    defaultText: "none",
    parse: (raw) =>
      raw === undefined || raw.trim() === ""
        ? []
        : raw
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean),
  }),
  embedModel: setting({
    env: "EMBED_MODEL",
    flag: "embed-model",
    description: "default embedding model",
    defaultText: "nomic-embed-text",
    parse: parsers.requiredString("nomic-embed-text"),
  }),
  endpointSimilarity: setting({
    env: "ENDPOINT_SIMILARITY",
    flag: "endpoint-similarity",
    description: "cosine similarity (0-1) at or above which a description is the same dreamed endpoint (a cache hit)",
    defaultText: "0.9",
    parse: (raw, name) => {
      if (raw === undefined || raw.trim() === "") return 0.9;
      const n = Number(raw.trim());
      if (!/^\d*\.?\d+$/.test(raw.trim()) || n < 0 || n > 1) fail(name, raw, "expected a number from 0 to 1");
      return n;
    },
  }),
  endpointTtlSeconds: setting({
    env: "ENDPOINT_TTL_SECONDS",
    flag: "endpoint-ttl-seconds",
    description: "how long a dreamed endpoint stays fresh when its request names no ttl (0: forever)",
    defaultText: "604800",
    parse: (raw, name) => parsers.int(604_800, 0, 10 * 365 * 86_400)(raw, name)!,
  }),
  endpointRefreshAheadSeconds: setting({
    env: "ENDPOINT_REFRESH_AHEAD_SECONDS",
    flag: "endpoint-refresh-ahead-seconds",
    description:
      "re-dream endpoints this long before they expire, without waiting for a request (0: expired endpoints are re-dreamed on their next DreamEndpoint)",
    defaultText: "0",
    parse: (raw, name) => parsers.int(0, 0, 365 * 86_400)(raw, name)!,
  }),
  endpointHandlerTimeoutMs: setting({
    env: "ENDPOINT_HANDLER_TIMEOUT_MS",
    flag: "endpoint-handler-timeout-ms",
    description: "longest run of a dreamed endpoint's handler per call (validation and /dream requests)",
    defaultText: "10000",
    parse: (raw, name) => parsers.int(10_000, 100, 600_000)(raw, name)!,
  }),
  endpointSandbox: setting({
    env: "ENDPOINT_SANDBOX",
    flag: "endpoint-sandbox",
    description: "sandbox of dreamed endpoints' handlers: bwrap, or none (handlers then run unconfined)",
    defaultText: "bwrap",
    parse: parsers.oneOf("bwrap", ["bwrap", "none"] as const),
  }),
  ollamaNumCtx: setting({
    env: "OLLAMA_NUM_CTX",
    flag: "ollama-num-ctx",
    description:
      "context window requested from Ollama when a request names none (0: Ollama's default, 4k on small GPUs, too small for agents)",
    defaultText: "65536",
    parse: (raw, name) => parsers.int(65_536, 0, 10_000_000)(raw, name)!,
  }),
  rateLimitRpm: setting({
    env: "RATE_LIMIT_RPM",
    flag: "rate-limit-rpm",
    description: "requests per minute per token (or per client address without auth); 0 disables",
    defaultText: "0",
    parse: (raw, name) => parsers.int(0, 0, 10_000_000)(raw, name)!,
  }),
  bodyLimitBytes: setting({
    env: "BODY_LIMIT_BYTES",
    flag: "body-limit-bytes",
    description: "largest REST request body",
    defaultText: "4194304",
    parse: (raw, name) => parsers.int(4 * 1024 * 1024, 1024, 1024 * 1024 * 1024)(raw, name)!,
  }),
  rpcMessageLimitBytes: setting({
    env: "RPC_MESSAGE_LIMIT_BYTES",
    flag: "rpc-message-limit-bytes",
    description: "largest single RPC message, in either direction",
    defaultText: "4194304",
    parse: (raw, name) => parsers.int(4 * 1024 * 1024, 1024, 1024 * 1024 * 1024)(raw, name)!,
  }),
  upstreamTimeoutMs: setting({
    env: "UPSTREAM_TIMEOUT_MS",
    flag: "upstream-timeout-ms",
    description: "longest wait for an upstream's first byte",
    defaultText: "300000",
    parse: (raw, name) => parsers.int(300_000, 100, 86_400_000)(raw, name)!,
  }),
  shutdownGraceMs: setting({
    env: "SHUTDOWN_GRACE_MS",
    flag: "shutdown-grace-ms",
    description: "on SIGTERM, how long open streams may finish before they are ended",
    defaultText: "10000",
    parse: (raw, name) => parsers.int(10_000, 0, 600_000)(raw, name)!,
  }),
  agentMaxLogBytes: setting({
    env: "AGENT_MAX_LOG_BYTES",
    flag: "agent-max-log-bytes",
    description: "newest output bytes kept in memory per agent (older output is read from its log file)",
    defaultText: "1048576",
    parse: (raw, name) => parsers.int(1024 * 1024, 4096, 1024 * 1024 * 1024)(raw, name)!,
  }),
  agentLogFileMaxBytes: setting({
    env: "AGENT_LOG_FILE_MAX_BYTES",
    flag: "agent-log-file-max-bytes",
    description:
      "size cap of an agent's output log on disk; past it the oldest half is dropped (log_start_offset moves)",
    defaultText: "67108864",
    parse: (raw, name) => parsers.int(64 * 1024 * 1024, 65_536, 2 ** 40)(raw, name)!,
  }),
  logLevel: setting({
    env: "LOG_LEVEL",
    flag: "log-level",
    description: "pino log level",
    defaultText: "info",
    parse: parsers.oneOf("info", LOG_LEVELS),
  }),
} as const;

export type SettingsTable = typeof settings;
export type SettingKey = keyof SettingsTable;
