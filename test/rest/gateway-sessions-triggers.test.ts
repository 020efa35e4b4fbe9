/**
 * The codex gateway's /sessions and /triggers routes through the real gateway: CODEX_BIN is
 * test/doubles/fake-codex.mjs, and CODEX_HOME holds a real Codex rollout (thread A, started outside
 * agentgate) next to the threads agentgate's own runs start.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { DEFAULT_NUDGE_PROMPT } from "../../src/jobs/session-catalog.js";
import { fakeCodexInvocations, writeFakeCodexScript } from "../doubles/fake-codex-files.js";
import { startGateway, type GatewayHarness } from "../support/gateway-harness.js";

const FAKE = fileURLToPath(new URL("../doubles/fake-codex.mjs", import.meta.url));
const FIXTURES = path.resolve(import.meta.dirname, "../fixtures/codex-sessions");
const TOKEN = "gateway-sessions-suite-token";
const A = "01a2021f-cbc3-79d2-9f9b-c1ee619b0748";
const A_FILE = `rollout-2026-11-22T07-19-28-${A}.jsonl`;

let h: GatewayHarness;
let dir: string;
let logFile: string;
let scriptFile: string;
let watched: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "gateway-sessions-"));
  logFile = path.join(dir, "invocations.jsonl");
  scriptFile = path.join(dir, "script.json");
  watched = path.join(dir, "watched");
  fs.mkdirSync(watched);
  const home = path.join(dir, "codex-home");
  const day = path.join(home, "sessions/2026/11/22");
  fs.mkdirSync(day, { recursive: true });
  fs.copyFileSync(path.join(FIXTURES, A_FILE), path.join(day, A_FILE));
  // The fake codex resumes A once it has its own state for it.
  const zero = { input_tokens: 0, cached_input_tokens: 0, output_tokens: 0, reasoning_output_tokens: 0 };
  fs.writeFileSync(path.join(home, "sessions", `fake-rollout-${A}.json`), JSON.stringify({ id: A, totals: zero }));
  writeFakeCodexScript(scriptFile, {});
  vi.stubEnv("CODEX_HOME", home);
  vi.stubEnv("FAKE_CODEX_LOG", logFile);
  vi.stubEnv("FAKE_CODEX_SCRIPT", scriptFile);
  h = await startGateway({
    env: { CODEX_BIN: FAKE, DATA_DIR: path.join(dir, "data"), AUTH_TOKEN: TOKEN, SEARCH_ROOTS: watched },
  });
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

async function call(method: string, url: string, body?: unknown, token: string | null = TOKEN) {
  const res = await fetch(`${h.url}${url}`, {
    method,
    headers: {
      ...(body === undefined ? {} : { "content-type": "application/json" }),
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

async function until<T>(what: () => Promise<T>, ok: (v: T) => boolean, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await what();
    if (ok(v)) return v;
    if (Date.now() > end) throw new Error(`condition not met in ${ms} ms: ${JSON.stringify(v)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("/sessions", () => {
  let thread: string;
  let firstRun: string;

  it("lists agentgate's threads and Codex's own rollouts, newest first", async () => {
    script({ messages: ["first answer"], usage: { input_tokens: 10, output_tokens: 2 } });
    const run = await call("POST", "/completion", { messages: [{ role: "user", content: "Remember 42.\nPlease." }] });
    expect(run.body.status).toBe("completed");
    thread = run.body.codex_session_id;
    firstRun = run.body.gateway_session_id;

    const r = await call("GET", "/sessions");
    expect(r.status).toBe(200);
    expect(r.body.count).toBe(2);
    expect(r.body.sessions.map((s: { session_id: string }) => s.session_id)).toEqual([thread, A]);
    expect(r.body.sessions[0]).toMatchObject({
      session_id: thread,
      codex_session_id: thread,
      status: "idle",
      worker_state: "stopped",
      secure: false,
      runs: 1,
      title: "User: Remember 42.",
      source: "agentgate_job",
      job_ids: [firstRun],
      last_agent_message: "first answer",
      usage: { input_tokens: 10, output_tokens: 2 },
    });
    expect(r.body.sessions[1]).toMatchObject({
      session_id: A,
      source: "codex_session_file",
      model: "qwen3:8b",
      runs: 0,
      rollout_file: `sessions/2026/11/22/${A_FILE}`,
    });

    expect((await call("GET", "/sessions?limit=1")).body.sessions).toHaveLength(1);
    const later = new Date(Date.now() + 60_000).toISOString();
    expect((await call("GET", `/sessions?since=${later}`)).body.count).toBe(0);
  });

  it("shows one session with its runs and output tails, by thread id or by gateway_session_id", async () => {
    const byThread = await call("GET", `/sessions/${thread}?include_stderr=true&include_events=true`);
    expect(byThread.status).toBe(200);
    expect(byThread.body).toMatchObject({ session_id: thread, status: "idle", stderr: { tail_lines: 200 } });
    expect(byThread.body.runs).toEqual([
      expect.objectContaining({
        run_id: firstRun,
        status: "completed",
        agentgate_status: "succeeded",
        prompt_preview: "User: Remember 42.\nPlease.",
        exit_code: 0,
        content: "first answer",
      }),
    ]);
    expect(byThread.body.stdout.tail).toContain('"type":"thread.started"');
    expect(byThread.body.events.map((e: { type: string }) => e.type)).toContain("turn.completed");
    expect(byThread.body.messages).toEqual([
      expect.objectContaining({ role: "user", content: "User: Remember 42.\nPlease.", run_id: firstRun }),
      expect.objectContaining({ role: "assistant", content: "first answer", run_id: firstRun }),
    ]);

    const byRun = await call("GET", `/sessions/${firstRun}?tail_lines=1`);
    expect(byRun.body.session_id).toBe(thread);
    expect(byRun.body.stdout.tail.split("\n")).toHaveLength(1);
    expect(byRun.body).not.toHaveProperty("stderr");
    expect(byRun.body).not.toHaveProperty("events");

    const file = await call("GET", `/sessions/${A}`);
    expect(file.body).toMatchObject({ session_id: A, runs: [], source: "codex_session_file" });
    expect(file.body.messages[0]).toMatchObject({
      role: "user",
      content: expect.stringContaining("Create a.txt containing hi."),
    });
  });

  it("prompts a session: resumes its thread and answers like /completion", async () => {
    script({ messages: ["it was 42"], usage: { input_tokens: 30, output_tokens: 3 } });
    const r = await call("POST", `/sessions/${firstRun}/prompt`, {
      prompt: "What was it?",
      system_prompt: "Be brief.",
    });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: "completed", content: "it was 42", codex_session_id: thread });
    const inv = fakeCodexInvocations(logFile).at(-1)!;
    expect(inv.argv.slice(inv.argv.indexOf("resume"), inv.argv.indexOf("resume") + 2)).toEqual(["resume", thread]);
    expect(inv.prompt).toContain("What was it?");
    expect(inv.prompt).toContain("Be brief.");

    script({ messages: ["with messages"] });
    const m = await call("POST", `/sessions/${thread}/prompt`, {
      messages: [{ role: "user", content: "Once more." }],
    });
    expect(m.body.content).toBe("with messages");
    expect(fakeCodexInvocations(logFile).at(-1)!.prompt).toContain("User: Once more.");

    const detail = await call("GET", `/sessions/${thread}`);
    expect(detail.body.runs.map((x: { run_id: string }) => x.run_id)).toEqual([firstRun, r.body.run_id, m.body.run_id]);
    expect(detail.body.runs[1].resume_session_id).toBe(thread);
  });

  it("nudges a session with the default prompt, and a thread started outside agentgate with its model", async () => {
    script({ messages: ["continuing"] });
    const r = await call("POST", `/sessions/${A}/nudge`, {});
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      status: "completed",
      content: "continuing",
      codex_session_id: A,
      model: "qwen3:8b",
    });
    const inv = fakeCodexInvocations(logFile).at(-1)!;
    expect(inv.prompt).toContain(DEFAULT_NUDGE_PROMPT);
    expect(inv.argv).toEqual(expect.arrayContaining(["resume", A, "-m", "qwen3:8b"]));

    script({ messages: ["nudged"] });
    const own = await call("POST", `/sessions/${thread}/nudge`, { prompt: "Keep going with step 2." });
    expect(own.body.content).toBe("nudged");
    expect(fakeCodexInvocations(logFile).at(-1)!.prompt).toContain("Keep going with step 2.");
  });

  it.each([
    ["GET", "/sessions?limit=0", undefined, 400, "limit"],
    ["GET", "/sessions?limit=201", undefined, 400, "limit"],
    ["GET", "/sessions?since=yesterday", undefined, 400, "since"],
    ["GET", `/sessions/${A}?tail_lines=abc`, undefined, 400, "tail_lines"],
    ["GET", `/sessions/${A}?include_events=maybe`, undefined, 400, "include_events"],
    ["GET", "/sessions/0b5c7f1e-0000-4000-8000-000000000000", undefined, 404, "session_id"],
    ["GET", "/sessions/job_unknown", undefined, 404, "session_id"],
    ["POST", `/sessions/${A}/prompt`, {}, 400, "prompt"],
    ["POST", `/sessions/${A}/prompt`, { prompt: "x", cwd: "/etc" }, 400, "cwd"],
    ["POST", `/sessions/${A}/prompt`, { prompt: "x", env: { PATH: "/tmp" } }, 400, "env"],
    ["POST", "/sessions/job_unknown/nudge", {}, 404, "session_id"],
  ] as const)("%s %s %j -> %i (param %s)", async (method, url, body, status, param) => {
    const r = await call(method, url, body);
    expect(r.status).toBe(status);
    expect(r.body.error.param).toBe(param);
    expect(fakeCodexInvocations(logFile)).toEqual([]);
  });

  it("needs the token", async () => {
    expect((await call("GET", "/sessions", undefined, null)).status).toBe(401);
    expect((await call("POST", `/sessions/${A}/nudge`, {}, null)).status).toBe(401);
  });
});

describe("/triggers", () => {
  it("creates, lists, changes and deletes triggers in the seed's shape", async () => {
    const created = await call("POST", "/triggers", {
      id: "nightly-report",
      title: "Nightly report",
      description: "Summarize the day",
      prompt_text: "Write the report.",
      schedule: { mode: "daily", time: "07:30", timezone: "Europe/Berlin" },
      tags: ["reports", "daily"],
      system_prompt: "Be brief.",
      timeout_ms: 60_000,
      env: null,
      cwd: null,
    });
    expect(created.status).toBe(201);
    expect(created.body.trigger).toMatchObject({
      id: "nightly-report",
      title: "Nightly report",
      description: "Summarize the day",
      prompt_text: "Write the report.",
      schedule: { mode: "daily", time: "07:30", timezone: "Europe/Berlin" },
      enabled: true,
      tags: ["reports", "daily"],
      system_prompt: "Be brief.",
      timeout_ms: 60_000,
      idle_timeout_ms: null,
      env: null,
      cwd: null,
      gateway_session_id: null,
      last_fired: null,
      last_status: null,
      overdue: false,
    });
    const next = new Date(created.body.trigger.next_fire);
    expect(next.toLocaleTimeString("en-GB", { timeZone: "Europe/Berlin", hour: "2-digit", minute: "2-digit" })).toBe(
      "07:30",
    );

    const again = await call("POST", "/triggers", {
      id: "nightly-report",
      prompt_text: "x",
      schedule: { at: "2030-01-01T00:00:00Z" },
    });
    expect(again.status).toBe(409);

    const other = await call("POST", "/triggers", { prompt: "Every so often", schedule: { interval_minutes: 90 } });
    expect(other.status).toBe(201);
    expect(other.body.trigger).toMatchObject({
      title: "Every so often",
      schedule: { mode: "interval", interval_minutes: 90 },
    });
    expect(other.body.trigger.id).toMatch(/^trg_/);

    const listed = await call("GET", "/triggers");
    expect(listed.body.trigger_file).toBeNull();
    expect(listed.body.triggers.map((t: { id: string }) => t.id).sort()).toEqual(
      ["nightly-report", other.body.trigger.id].sort(),
    );

    // PATCH changes only what it names; the rest (tags, system prompt, schedule) stays.
    const patched = await call("PATCH", "/triggers/nightly-report", {
      enabled: false,
      prompt_text: "Write it shorter.",
    });
    expect(patched.status).toBe(200);
    expect(patched.body.trigger).toMatchObject({
      enabled: false,
      prompt_text: "Write it shorter.",
      tags: ["reports", "daily"],
      system_prompt: "Be brief.",
      schedule: { mode: "daily", time: "07:30" },
      next_fire: null,
    });
    const put = await call("PUT", "/triggers/nightly-report", {
      enabled: true,
      schedule: { mode: "interval", interval_minutes: 5 },
      tags: [],
    });
    expect(put.body.trigger).toMatchObject({
      enabled: true,
      schedule: { mode: "interval", interval_minutes: 5 },
      tags: [],
    });

    expect(await call("DELETE", "/triggers/nightly-report")).toEqual({
      status: 200,
      body: { trigger_id: "nightly-report" },
    });
    expect((await call("DELETE", "/triggers/nightly-report")).status).toBe(404);
    expect((await call("PATCH", "/triggers/nightly-report", { enabled: false })).status).toBe(404);
    await call("DELETE", `/triggers/${other.body.trigger.id}`);
  });

  it("fires an overdue one-shot at once and records its run; gateway_session_id continues a thread", async () => {
    script({ messages: ["first"] });
    const run = await call("POST", "/completion", { messages: [{ role: "user", content: "start" }] });
    script({ messages: ["fired"] });
    const created = await call("POST", "/triggers", {
      title: "catch up",
      prompt_text: "Catch up.",
      schedule: { mode: "once", at: new Date(Date.now() - 60_000).toISOString() },
      gateway_session_id: run.body.gateway_session_id,
    });
    expect(created.status).toBe(201);
    expect(created.body.trigger.gateway_session_id).toBe(run.body.codex_session_id);
    const id = created.body.trigger.id as string;
    const fired = await until(
      async () => (await call("GET", "/triggers")).body.triggers.find((t: { id: string }) => t.id === id),
      (t) => t?.last_status === "success",
    );
    expect(fired).toMatchObject({ overdue: false, last_error: null, fire_count: 1 });
    expect(fired.last_fired).not.toBeNull();
    const inv = fakeCodexInvocations(logFile).at(-1)!;
    expect(inv.prompt).toContain("Catch up.");
    expect(inv.argv).toEqual(expect.arrayContaining(["resume", run.body.codex_session_id]));
    await call("DELETE", `/triggers/${id}`);
  });

  it("takes cron and file_change schedules too (agentgate extensions)", async () => {
    const cron = await call("POST", "/triggers", {
      prompt_text: "x",
      schedule: { mode: "cron", expression: "*/15 9-17 * * 1-5", timezone: "America/New_York" },
    });
    expect(cron.body.trigger.schedule).toEqual({
      mode: "cron",
      expression: "*/15 9-17 * * 1-5",
      timezone: "America/New_York",
    });
    const files = await call("POST", "/triggers", {
      prompt_text: "Review the change.",
      schedule: { mode: "file_change", globs: ["*.md"], debounce_ms: 100 },
    });
    expect(files.status).toBe(201);
    expect(files.body.trigger.schedule).toMatchObject({
      mode: "file_change",
      root: fs.realpathSync(watched),
      globs: ["*.md"],
      debounce_ms: 100,
    });
    for (const t of [cron, files]) await call("DELETE", `/triggers/${t.body.trigger.id}`);
  });

  it.each([
    [{ schedule: { interval_minutes: 5 } }, "prompt_text"],
    [{ prompt_text: "x" }, "schedule"],
    [{ prompt_text: "x", schedule: { mode: "weekly" } }, "schedule.mode"],
    [{ prompt_text: "x", schedule: { mode: "daily", time: "25:00" } }, "schedule.time"],
    [{ prompt_text: "x", schedule: { mode: "daily", time: "07:00", timezone: "Mars/Olympus" } }, "spec.cron.time_zone"],
    [{ prompt_text: "x", schedule: { interval_minutes: -1 } }, "schedule.interval_minutes"],
    [{ prompt_text: "x", schedule: { mode: "once", at: "soon" } }, "schedule.at"],
    [{ prompt_text: "x", schedule: { interval_minutes: 5 }, env: { PATH: "/tmp" } }, "env"],
    [{ prompt_text: "x", schedule: { interval_minutes: 5 }, cwd: "/" }, "cwd"],
    [{ prompt_text: "x", schedule: { interval_minutes: 5 }, id: "../etc" }, "id"],
    [{ prompt_text: "x", schedule: { interval_minutes: 5 }, timeout_ms: 10 }, "timeoutMs"],
    [{ prompt_text: "x", schedule: { interval_minutes: 5 }, gateway_session_id: "job_unknown" }, "gateway_session_id"],
    [{ prompt_text: "x", schedule: { mode: "file_change", root: "/etc" } }, "spec.file_change.root"],
  ])("refuses %j (param %s) and stores nothing", async (body, param) => {
    const r = await call("POST", "/triggers", body);
    expect(r.status).toBeGreaterThanOrEqual(400);
    expect(r.status).toBeLessThan(500);
    expect(r.body.error.param).toBe(param);
    expect((await call("GET", "/triggers")).body.triggers).toEqual([]);
  });

  it("refuses ?trigger_file= and ?file= (no host paths), and needs the token", async () => {
    for (const q of ["trigger_file=/etc/passwd", "file=/tmp/t.json"]) {
      const r = await call("GET", `/triggers?${q}`);
      expect(r.status).toBe(400);
      expect(r.body.error.code).toBe("unsupported_field");
    }
    expect((await call("GET", "/triggers", undefined, null)).status).toBe(401);
    expect((await call("POST", "/triggers", { prompt_text: "x" }, null)).status).toBe(401);
  });
});
