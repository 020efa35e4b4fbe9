/**
 * The `codex` model through the real gateway and the official `openai` SDK, with CODEX_BIN pointing at
 * test/doubles/fake-codex.mjs (scripted per test through FAKE_CODEX_SCRIPT; every run logged).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { fakeCodexInvocations, writeFakeCodexScript } from "../doubles/fake-codex-files.js";
import { createAgentgateClients, Role } from "../../clients/index.js";
import { getCodexThread } from "../../src/backends/codex/thread-store.js";
import { startGateway, type GatewayHarness } from "../support/gateway-harness.js";

const FAKE = fileURLToPath(new URL("../doubles/fake-codex.mjs", import.meta.url));
// Outside the temporary directory: the backend (like Codex) refuses a CODEX_HOME there.
const HOMES = fileURLToPath(new URL("../../node_modules/.cache/agentgate-test-codex/", import.meta.url));

let h: GatewayHarness;
let client: OpenAI;
let dataDir: string;
let codexHome: string;
let logFile: string;
let scriptFile: string;

beforeAll(async () => {
  dataDir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-model-"));
  fs.mkdirSync(HOMES, { recursive: true });
  codexHome = fs.mkdtempSync(HOMES);
  logFile = path.join(dataDir, "invocations.jsonl");
  scriptFile = path.join(dataDir, "script.json");
  // The backend passes the gateway's environment through to Codex; its TMPDIR must not contain
  // CODEX_HOME, also when the checkout itself lies under /tmp.
  const codexTmp = path.join(HOMES, "tmp");
  fs.mkdirSync(codexTmp, { recursive: true });
  vi.stubEnv("TMPDIR", codexTmp);
  vi.stubEnv("CODEX_HOME", codexHome);
  vi.stubEnv("FAKE_CODEX_LOG", logFile);
  vi.stubEnv("FAKE_CODEX_SCRIPT", scriptFile);
  h = await startGateway({ env: { CODEX_BIN: FAKE, DATA_DIR: dataDir, CODEX_MODELS: "gpt-5.5,o3" } });
  client = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: "x", maxRetries: 0, timeout: 15_000 });
});

afterAll(async () => {
  await h?.close();
  vi.unstubAllEnvs();
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.rmSync(codexHome, { recursive: true, force: true });
});

beforeEach(() => {
  fs.rmSync(logFile, { force: true });
});

const script = (...turns: Record<string, unknown>[]) => writeFakeCodexScript(scriptFile, ...turns);
const invocations = () => fakeCodexInvocations(logFile);

describe("the codex model over /v1/chat/completions", () => {
  it("answers a non-streaming chat with Codex's message, reasoning and usage", async () => {
    script({
      reasoning: "Considering.",
      messages: ["Hello from Codex."],
      usage: { input_tokens: 40, cached_input_tokens: 8, output_tokens: 6, reasoning_output_tokens: 2 },
    });
    const res = await client.chat.completions.create({
      model: "codex",
      messages: [
        { role: "developer", content: "Be brief." },
        { role: "user", content: "Say hello" },
      ],
    });
    expect(res.model).toBe("codex");
    expect(res.choices[0]!.message.content).toBe("Hello from Codex.");
    expect((res.choices[0]!.message as unknown as Record<string, unknown>).reasoning_content).toBe("Considering.");
    expect(res.choices[0]!.finish_reason).toBe("stop");
    expect(res.usage).toMatchObject({ prompt_tokens: 40, completion_tokens: 6, total_tokens: 46 });
    const [run] = invocations();
    expect(run!.argv).toEqual([
      "exec",
      "--json",
      "--skip-git-repo-check",
      "-s",
      "read-only",
      "--ephemeral",
      "--",
      "Be brief.\n\nUser: Say hello",
    ]);
    expect(run!.stdin).toBe("devnull");
    expect(run!.cwd).toBe(path.join(dataDir, "codex-model"));
  });

  it("streams the answer as chat.completion.chunk events", async () => {
    script({ messages: ["Part one.", "Part two."] });
    const stream = await client.chat.completions.create({
      model: "codex/gpt-5.5",
      messages: [{ role: "user", content: "Two parts please" }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let content = "";
    let finish: string | null | undefined;
    let usage: unknown;
    for await (const chunk of stream) {
      content += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
    }
    expect(content).toBe("Part one.\n\nPart two.");
    expect(finish).toBe("stop");
    expect(usage).toMatchObject({ prompt_tokens: 50, completion_tokens: 5, total_tokens: 55 });
    expect(invocations()[0]!.argv).toContain("gpt-5.5");
    expect(invocations()[0]!.argv.slice(5, 7)).toEqual(["-m", "gpt-5.5"]);
  });

  it("continues a Codex thread under a conversation_id, sending only the new message", async () => {
    script(
      { messages: ["Noted: 7."], usage: { input_tokens: 100, output_tokens: 10 } },
      { messages: ["It was 7."], usage: { input_tokens: 250, output_tokens: 12 } },
    );
    const first = await client.chat.completions.create({
      model: "codex",
      messages: [{ role: "user", content: "Remember 7" }],
      conversation_id: "chat-42",
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(first.choices[0]!.message.content).toBe("Noted: 7.");
    const thread = await getCodexThread(h.gate.db, "chat-42");
    expect(thread?.threadId).toMatch(/^[0-9a-f-]{36}$/);

    const second = await client.chat.completions.create({
      model: "codex",
      messages: [
        { role: "user", content: "Remember 7" },
        { role: "assistant", content: "Noted: 7." },
        { role: "user", content: "What number?" },
      ],
      conversation_id: "chat-42",
    } as OpenAI.ChatCompletionCreateParamsNonStreaming);
    expect(second.choices[0]!.message.content).toBe("It was 7.");
    // This turn's tokens, not the thread's running total (350/22).
    expect(second.usage).toMatchObject({ prompt_tokens: 250, completion_tokens: 12, total_tokens: 262 });
    expect(invocations()[1]!.argv.slice(-4)).toEqual(["resume", thread!.threadId, "--", "What number?"]);
  });

  it("returns Codex's failure as an OpenAI error object with a clear message", async () => {
    script({
      fail: "unexpected status 401 Unauthorized: Missing bearer or basic authentication in header, url: https://api.openai.com/v1/responses",
    });
    const err = await client.chat.completions
      .create({ model: "codex", messages: [{ role: "user", content: "hi" }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    const api = err as InstanceType<typeof OpenAI.APIError>;
    expect(api.status).toBe(502);
    expect(api.error).toMatchObject({ type: "api_error", code: "codex_not_logged_in" });
    expect(api.message).toContain("run `codex login`");

    // Streaming: the failure comes before the first event, so it keeps its HTTP status.
    script({ fail: "context window exceeded" });
    const streamErr = await client.chat.completions
      .create({ model: "codex", messages: [{ role: "user", content: "hi" }], stream: true })
      .then(async (s) => {
        for await (const _ of s) void _;
      })
      .catch((e: unknown) => e);
    expect(streamErr).toBeInstanceOf(OpenAI.APIError);
    expect((streamErr as InstanceType<typeof OpenAI.APIError>).message).toContain(
      "Codex failed: context window exceeded",
    );
  });

  it("rejects client tools with a 400", async () => {
    const err = await client.chat.completions
      .create({
        model: "codex",
        messages: [{ role: "user", content: "hi" }],
        tools: [{ type: "function", function: { name: "f", parameters: { type: "object" } } }],
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.APIError>).message).toContain("client-supplied tools are not supported");
    expect(invocations()).toHaveLength(0);
  });
});

describe("the codex model over /v1/responses", () => {
  it("streams Codex's answer as Responses events and keeps a conversation's thread", async () => {
    script(
      { reasoning: "Thinking.", messages: ["First answer."], usage: { input_tokens: 30, output_tokens: 3 } },
      { messages: ["Second answer."], usage: { input_tokens: 80, output_tokens: 5 } },
    );
    const stream = client.responses.stream({ model: "codex", input: "Start", conversation: "resp-7" });
    const final = await stream.finalResponse();
    expect(final.output.map((o) => o.type)).toEqual(["reasoning", "message"]);
    expect(final.output_text).toBe("First answer.");
    expect(final.usage).toMatchObject({ input_tokens: 30, output_tokens: 3, total_tokens: 33 });
    const thread = await getCodexThread(h.gate.db, "resp-7");
    expect(thread?.threadId).toBeTruthy();

    const second = await client.responses.create({
      model: "codex",
      conversation: "resp-7",
      input: [
        { role: "user", content: "Start" },
        { role: "assistant", content: "First answer." },
        { role: "user", content: "Go on" },
      ],
    });
    expect(second.output_text).toBe("Second answer.");
    expect(invocations()[1]!.argv.slice(-4)).toEqual(["resume", thread!.threadId, "--", "Go on"]);
  });
});

describe("the codex model over Connect", () => {
  it("keeps a thread under ChatRequest.conversation_id and reports cached and reasoning tokens", async () => {
    script({
      messages: ["Via RPC."],
      usage: { input_tokens: 50, cached_input_tokens: 20, output_tokens: 7, reasoning_output_tokens: 3 },
    });
    const ag = createAgentgateClients({ baseUrl: h.url, httpVersion: "2" });
    const res = await ag.completion.chat({
      model: "codex",
      conversationId: "rpc-conv",
      messages: [{ role: Role.USER, content: "Hello over RPC" }],
    });
    expect(res.message?.content).toBe("Via RPC.");
    expect(res.usage).toMatchObject({
      promptTokens: 50,
      cachedPromptTokens: 20,
      completionTokens: 7,
      reasoningTokens: 3,
    });
    expect((await getCodexThread(h.gate.db, "rpc-conv"))?.threadId).toBeTruthy();
  });
});

describe("GET /v1/models", () => {
  it("lists codex and codex/<slug> next to the Ollama models", async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    expect(ids).toEqual(expect.arrayContaining(["codex", "codex/gpt-5.5", "codex/o3"]));
    const codex = (await client.models.retrieve("codex/o3")) as unknown as Record<string, unknown>;
    expect(codex.id).toBe("codex/o3");
  });
});
