/**
 * The codex gateway's POST /completion through the real gateway, with CODEX_BIN pointing at
 * test/doubles/fake-codex.mjs (scripted per test through FAKE_CODEX_SCRIPT; every run logged).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { fakeCodexInvocations, writeFakeCodexScript } from "../doubles/fake-codex-files.js";
import { startGateway, type GatewayHarness } from "../support/gateway-harness.js";

const FAKE = fileURLToPath(new URL("../doubles/fake-codex.mjs", import.meta.url));
const TOKEN = "gateway-completion-suite-token";

let h: GatewayHarness;
let dir: string;
let logFile: string;
let scriptFile: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "gateway-completion-"));
  logFile = path.join(dir, "invocations.jsonl");
  scriptFile = path.join(dir, "script.json");
  writeFakeCodexScript(scriptFile, {});
  // The job runner hands process.env to Codex.
  vi.stubEnv("CODEX_HOME", path.join(dir, "codex-home"));
  vi.stubEnv("FAKE_CODEX_LOG", logFile);
  vi.stubEnv("FAKE_CODEX_SCRIPT", scriptFile);
  h = await startGateway({ env: { CODEX_BIN: FAKE, DATA_DIR: path.join(dir, "data"), AUTH_TOKEN: TOKEN } });
});

afterAll(async () => {
  await h?.close();
  vi.unstubAllEnvs();
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  fs.rmSync(logFile, { force: true });
});

const script = (...turns: Record<string, unknown>[]) => writeFakeCodexScript(scriptFile, ...turns);

async function completion(body: unknown, token: string | null = TOKEN) {
  const res = await fetch(`${h.url}/completion`, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

describe("POST /completion", () => {
  it("runs the conversation as System:/User:/Assistant: blocks and answers the gateway's shape", async () => {
    script({
      messages: ["Hello from Codex."],
      usage: { input_tokens: 40, cached_input_tokens: 8, output_tokens: 6, reasoning_output_tokens: 2 },
    });
    const r = await completion({
      system_prompt: "You are terse.",
      model: "gpt-5.5",
      timeout_ms: 20_000,
      idle_timeout_ms: 10_000,
      messages: [
        { role: "system", content: "Answer in English." },
        { role: "user", content: "Say hello" },
        { role: "assistant", content: "Hi?" },
        {
          role: "user",
          content: [
            { type: "text", text: "Properly, " },
            { type: "text", text: "please." },
          ],
        },
      ],
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      status: "completed",
      content: "Hello from Codex.",
      tool_calls: [],
      usage: { input_tokens: 40, output_tokens: 6, cached_input_tokens: 8, reasoning_output_tokens: 2 },
      model: "gpt-5.5",
      error: null,
    });
    expect(r.body.gateway_session_id).toMatch(/^job_/);
    expect(r.body.run_id).toBe(r.body.gateway_session_id);
    expect(r.body.codex_session_id).toMatch(/^[0-9a-f-]{36}$/);
    const types = (r.body.events as { type: string }[]).map((e) => e.type);
    expect(types[0]).toBe("thread.started");
    expect(types).toContain("turn.completed");
    expect(r.body.events).toContainEqual(
      expect.objectContaining({ type: "item.completed", item: expect.objectContaining({ text: "Hello from Codex." }) }),
    );

    const inv = fakeCodexInvocations(logFile).at(-1)!;
    expect(inv.prompt).toContain("You are terse.");
    expect(inv.prompt).toContain(
      "System: Answer in English.\n\nUser: Say hello\n\nAssistant: Hi?\n\nUser: Properly, please.",
    );
    expect(inv.argv).toEqual(expect.arrayContaining(["-m", "gpt-5.5"]));
    expect(inv.argv).not.toContain("resume");

    // The run is also a job (session_url).
    const job = await fetch(`${h.url}${r.body.session_url}`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(((await job.json()) as Record<string, unknown>).agentgateStatus).toBe("succeeded");
  });

  it("resumes a Codex session: resume_session_id, and session_id as a gateway_session_id", async () => {
    script({ messages: ["first"] });
    const first = await completion({ messages: [{ role: "user", content: "remember 42" }] });
    expect(first.body.status).toBe("completed");
    const thread = first.body.codex_session_id as string;

    script({ messages: ["it was 42"], usage: { input_tokens: 70, output_tokens: 3 } });
    const second = await completion({
      resume_session_id: thread,
      messages: [{ role: "user", content: "what was it?" }],
    });
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ status: "completed", content: "it was 42", codex_session_id: thread });
    expect(second.body.usage).toMatchObject({ input_tokens: 70, output_tokens: 3 });
    const argv = fakeCodexInvocations(logFile).at(-1)!.argv;
    expect(argv.slice(argv.indexOf("resume"), argv.indexOf("resume") + 2)).toEqual(["resume", thread]);

    const third = await completion({
      session_id: second.body.gateway_session_id,
      messages: [{ role: "user", content: "and again?" }],
    });
    expect(third.body).toMatchObject({ status: "completed", codex_session_id: thread });
    expect(fakeCodexInvocations(logFile).at(-1)!.argv).toContain(thread);
  });

  it("reports a failed run with status failed and the error", async () => {
    script({ fail: "model overloaded" });
    const r = await completion({ messages: [{ role: "user", content: "hi" }] });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: "failed", error: "model overloaded", agentgate_status: "failed" });
    expect((r.body.events as { type: string }[]).map((e) => e.type)).toContain("turn.failed");
  });

  it.each([
    ["cwd", "/etc"],
    ["env", { LD_PRELOAD: "/tmp/evil.so" }],
    ["secure", true],
    ["persistent", true],
  ])("refuses %s with a 400 saying why", async (field, value) => {
    const r = await completion({ messages: [{ role: "user", content: "hi" }], [field]: value });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: "invalid_request_error", param: field, code: "unsupported_field" });
    expect(r.body.error.message).toContain(`${field} is not accepted`);
    expect(fakeCodexInvocations(logFile)).toEqual([]);
  });

  it("ignores objective and nudge_* with a logged note", async () => {
    script({ messages: ["ok"] });
    const r = await completion({
      messages: [{ role: "user", content: "hi" }],
      objective: "be nice",
      nudge_prompt: "go on",
      nudge_interval_ms: 1000,
    });
    expect(r.body.status).toBe("completed");
    expect(
      h.logs.some((l) => String(l.msg).includes("ignored") && JSON.stringify(l.fields).includes("nudge_prompt")),
    ).toBe(true);
  });

  it.each([
    [{}, "messages"],
    [{ messages: [] }, "messages"],
    [{ messages: [{ role: "user" }] }, "messages[0].content"],
    [{ messages: [{ role: "wizard", content: "x" }] }, "messages[0].role"],
    [{ messages: [{ role: "user", content: "x" }], timeout_ms: 5 }, "timeoutMs"],
    [{ messages: [{ role: "user", content: "x" }], resume_session_id: "job_nope" }, "resume_session_id"],
  ])("refuses %j (param %s)", async (body, param) => {
    const r = await completion(body);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(r.body.error.param).toBe(param);
  });

  it("needs the token (401)", async () => {
    const r = await completion({ messages: [{ role: "user", content: "hi" }] }, null);
    expect(r.status).toBe(401);
    expect(r.body.error.type).toBe("authentication_error");
  });
});
