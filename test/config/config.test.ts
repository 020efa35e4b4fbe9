// loadConfig: the settings table of design.md from the environment and from `serve` flags (flags
// win; the seed systems' names are aliases), one-line ConfigErrors naming the setting, and the
// unsafe-bind refusal.
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/config-error.js";
import { configTableMarkdown } from "../../src/config/config-table.js";
import { isLoopbackHost, loadConfig, parseBind, settingsHelp } from "../../src/config/config.js";
import { parsers, settings } from "../../src/config/settings.js";

/** The ConfigError loadConfig throws (fails the test if it does not throw one). */
function configError(env: Record<string, string>, argv: string[] = []): ConfigError {
  try {
    loadConfig(env, argv);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return err as ConfigError;
  }
  throw new Error(`loadConfig accepted ${JSON.stringify(env)} ${argv.join(" ")}`);
}

describe("defaults", () => {
  it("an empty environment gives design.md's defaults", () => {
    const c = loadConfig({}, []);
    expect(c.bind).toEqual({ host: "127.0.0.1", port: 3210 });
    expect(c.upstream).toBe("http://127.0.0.1:11434");
    expect(c.model).toBe("qwen3:8b");
    expect(c.authToken).toBeUndefined();
    expect(c.disableAuth).toBe(false);
    expect(c.dataDir).toBe(path.resolve(".agentgate"));
    expect(c.databaseUrl).toBeUndefined();
    expect(c.qdrantUrl).toBeUndefined();
    expect(c.qdrantApiKey).toBeUndefined();
    expect(c.codex).toEqual({
      bin: undefined,
      execOpts: [],
      defaultSandbox: "workspace-write",
      timeoutMs: 600_000,
      keepWorkspaces: false,
      jobRetentionSeconds: 3600,
      jobConcurrency: 2,
      callbackSecret: undefined,
      modelSandbox: "read-only",
      models: [],
    });
    expect(c.responsesHeartbeatMs).toBe(5000);
    expect(c.searchRoots).toEqual([process.cwd()]);
    expect(c.searchWrite).toBe(false);
    expect(c.searchWatch).toBe(true);
    expect(c.backends).toEqual([]);
    expect(c.embedModel).toBe("nomic-embed-text");
    expect(c.endpoints).toEqual({
      similarity: 0.9,
      ttlSeconds: 604_800,
      refreshAheadSeconds: 0,
      handlerTimeoutMs: 10_000,
      sandbox: "bwrap",
    });
    expect(c.ollamaNumCtx).toBe(65_536);
    expect(c.rateLimitRpm).toBe(0);
    expect(c.bodyLimitBytes).toBe(4 * 1024 * 1024);
    expect(c.rpcMessageLimitBytes).toBe(4 * 1024 * 1024);
    expect(c.upstreamTimeoutMs).toBe(300_000);
    expect(c.shutdownGraceMs).toBe(10_000);
    expect(c.agents).toEqual({ maxLogBytes: 1_048_576, logFileMaxBytes: 67_108_864 });
    expect(c.logLevel).toBe("info");
  });

  it("ignores unrelated variables", () => {
    expect(() => loadConfig({ PORT: "nonsense", HOME: "/root", TOKEN: "x" })).not.toThrow();
  });
});

/** Every setting: its variable, a valid value, the flag form, and what the Config holds. */
const TABLE: { env: string; value: string; get: (c: ReturnType<typeof loadConfig>) => unknown; want: unknown }[] = [
  { env: "BIND", value: "127.0.0.2:4000", get: (c) => c.bind, want: { host: "127.0.0.2", port: 4000 } },
  {
    env: "UPSTREAM",
    value: "http://ollama.internal:11434/",
    get: (c) => c.upstream,
    want: "http://ollama.internal:11434",
  },
  { env: "MODEL", value: "llama3.2:3b", get: (c) => c.model, want: "llama3.2:3b" },
  { env: "AUTH_TOKEN", value: "s3cret-token-1", get: (c) => c.authToken, want: "s3cret-token-1" },
  { env: "DISABLE_AUTH", value: "true", get: (c) => c.disableAuth, want: true },
  { env: "DATA_DIR", value: "/tmp/ag-data", get: (c) => c.dataDir, want: "/tmp/ag-data" },
  {
    env: "DATABASE_URL",
    value: "postgres://u:p@db:5432/ag",
    get: (c) => c.databaseUrl,
    want: "postgres://u:p@db:5432/ag",
  },
  { env: "QDRANT_URL", value: "http://qdrant:6333", get: (c) => c.qdrantUrl, want: "http://qdrant:6333" },
  { env: "QDRANT_API_KEY", value: "qk", get: (c) => c.qdrantApiKey, want: "qk" },
  { env: "CODEX_BIN", value: "/opt/codex/bin/codex", get: (c) => c.codex.bin, want: "/opt/codex/bin/codex" },
  {
    env: "CODEX_PROXY_EXEC_OPTS",
    value: `--model o4 -c 'a b' --flag="x y"`,
    get: (c) => c.codex.execOpts,
    want: ["--model", "o4", "-c", "a b", "--flag=x y"],
  },
  { env: "CODEX_PROXY_DEFAULT_SANDBOX", value: "read-only", get: (c) => c.codex.defaultSandbox, want: "read-only" },
  { env: "CODEX_PROXY_TIMEOUT_MS", value: "120000", get: (c) => c.codex.timeoutMs, want: 120_000 },
  { env: "CODEX_PROXY_KEEP_WORKSPACES", value: "yes", get: (c) => c.codex.keepWorkspaces, want: true },
  { env: "CODEX_PROXY_JOB_RETENTION_SECONDS", value: "0", get: (c) => c.codex.jobRetentionSeconds, want: 0 },
  { env: "JOB_CONCURRENCY", value: "4", get: (c) => c.codex.jobConcurrency, want: 4 },
  { env: "CALLBACK_SECRET", value: "s3cret", get: (c) => c.codex.callbackSecret, want: "s3cret" },
  { env: "SEARCH_ROOTS", value: "/srv/a:/srv/b", get: (c) => c.searchRoots, want: ["/srv/a", "/srv/b"] },
  { env: "SEARCH_WRITE", value: "true", get: (c) => c.searchWrite, want: true },
  { env: "SEARCH_WATCH", value: "false", get: (c) => c.searchWatch, want: false },
  {
    env: "BACKENDS",
    value: "vllm=http://gpu:8000/v1/, groq=https://api.groq.com/openai/v1",
    get: (c) => c.backends.map((b) => [b.name, b.baseUrl]),
    want: [
      ["vllm", "http://gpu:8000/v1"],
      ["groq", "https://api.groq.com/openai/v1"],
    ],
  },
  { env: "EMBED_MODEL", value: "bge-m3", get: (c) => c.embedModel, want: "bge-m3" },
  { env: "ENDPOINT_SIMILARITY", value: "0.75", get: (c) => c.endpoints.similarity, want: 0.75 },
  { env: "ENDPOINT_TTL_SECONDS", value: "0", get: (c) => c.endpoints.ttlSeconds, want: 0 },
  { env: "ENDPOINT_REFRESH_AHEAD_SECONDS", value: "60", get: (c) => c.endpoints.refreshAheadSeconds, want: 60 },
  { env: "ENDPOINT_HANDLER_TIMEOUT_MS", value: "2500", get: (c) => c.endpoints.handlerTimeoutMs, want: 2500 },
  { env: "ENDPOINT_SANDBOX", value: "none", get: (c) => c.endpoints.sandbox, want: "none" },
  { env: "OLLAMA_NUM_CTX", value: "8192", get: (c) => c.ollamaNumCtx, want: 8192 },
  { env: "CODEX_MODEL_SANDBOX", value: "workspace-write", get: (c) => c.codex.modelSandbox, want: "workspace-write" },
  { env: "CODEX_MODELS", value: "gpt-5.5, o3", get: (c) => c.codex.models, want: ["gpt-5.5", "o3"] },
  { env: "RESPONSES_HEARTBEAT_MS", value: "1000", get: (c) => c.responsesHeartbeatMs, want: 1000 },
  { env: "RATE_LIMIT_RPM", value: "60", get: (c) => c.rateLimitRpm, want: 60 },
  { env: "BODY_LIMIT_BYTES", value: "65536", get: (c) => c.bodyLimitBytes, want: 65_536 },
  { env: "RPC_MESSAGE_LIMIT_BYTES", value: "1048576", get: (c) => c.rpcMessageLimitBytes, want: 1_048_576 },
  { env: "UPSTREAM_TIMEOUT_MS", value: "5000", get: (c) => c.upstreamTimeoutMs, want: 5000 },
  { env: "SHUTDOWN_GRACE_MS", value: "0", get: (c) => c.shutdownGraceMs, want: 0 },
  { env: "AGENT_MAX_LOG_BYTES", value: "65536", get: (c) => c.agents.maxLogBytes, want: 65_536 },
  { env: "AGENT_LOG_FILE_MAX_BYTES", value: "1048576", get: (c) => c.agents.logFileMaxBytes, want: 1_048_576 },
  { env: "LOG_LEVEL", value: "debug", get: (c) => c.logLevel, want: "debug" },
];

describe("every setting from the environment and from its flag", () => {
  it("the table above covers every setting, and design.md's names are all there", () => {
    const envs = Object.values(settings).map((s) => s.env);
    expect(TABLE.map((t) => t.env).sort()).toEqual([...envs].sort());
    for (const name of [
      "BIND",
      "UPSTREAM",
      "MODEL",
      "AUTH_TOKEN",
      "DISABLE_AUTH",
      "DATA_DIR",
      "DATABASE_URL",
      "QDRANT_URL",
      "QDRANT_API_KEY",
      "CODEX_BIN",
      "CODEX_PROXY_EXEC_OPTS",
      "CODEX_PROXY_DEFAULT_SANDBOX",
      "CODEX_PROXY_TIMEOUT_MS",
      "CODEX_PROXY_KEEP_WORKSPACES",
      "CODEX_PROXY_JOB_RETENTION_SECONDS",
    ]) {
      expect(envs).toContain(name);
    }
  });

  it.each(TABLE.map((t) => [t.env, t] as const))("%s", (_name, t) => {
    const fromEnv = loadConfig({ [t.env]: t.value });
    expect(t.get(fromEnv)).toEqual(t.want);
    const setting = Object.values(settings).find((s) => s.env === t.env)!;
    // (A value that starts with "-" must use the --flag=value form: parseArgs calls the other ambiguous.)
    const argv = setting.boolean
      ? [`--${setting.flag}`]
      : t.value.startsWith("-")
        ? [`--${setting.flag}=${t.value}`]
        : [`--${setting.flag}`, t.value];
    expect(t.get(loadConfig({}, argv))).toEqual(t.want);
    expect(t.get(loadConfig({}, setting.boolean ? argv : [`--${setting.flag}=${t.value}`]))).toEqual(t.want);
  });

  it("flags win over the environment", () => {
    const c = loadConfig(
      { BIND: "127.0.0.1:1111", MODEL: "env-model", LOG_LEVEL: "error", AUTH_TOKEN: "env-token-123" },
      ["--bind", "127.0.0.1:2222", "--model=flag-model", "--log-level", "warn", "--auth-token", "flag-token-456"],
    );
    expect(c.bind.port).toBe(2222);
    expect(c.model).toBe("flag-model");
    expect(c.logLevel).toBe("warn");
    expect(c.authToken).toBe("flag-token-456");
  });

  it("a backend's API key comes from <NAME>_API_KEY", () => {
    const c = loadConfig({ BACKENDS: "my-vllm=http://gpu:8000/v1", MY_VLLM_API_KEY: "k1" });
    expect(c.backends).toEqual([{ name: "my-vllm", baseUrl: "http://gpu:8000/v1", apiKey: "k1" }]);
  });

  it("exec options split like a shell would, without a shell", () => {
    const words = (raw: string) => parsers.words(raw, "CODEX_PROXY_EXEC_OPTS");
    expect(words("--skip-git-repo-check")).toEqual(["--skip-git-repo-check"]);
    expect(words(`-c model_reasoning_effort="high" -c 'sandbox_permissions=["disk-full-read-access"]'`)).toEqual([
      "-c",
      "model_reasoning_effort=high",
      "-c",
      'sandbox_permissions=["disk-full-read-access"]',
    ]);
    expect(words(String.raw`a\ b "c \"d\"" '' $(rm -rf /) ; | &&`)).toEqual([
      "a b",
      'c "d"',
      "",
      "$(rm",
      "-rf",
      "/)",
      ";",
      "|",
      "&&",
    ]);
    expect(words("  \t ")).toEqual([]);
    expect(() => words(`-c 'open`)).toThrow(ConfigError);
    expect(() => words(`-c "open`)).toThrow(/unbalanced quotes/);
  });

  it("booleans accept the usual spellings", () => {
    for (const [raw, want] of [
      ["1", true],
      ["TRUE", true],
      ["on", true],
      ["0", false],
      ["false", false],
      ["Off", false],
      ["", false],
    ] as const) {
      expect(loadConfig({ DISABLE_AUTH: raw }).disableAuth, raw).toBe(want);
    }
  });
});

describe("aliases of the seed systems", () => {
  it("CODEX_PROXY_TOKEN is AUTH_TOKEN; AUTH_TOKEN wins when both are set", () => {
    expect(loadConfig({ CODEX_PROXY_TOKEN: "alias-token-1" }).authToken).toBe("alias-token-1");
    expect(loadConfig({ CODEX_PROXY_TOKEN: "alias-token-1", AUTH_TOKEN: "main-token-22" }).authToken).toBe(
      "main-token-22",
    );
    // An empty primary does not hide the alias.
    expect(loadConfig({ CODEX_PROXY_TOKEN: "alias-token-1", AUTH_TOKEN: "" }).authToken).toBe("alias-token-1");
    // The alias satisfies the bind check like the primary does.
    expect(loadConfig({ CODEX_PROXY_TOKEN: "alias-token-1", BIND: "0.0.0.0:80" }).bind.host).toBe("0.0.0.0");
  });

  it("CODEX_PROXY_CLI is CODEX_BIN; CODEX_BIN wins", () => {
    expect(loadConfig({ CODEX_PROXY_CLI: "/usr/local/bin/codex" }).codex.bin).toBe("/usr/local/bin/codex");
    expect(loadConfig({ CODEX_PROXY_CLI: "/a/codex", CODEX_BIN: "/b/codex" }).codex.bin).toBe("/b/codex");
  });

  it("APPHUB_CODEX_DEBUG_WORKSPACES is CODEX_PROXY_KEEP_WORKSPACES", () => {
    expect(loadConfig({ APPHUB_CODEX_DEBUG_WORKSPACES: "1" }).codex.keepWorkspaces).toBe(true);
  });

  it("an error about a value set through an alias or a flag names the alias or the flag", () => {
    expect(configError({ CODEX_PROXY_TOKEN: "short" }).message).toMatch(/^invalid CODEX_PROXY_TOKEN /);
    expect(configError({ BIND: "127.0.0.1:1" }, ["--bind", "nope"]).message).toMatch(/^invalid --bind "nope"/);
    expect(configError({}, ["--rate-limit-rpm=abc"]).message).toMatch(/^invalid --rate-limit-rpm "abc"/);
  });
});

describe("invalid values: one ConfigError line naming the variable", () => {
  const cases: [Record<string, string>, string, RegExp?][] = [
    [{ BIND: "nope" }, "BIND", /host:port/],
    [{ BIND: "127.0.0.1" }, "BIND"],
    [{ BIND: "127.0.0.1:99999" }, "BIND", /0-65535/],
    [{ BIND: "127.0.0.1:-1" }, "BIND"],
    [{ BIND: "::1:3210" }, "BIND"],
    [{ BIND: "[not-ipv6]:3210" }, "BIND"],
    [{ BIND: "[127.0.0.1]:3210" }, "BIND", /IPv6/],
    [{ BIND: "local host:3210" }, "BIND"],
    [{ BIND: "a/b:3210" }, "BIND"],
    [{ BIND: "" }, "BIND"],
    [{ UPSTREAM: "not a url" }, "UPSTREAM", /not a URL/],
    [{ UPSTREAM: "ftp://ollama:21" }, "UPSTREAM"],
    [{ UPSTREAM: "postgres://db/x" }, "UPSTREAM"],
    [{ UPSTREAM: "file:///etc/passwd" }, "UPSTREAM"],
    [{ MODEL: "   " }, "MODEL", /empty/],
    [{ AUTH_TOKEN: "short" }, "AUTH_TOKEN", /at least 8/],
    [{ AUTH_TOKEN: "has a space in it" }, "AUTH_TOKEN", /spaces/],
    [{ AUTH_TOKEN: "tab\tinside-token" }, "AUTH_TOKEN"],
    [{ DISABLE_AUTH: "maybe" }, "DISABLE_AUTH", /true or false/],
    [{ DATA_DIR: " " }, "DATA_DIR"],
    [{ DATABASE_URL: "mysql://u:p@h/db" }, "DATABASE_URL", /postgres/],
    [{ QDRANT_URL: "qdrant:6333" }, "QDRANT_URL"],
    [{ CODEX_PROXY_EXEC_OPTS: `--model "o4` }, "CODEX_PROXY_EXEC_OPTS", /quotes/],
    [
      { CODEX_PROXY_DEFAULT_SANDBOX: "yolo" },
      "CODEX_PROXY_DEFAULT_SANDBOX",
      /read-only, workspace-write, danger-full-access/,
    ],
    [{ CODEX_PROXY_TIMEOUT_MS: "10s" }, "CODEX_PROXY_TIMEOUT_MS", /whole number/],
    [{ CODEX_PROXY_TIMEOUT_MS: "5" }, "CODEX_PROXY_TIMEOUT_MS"],
    [{ CODEX_PROXY_KEEP_WORKSPACES: "2" }, "CODEX_PROXY_KEEP_WORKSPACES"],
    [{ CODEX_PROXY_JOB_RETENTION_SECONDS: "-1" }, "CODEX_PROXY_JOB_RETENTION_SECONDS"],
    [{ BACKENDS: "just-a-url" }, "BACKENDS"],
    [{ BACKENDS: "Bad=http://x" }, "BACKENDS"],
    [{ BACKENDS: "ollama=http://x" }, "BACKENDS", /taken/],
    [{ BACKENDS: "a=http://x,a=http://y" }, "BACKENDS", /taken/],
    [{ BACKENDS: "a=gopher://x" }, "BACKENDS", /http/],
    [{ EMBED_MODEL: "" }, "EMBED_MODEL"],
    [{ ENDPOINT_SIMILARITY: "1.5" }, "ENDPOINT_SIMILARITY"],
    [{ ENDPOINT_SIMILARITY: "high" }, "ENDPOINT_SIMILARITY"],
    [{ ENDPOINT_SANDBOX: "nsjail" }, "ENDPOINT_SANDBOX"],
    [{ ENDPOINT_HANDLER_TIMEOUT_MS: "5" }, "ENDPOINT_HANDLER_TIMEOUT_MS"],
    [{ OLLAMA_NUM_CTX: "lots" }, "OLLAMA_NUM_CTX"],
    [{ RATE_LIMIT_RPM: "1.5" }, "RATE_LIMIT_RPM"],
    [{ CODEX_MODEL_SANDBOX: "wide-open" }, "CODEX_MODEL_SANDBOX"],
    [{ CODEX_MODELS: "gpt 5" }, "CODEX_MODELS"],
    [{ RESPONSES_HEARTBEAT_MS: "5" }, "RESPONSES_HEARTBEAT_MS"],
    [{ BODY_LIMIT_BYTES: "10" }, "BODY_LIMIT_BYTES", /1024/],
    [{ BODY_LIMIT_BYTES: "1e6" }, "BODY_LIMIT_BYTES"],
    [{ RPC_MESSAGE_LIMIT_BYTES: "99999999999999" }, "RPC_MESSAGE_LIMIT_BYTES"],
    [{ UPSTREAM_TIMEOUT_MS: "0" }, "UPSTREAM_TIMEOUT_MS"],
    [{ SHUTDOWN_GRACE_MS: "forever" }, "SHUTDOWN_GRACE_MS"],
    [{ AGENT_MAX_LOG_BYTES: "100" }, "AGENT_MAX_LOG_BYTES", /4096/],
    [{ AGENT_LOG_FILE_MAX_BYTES: "1MiB" }, "AGENT_LOG_FILE_MAX_BYTES", /whole number/],
    [{ LOG_LEVEL: "loud" }, "LOG_LEVEL", /info/],
  ];

  it.each(cases.map(([env, name, re]) => [`${name}=${JSON.stringify(Object.values(env)[0])}`, env, name, re] as const))(
    "%s",
    (_label, env, name, re) => {
      const err = configError(env);
      expect(err.message).not.toContain("\n");
      expect(err.message.length).toBeLessThan(300);
      expect(err.message).toMatch(new RegExp(`\\b${name}\\b`));
      if (re) expect(err.message).toMatch(re);
    },
  );

  it("secrets are never echoed back in the message", () => {
    const token = configError({ AUTH_TOKEN: "s3cr3t x" });
    expect(token.message).not.toContain("s3cr3t");
    const alias = configError({ CODEX_PROXY_TOKEN: "pw" });
    expect(alias.message).not.toMatch(/"pw"/);
    const db = configError({ DATABASE_URL: "mysql://admin:hunter2@db/x" });
    expect(db.message).not.toContain("hunter2");
  });

  it("unknown flags, positional arguments and missing flag values are ConfigErrors", () => {
    for (const argv of [
      ["--no-such-flag"],
      ["--bind"],
      ["serve"],
      ["--port", "80"],
      ["-x"],
      ["--disable-auth=false"],
    ]) {
      const err = configError({}, argv);
      expect(err.message, argv.join(" ")).not.toContain("\n");
      expect(err.message.length).toBeGreaterThan(0);
    }
    expect(configError({}, ["--no-such-flag"]).message).toContain("--no-such-flag");
  });
});

describe("bind safety", () => {
  it("refuses a non-loopback BIND without AUTH_TOKEN or DISABLE_AUTH", () => {
    for (const bind of [
      "0.0.0.0:3210",
      "[::]:3210",
      "192.168.1.5:80",
      "10.0.0.1:0",
      "example.com:443",
      "[fe80::1]:80",
      "[::ffff:10.0.0.1]:80",
    ]) {
      const err = configError({ BIND: bind });
      expect(err.message, bind).toMatch(/refusing to serve/);
      expect(err.message, bind).toMatch(/AUTH_TOKEN/);
      expect(err.message, bind).toMatch(/DISABLE_AUTH/);
      expect(err.message).not.toContain("\n");
      expect(configError({ BIND: bind, DISABLE_AUTH: "false" }).message).toMatch(/refusing/);
      expect(configError({}, ["--bind", bind]).message).toMatch(/refusing/);
    }
  });

  it("allows it with AUTH_TOKEN (or its alias, or the flag) or DISABLE_AUTH=true", () => {
    expect(loadConfig({ BIND: "0.0.0.0:3210", AUTH_TOKEN: "a-long-token" }).bind).toEqual({
      host: "0.0.0.0",
      port: 3210,
    });
    expect(loadConfig({ BIND: "[::]:3210", CODEX_PROXY_TOKEN: "a-long-token" }).bind).toEqual({
      host: "::",
      port: 3210,
    });
    expect(loadConfig({ BIND: "0.0.0.0:3210" }, ["--auth-token", "a-long-token"]).authToken).toBe("a-long-token");
    expect(loadConfig({ BIND: "0.0.0.0:3210", DISABLE_AUTH: "true" }).disableAuth).toBe(true);
    expect(loadConfig({}, ["--bind", "0.0.0.0:1", "--disable-auth"]).disableAuth).toBe(true);
  });

  it("accepts loopback addresses, IPv6 included, without a token", () => {
    for (const [bind, host] of [
      ["127.0.0.1:0", "127.0.0.1"],
      ["127.8.9.10:3210", "127.8.9.10"],
      ["localhost:3210", "localhost"],
      ["LOCALHOST:3210", "LOCALHOST"],
      ["[::1]:3210", "::1"],
      ["[0:0:0:0:0:0:0:1]:3210", "0:0:0:0:0:0:0:1"],
      ["[::ffff:127.0.0.1]:3210", "::ffff:127.0.0.1"],
    ] as const) {
      expect(loadConfig({ BIND: bind }).bind.host, bind).toBe(host);
    }
  });

  it("isLoopbackHost and parseBind agree on the edge cases", () => {
    expect(isLoopbackHost("127.0.0.1")).toBe(true);
    expect(isLoopbackHost("[::1]")).toBe(true);
    expect(isLoopbackHost("0:0:0:0:0:0:0:1")).toBe(true);
    expect(isLoopbackHost("::")).toBe(false);
    expect(isLoopbackHost("128.0.0.1")).toBe(false);
    expect(isLoopbackHost("localhost.evil.com")).toBe(false);
    expect(isLoopbackHost("127.0.0.1.nip.io")).toBe(false);
    expect(parseBind(" 127.0.0.1:80 ")).toEqual({ host: "127.0.0.1", port: 80 });
    expect(() => parseBind("x", "--bind")).toThrow(/^invalid --bind/);
  });
});

describe("documentation generated from the table", () => {
  it("help and the README table list every variable, alias and flag", () => {
    const help = settingsHelp();
    const table = configTableMarkdown();
    for (const s of Object.values(settings)) {
      expect(help).toContain(`--${s.flag}`);
      expect(table).toContain(`\`${s.env}\``);
      for (const a of s.aliases ?? []) {
        expect(help).toContain(a);
        expect(table).toContain(`\`${a}\``);
      }
    }
  });
});
