/**
 * The request path the user asked for, end to end: the real Codex CLI (bundled @openai/codex
 * 0.169.0, `codex exec --json`) -> agentgate's /v1/responses -> the Ollama double, with the
 * config `agentgate codex-config` writes (catalog at /v1/models). The double is scripted as a
 * model would answer: plain text, an exec_command call, an apply_patch edit, malformed tool
 * arguments, a slow first token, a mid-stream failure; agentgate down-stream is the real thing.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { renderCodexConfig } from "../../src/codex/codex-config.js";
import { startGateway, type GatewayHarness } from "../support/gateway-harness.js";
import { codexCliAvailable, runCodexExec, type CodexExecResult } from "../support/real-codex.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const WORK = path.join(ROOT, "node_modules/.cache/agentgate-codex-e2e");
const MODEL = "qwen3:8b";
const TOKEN = "codex-e2e-secret-token";

type Body = Record<string, any>;

let h: GatewayHarness;
let cwd: string;
let n = 0;

const available = codexCliAvailable();

beforeAll(async () => {
  if (!available) return;
  h = await startGateway({ env: { MODEL, AUTH_TOKEN: TOKEN, RESPONSES_HEARTBEAT_MS: "500" } });
});

afterAll(async () => {
  await h?.close();
  rmSync(WORK, { recursive: true, force: true });
});

beforeEach(() => {
  if (!available) return;
  h.ollama.reset();
  cwd = path.join(WORK, `ws-${process.pid}-${++n}`);
  mkdirSync(cwd, { recursive: true });
});

const chatBodies = (): Body[] => h.ollama.requests.filter((r) => r.path === "/api/chat").map((r) => r.body as Body);
const items = (r: CodexExecResult, type: string) =>
  r.events.filter((e) => e.type === "item.completed" && e.item?.type === type).map((e) => e.item!);

function codex(prompt: string, extra: Partial<Parameters<typeof runCodexExec>[0]> = {}) {
  return runCodexExec({
    baseUrl: `${h.url}/v1`,
    apiKey: TOKEN,
    model: MODEL,
    prompt,
    cwd,
    args: ["-s", "workspace-write"],
    provider: { request_max_retries: 0, stream_max_retries: 1 },
    timeoutMs: 90_000,
    ...extra,
  });
}

function expectNoMetadataWarning(r: CodexExecResult) {
  expect(`${r.stdout}\n${r.stderr}`).not.toMatch(/Model metadata for .* not found/);
}

describe.runIf(available)("the real Codex CLI through agentgate", () => {
  it("(a) answers text: the final agent message arrives, with the catalog's metadata and tools", async () => {
    h.ollama.enqueue({ content: ["Hello from ", "the local model."], promptEvalCount: 900, evalCount: 6 });
    const r = await codex("Say hello.");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.lastAgentMessage).toBe("Hello from the local model.");
    expect(r.events.find((e) => e.type === "turn.completed")?.usage).toMatchObject({
      input_tokens: 900,
      output_tokens: 6,
    });
    expectNoMetadataWarning(r);
    // The catalog made Codex offer the freeform apply_patch tool, shown to the model as a function.
    const body = chatBodies()[0]!;
    const names = (body.tools as Body[]).map((t) => t.function.name);
    expect(names).toContain("exec_command");
    expect(names).toContain("apply_patch");
    expect(body.options.num_ctx).toBe(65_536);
    // Our short base instructions replaced Codex's 17 KB prompt as the first system message.
    expect(body.messages[0].role).toBe("system");
    expect(body.messages[0].content.length).toBeLessThan(6_000);
  });

  it("(b) runs exec_command to create a file, then completes the turn", async () => {
    h.ollama.enqueue(
      { toolCalls: [{ name: "exec_command", arguments: { cmd: "printf made-by-codex > created.txt" } }] },
      { content: ["Created created.txt."] },
    );
    const r = await codex("Create created.txt containing made-by-codex.");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(path.join(cwd, "created.txt"), "utf8")).toBe("made-by-codex");
    expect(items(r, "command_execution")[0]).toMatchObject({ exit_code: 0, status: "completed" });
    expect(r.lastAgentMessage).toBe("Created created.txt.");
    // The second request replayed the call and its output as Ollama tool messages.
    const replay = chatBodies()[1]!.messages as Body[];
    const call = replay.find((m) => m.tool_calls)!;
    expect(call.tool_calls[0].function).toEqual({
      name: "exec_command",
      arguments: { cmd: "printf made-by-codex > created.txt" },
    });
    expect(replay.find((m) => m.role === "tool")).toMatchObject({ tool_name: "exec_command" });
  });

  it("(c) applies an apply_patch edit sent as a custom tool call", async () => {
    writeFileSync(path.join(cwd, "notes.txt"), "alpha\nold line\nomega\n");
    const patch = [
      "*** Begin Patch",
      "*** Update File: notes.txt",
      "@@",
      " alpha",
      "-old line",
      "+new line",
      " omega",
      "*** Add File: added.txt",
      "+fresh",
      "*** End Patch",
      "",
    ].join("\n");
    h.ollama.enqueue({ toolCalls: [{ name: "apply_patch", arguments: { input: patch } }] }, { content: ["Patched."] });
    const r = await codex("Replace 'old line' with 'new line' in notes.txt and add added.txt.");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(readFileSync(path.join(cwd, "notes.txt"), "utf8")).toBe("alpha\nnew line\nomega\n");
    expect(readFileSync(path.join(cwd, "added.txt"), "utf8")).toBe("fresh\n");
    const changes = items(r, "file_change").flatMap((i) => i.changes as { path: string; kind: string }[]);
    expect(changes.map((c) => [path.basename(c.path), c.kind]).sort()).toEqual([
      ["added.txt", "add"],
      ["notes.txt", "update"],
    ]);
    expect(r.lastAgentMessage).toBe("Patched.");
    expectNoMetadataWarning(r);
  });

  it("recovers from a model's malformed tool-call arguments: Codex tells the model, the turn completes", async () => {
    h.ollama.enqueue(
      { toolCalls: [{ name: "exec_command", arguments: '{"cmd": "ls' }] },
      { content: ["Sorry, done now."] },
    );
    const r = await codex("List the files.");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.lastAgentMessage).toBe("Sorry, done now.");
    const tool = (chatBodies()[1]!.messages as Body[]).find((m) => m.role === "tool")!;
    expect(tool.content).toMatch(/pars|argument|invalid/i);
  });

  it("keeps waiting through a first token slower than 30 s and than its idle timeout (JSON heartbeats)", async () => {
    // A model load can take longer than Codex's stream idle timeout (ollama/ollama#14600); here the
    // timeout is 10 s and the first token comes after 31 s: only agentgate's heartbeats keep it open.
    h.ollama.enqueue({ content: ["Finally loaded."], firstByteDelayMs: 31_000 });
    const r = await codex("Hi", {
      provider: { request_max_retries: 0, stream_max_retries: 0, stream_idle_timeout_ms: 10_000 },
    });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.lastAgentMessage).toBe("Finally loaded.");
    expect(chatBodies()).toHaveLength(1); // not retried
  }, 60_000);

  it("an upstream that is down fails the turn at once with a clear message, without retries", async () => {
    await h.ollama.down();
    try {
      const started = Date.now();
      const r = await codex("Hi", { provider: {} }); // Codex's default retry settings
      expect(r.exitCode).not.toBe(0);
      expect(Date.now() - started).toBeLessThan(20_000);
      const failure = r.events.find((e) => e.type === "turn.failed" || e.type === "error");
      expect(JSON.stringify(failure)).toMatch(/unreachable/);
    } finally {
      await h.ollama.up();
    }
  });

  it("an upstream failing mid-stream ends in response.failed, which Codex retries into a completed turn", async () => {
    h.ollama.enqueue(
      { content: ["par", "tial"], midStreamError: { afterChunks: 1, message: "runner crashed" } },
      { content: ["Second try worked."] },
    );
    const r = await codex("Hi");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.lastAgentMessage).toBe("Second try worked.");
    expect(chatBodies()).toHaveLength(2);
  });

  it("refuses a wrong key with 401, and Codex reports it", async () => {
    const r = await codex("Hi", { apiKey: "wrong-token-value" });
    expect(r.exitCode).not.toBe(0);
    expect(`${r.stdout}${r.stderr}`).toMatch(/401/);
    expect(chatBodies()).toHaveLength(0);
  });
});

describe.runIf(available)("the codex model, end to end: agentgate -> real Codex CLI -> agentgate -> Ollama", () => {
  // agentgate's `codex` model runs the real CLI, whose provider (written by codex-config) is this same
  // agentgate: a chat completion for "codex" becomes a Codex turn whose model calls go to the double.
  let home: string;
  let client: OpenAI;

  beforeAll(() => {
    const run = path.join(WORK, `codex-model-${process.pid}`);
    home = path.join(run, "home");
    mkdirSync(home, { recursive: true });
    mkdirSync(path.join(run, "tmp"), { recursive: true });
    writeFileSync(
      path.join(home, "config.toml"),
      renderCodexConfig({
        baseUrl: `${h.url}/v1`,
        model: MODEL,
        provider: { request_max_retries: 0, stream_max_retries: 0 },
      }),
    );
    // The backend passes agentgate's environment on to Codex.
    vi.stubEnv("CODEX_HOME", home);
    vi.stubEnv("TMPDIR", path.join(run, "tmp"));
    vi.stubEnv("AGENTGATE_API_KEY", TOKEN);
    client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: TOKEN, maxRetries: 0, timeout: 90_000 });
  });

  afterAll(() => {
    vi.unstubAllEnvs();
  });

  it("answers /v1/chat/completions, non-streaming and streaming, through a real Codex turn", async () => {
    h.ollama.enqueue({ content: ["Hello through ", "two agentgates."], promptEvalCount: 700, evalCount: 9 });
    const res = await client.chat.completions.create({
      model: "codex",
      messages: [{ role: "user", content: "Say hello." }],
    });
    expect(res.choices[0]!.message.content).toBe("Hello through two agentgates.");
    expect(res.usage).toMatchObject({ prompt_tokens: 700, completion_tokens: 9 });
    // The inner request was Codex's, with the catalog's instructions and the user's prompt in it.
    const inner = chatBodies()[0]!;
    expect(JSON.stringify(inner.messages)).toContain("Say hello.");

    h.ollama.enqueue({ content: ["Streamed ", "answer."] });
    const stream = await client.chat.completions.create({
      model: "codex",
      messages: [{ role: "user", content: "Stream it." }],
      stream: true,
    });
    let text = "";
    for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
    expect(text).toBe("Streamed answer.");
  });
});

describe.runIf(available)("codex --oss pointed at agentgate as its Ollama", () => {
  it("checks /api/version and /api/tags, then runs the turn through /v1/responses", async () => {
    // --oss uses Codex's built-in Ollama provider, which sends no key: an agentgate without AUTH_TOKEN.
    const g = await startGateway({ env: { MODEL }, ollama: h.ollama });
    try {
      h.ollama.enqueue({ content: ["Hello, oss."] });
      const r = await runCodexExec({
        baseUrl: `${g.url}/v1`,
        apiKey: "unused",
        model: MODEL,
        prompt: "Say hello.",
        cwd,
        args: ["--oss", "--local-provider", "ollama", "-m", MODEL],
        env: { CODEX_OSS_BASE_URL: `${g.url}/v1` },
        timeoutMs: 60_000,
      });
      expect(r.exitCode, r.stderr).toBe(0);
      expect(r.lastAgentMessage).toBe("Hello, oss.");
      const seen = g.logs.filter((l) => l.msg === "request").map((l) => `${l.method} ${l.url} ${l.status}`);
      expect(seen).toEqual(
        expect.arrayContaining(["GET /api/version 200", "GET /api/tags 200", "POST /v1/responses 200"]),
      );
    } finally {
      await g.close();
    }
  });
});

// The CLI is an optional dependency (a 404 MB platform binary); on the machines this project is
// tested on (Linux x64) it must be there, or the acceptance above silently would not run.
it.runIf(process.platform === "linux" && process.arch === "x64")("the bundled Codex CLI is installed", () => {
  expect(available, `run npm install: ${path.join(ROOT, "node_modules/@openai/codex")} is missing`).toBe(true);
});
