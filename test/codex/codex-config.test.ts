// `agentgate codex-config`: the rendered TOML, the merge into a user's config.toml (their settings kept,
// ours replaced, a backup, invalid TOML refused) and the command's output and exit codes as a real
// process. That Codex accepts every emitted key is checked in real-codex-config.test.ts.
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parse } from "smol-toml";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  baseUrlForBind,
  codexConfigTable,
  mergeCodexConfig,
  renderCodexConfig,
  writeCodexConfig,
} from "../../src/codex/codex-config.js";
import { ConfigError } from "../../src/config/config-error.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const BIN = path.join(ROOT, "bin/agentgate.js");
const OPTS = { baseUrl: "http://127.0.0.1:3210/v1", model: "qwen3:8b" };

const OURS = {
  model_provider: "agentgate",
  model: "qwen3:8b",
  web_search: "disabled",
  model_providers: {
    agentgate: {
      name: "agentgate",
      base_url: "http://127.0.0.1:3210/v1",
      wire_api: "responses",
      env_key: "AGENTGATE_API_KEY",
      env_key_instructions:
        "Set AGENTGATE_API_KEY to agentgate's AUTH_TOKEN, or to any non-empty value when agentgate runs without one.",
      model_catalog_url: "http://127.0.0.1:3210/v1/models",
    },
  },
};

const USER_CONFIG = `# my settings
model = "gpt-5"
model_provider = "openai-custom"
approval_policy = "never"

[model_providers.openai-custom]
name = "OpenAI via proxy"
base_url = "https://proxy.example/v1"
env_key = "PROXY_KEY"

[model_providers.agentgate]
name = "old"
base_url = "http://old.example/v1"
http_headers = { "X-Old" = "1" }

[shell_environment_policy]
inherit = "core"
`;

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), "agentgate-codex-config-"));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

describe("renderCodexConfig", () => {
  it("is valid TOML with our provider, the catalog url in the provider table and web search off", () => {
    const text = renderCodexConfig(OPTS);
    expect(parse(text)).toEqual(OURS);
    // The comments say the key must be set even without AUTH_TOKEN.
    expect(text).toMatch(/^# .*AGENTGATE_API_KEY/m);
    expect(text).toMatch(/unset or empty/);
    expect(text).toMatch(/without AUTH_TOKEN/);
    expect(text).toMatch(/web_search = "disabled": .*hosted tool/);
  });

  it("takes the env key, provider id, base url (trailing slash dropped) and provider tuning", () => {
    const t = codexConfigTable({
      baseUrl: "https://gate.example:8443/v1/",
      model: "llama3.2",
      envKey: "GATE_KEY",
      providerId: "gate_2",
      provider: { stream_idle_timeout_ms: 5_000, request_max_retries: 1 },
    });
    expect(t.model_provider).toBe("gate_2");
    expect((t.model_providers as Record<string, unknown>).gate_2).toMatchObject({
      base_url: "https://gate.example:8443/v1",
      model_catalog_url: "https://gate.example:8443/v1/models",
      env_key: "GATE_KEY",
      stream_idle_timeout_ms: 5_000,
      request_max_retries: 1,
    });
  });

  it("refuses what Codex would reject", () => {
    const bad = [
      { ...OPTS, baseUrl: "ftp://x/v1" },
      { ...OPTS, baseUrl: "not a url" },
      { ...OPTS, model: " " },
      { ...OPTS, envKey: "1BAD-NAME" },
      { ...OPTS, providerId: "has space" },
      { ...OPTS, providerId: "openai" },
      { ...OPTS, providerId: "ollama" },
    ];
    for (const o of bad) expect(() => renderCodexConfig(o), JSON.stringify(o)).toThrow(ConfigError);
    expect(() => renderCodexConfig({ ...OPTS, providerId: "ollama" })).toThrow(/reserves it for a built-in provider/);
  });
});

describe("baseUrlForBind", () => {
  it("dials loopback for wildcard binds and brackets IPv6", () => {
    expect(baseUrlForBind({ host: "127.0.0.1", port: 3210 })).toBe("http://127.0.0.1:3210/v1");
    expect(baseUrlForBind({ host: "0.0.0.0", port: 80 })).toBe("http://127.0.0.1:80/v1");
    expect(baseUrlForBind({ host: "::", port: 3210 })).toBe("http://[::1]:3210/v1");
    expect(baseUrlForBind({ host: "::1", port: 3210 })).toBe("http://[::1]:3210/v1");
    expect(baseUrlForBind({ host: "gate.lan", port: 3210 })).toBe("http://gate.lan:3210/v1");
    expect(() => baseUrlForBind({ host: "127.0.0.1", port: 0 })).toThrow(/--base-url/);
  });
});

describe("mergeCodexConfig", () => {
  it("keeps the user's other settings and providers and replaces only ours", () => {
    const merged = parse(mergeCodexConfig(USER_CONFIG, OPTS)) as Record<string, any>;
    expect(merged.approval_policy).toBe("never");
    expect(merged.shell_environment_policy).toEqual({ inherit: "core" });
    expect(merged.model_providers["openai-custom"]).toEqual({
      name: "OpenAI via proxy",
      base_url: "https://proxy.example/v1",
      env_key: "PROXY_KEY",
    });
    // Our table is replaced whole (the stale http_headers are gone), our top-level keys win.
    expect(merged.model_providers.agentgate).toEqual(OURS.model_providers.agentgate);
    expect(merged).toMatchObject({ model_provider: "agentgate", model: "qwen3:8b", web_search: "disabled" });
  });

  it("is the rendered config for an empty file, and stable when run again", () => {
    expect(parse(mergeCodexConfig("", OPTS))).toEqual(OURS);
    const once = mergeCodexConfig(USER_CONFIG, OPTS);
    expect(mergeCodexConfig(once, OPTS)).toBe(once);
  });

  it("refuses a file that is not valid TOML, naming the file and line", () => {
    expect(() => mergeCodexConfig('model = "x"\nbroken = \n', OPTS, "/h/config.toml")).toThrow(
      /^refusing to change \/h\/config\.toml: it is not valid TOML \(line 2\)/,
    );
    expect(() => mergeCodexConfig("model_providers = 3\n", OPTS)).toThrow(/model_providers is not a table/);
  });
});

describe("writeCodexConfig", () => {
  it("creates config.toml (and the directory) when there is none, without a backup", () => {
    const home = path.join(tmp, "fresh", "codex");
    const r = writeCodexConfig(home, OPTS);
    expect(r).toMatchObject({ path: path.join(home, "config.toml"), changed: true, backup: undefined });
    expect(readFileSync(r.path, "utf8")).toBe(renderCodexConfig(OPTS));
    expect(existsSync(`${r.path}.bak`)).toBe(false);
  });

  it("merges into an existing file, keeps the original as config.toml.bak, and keeps it on an identical rerun", () => {
    const home = path.join(tmp, "existing");
    mkdirSync(home);
    const file = path.join(home, "config.toml");
    writeFileSync(file, USER_CONFIG);
    const r = writeCodexConfig(home, OPTS);
    expect(r.backup).toBe(`${file}.bak`);
    expect(readFileSync(`${file}.bak`, "utf8")).toBe(USER_CONFIG);
    expect((parse(readFileSync(file, "utf8")) as Record<string, unknown>).approval_policy).toBe("never");
    expect(readFileSync(file, "utf8")).toBe(r.text);

    const again = writeCodexConfig(home, OPTS);
    expect(again.changed).toBe(false);
    expect(readFileSync(`${file}.bak`, "utf8")).toBe(USER_CONFIG);
  });

  it("leaves an invalid file untouched and writes no backup", () => {
    const home = path.join(tmp, "invalid");
    mkdirSync(home);
    const file = path.join(home, "config.toml");
    writeFileSync(file, "[unclosed\n");
    expect(() => writeCodexConfig(home, OPTS)).toThrow(ConfigError);
    expect(readFileSync(file, "utf8")).toBe("[unclosed\n");
    expect(existsSync(`${file}.bak`)).toBe(false);
  });
});

function run(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, "codex-config", ...args],
      // Only what the process needs: nothing (CODEX_HOME, BIND) leaks in from the test runner.
      { cwd: ROOT, env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: tmp, ...env }, timeout: 20_000 },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: unknown }).code as number | null) : 0;
        resolve({ code: typeof code === "number" ? code : null, stdout, stderr });
      },
    );
  });
}

describe("agentgate codex-config (process)", () => {
  it("prints the config for agentgate's own BIND and MODEL", async () => {
    const r = await run([], { BIND: "0.0.0.0:4321", MODEL: "llama3.2:3b", AUTH_TOKEN: "a-long-secret-token" });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const t = parse(r.stdout) as Record<string, any>;
    expect(t.model).toBe("llama3.2:3b");
    expect(t.model_providers.agentgate.base_url).toBe("http://127.0.0.1:4321/v1");
    expect(r.stdout).not.toContain("a-long-secret-token");
  });

  it("takes --base-url, --model, --env-key and --provider-id", async () => {
    const r = await run([
      "--base-url",
      "http://gate.lan:9000/v1",
      "--model",
      "gpt-oss:20b",
      "--env-key",
      "GATE_KEY",
      "--provider-id",
      "gate",
    ]);
    expect(r.code).toBe(0);
    const t = parse(r.stdout) as Record<string, any>;
    expect(t).toMatchObject({ model_provider: "gate", model: "gpt-oss:20b" });
    expect(t.model_providers.gate).toMatchObject({ base_url: "http://gate.lan:9000/v1", env_key: "GATE_KEY" });
  });

  it("--write merges into $CODEX_HOME/config.toml (or --codex-home) and says where", async () => {
    const home = path.join(tmp, "cli-home");
    mkdirSync(home);
    writeFileSync(path.join(home, "config.toml"), USER_CONFIG);
    const r = await run(["--write"], { CODEX_HOME: home });
    expect(r.code, r.stderr).toBe(0);
    const file = path.join(home, "config.toml");
    expect(r.stdout).toContain(`# Wrote ${file} (the previous file, comments included, is kept as ${file}.bak)`);
    expect(parse(r.stdout)).toEqual(parse(readFileSync(file, "utf8")));
    expect(readFileSync(`${file}.bak`, "utf8")).toBe(USER_CONFIG);

    const other = path.join(tmp, "cli-other-home");
    const r2 = await run(["--write", "--codex-home", other], { CODEX_HOME: home });
    expect(r2.code, r2.stderr).toBe(0);
    expect(r2.stdout).toContain(`# Wrote ${path.join(other, "config.toml")}:`);
    expect(parse(readFileSync(path.join(other, "config.toml"), "utf8"))).toEqual(OURS);
  });

  it("exits 2 with one stderr line for bad flags and values, writing nothing", async () => {
    const invalidHome = path.join(tmp, "cli-invalid");
    mkdirSync(invalidHome);
    writeFileSync(path.join(invalidHome, "config.toml"), "a = = 1\n");
    const cases: { args: string[]; env?: Record<string, string>; match: RegExp }[] = [
      { args: ["--no-such-flag"], match: /--no-such-flag/ },
      { args: ["--model"], match: /--model/ },
      { args: ["stray"], match: /stray/ },
      { args: ["--base-url", "ftp://x"], match: /invalid --base-url/ },
      { args: ["--provider-id", "openai"], match: /reserves it/ },
      { args: ["--env-key", "bad key"], match: /invalid --env-key/ },
      { args: ["--codex-home", tmp], match: /--codex-home needs --write/ },
      { args: [], env: { BIND: "127.0.0.1:0" }, match: /port 0/ },
      { args: [], env: { BIND: "nonsense" }, match: /invalid BIND/ },
      { args: ["--write", "--codex-home", invalidHome], match: /refusing to change .*not valid TOML/ },
    ];
    const results = await Promise.all(cases.map((c) => run(c.args, c.env)));
    results.forEach((r, i) => {
      const c = cases[i]!;
      expect(r.code, `${c.args.join(" ")}: ${r.stderr}`).toBe(2);
      const lines = r.stderr.split("\n").filter((l) => l.length > 0);
      expect(lines, c.args.join(" ")).toHaveLength(1);
      expect(lines[0]).toMatch(/^agentgate: /);
      expect(lines[0]).toMatch(c.match);
      expect(r.stdout).toBe("");
    });
    expect(readFileSync(path.join(invalidHome, "config.toml"), "utf8")).toBe("a = = 1\n");
    expect(existsSync(path.join(invalidHome, "config.toml.bak"))).toBe(false);
  });

  it("reports a file-system failure in one line with exit 1", async () => {
    const notADir = path.join(tmp, "plain-file");
    writeFileSync(notADir, "");
    const r = await run(["--write", "--codex-home", path.join(notADir, "codex")]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^agentgate: cannot write the Codex config: ENOTDIR.*\n$/);
    expect(r.stdout).toBe("");
  });

  it("is in agentgate help", async () => {
    const r = await new Promise<string>((resolve) =>
      execFile(process.execPath, [BIN, "help"], { cwd: ROOT }, (_e, stdout) => resolve(stdout)),
    );
    expect(r).toMatch(/agentgate codex-config/);
    expect(r).toMatch(/--write/);
  });
});
