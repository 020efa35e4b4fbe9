/**
 * SessionCatalog: real Codex rollouts (test/fixtures/codex-sessions, threads A and B) in a temporary
 * CODEX_HOME merged with agentgate job records run through the fake codex (which keeps its own
 * thread state outside the real layout, so its threads are known from the job records only).
 */
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayError } from "../../src/errors/gateway-error.js";
import { CodexSessionReader } from "../../src/jobs/codex-sessions.js";
import { DEFAULT_NUDGE_PROMPT, SessionCatalog } from "../../src/jobs/session-catalog.js";
import type { JobRecord } from "../../src/jobs/types.js";
import { jobsFixture, untilFinal, type JobsFixture } from "./jobs-fixture.js";

const FIXTURES = path.resolve(import.meta.dirname, "../fixtures/codex-sessions");
const A = "01a2021f-cbc3-79d2-9f9b-c1ee619b0748";
const B = "01a2021f-d03c-7c83-8620-ada431c958ba";
const A_FILE = `rollout-2026-11-22T07-19-28-${A}.jsonl`;
const B_FILE = `rollout-2026-11-22T07-19-29-${B}.jsonl`;
const DAY = "sessions/2026/11/22";

let fx: JobsFixture;
let home: string;
let catalog: SessionCatalog;
/** A thread started by an agentgate job (no rollout file in the real layout). */
let t: JobRecord;
/** A job that resumed thread A (started outside agentgate). */
let resumedA: JobRecord;

async function kind(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ok";
  } catch (err) {
    return err instanceof GatewayError ? err.kind : String(err);
  }
}

beforeAll(async () => {
  fx = await jobsFixture();
  home = fx.env.CODEX_HOME!;
  mkdirSync(path.join(home, DAY), { recursive: true });
  for (const f of [A_FILE, B_FILE]) copyFileSync(path.join(FIXTURES, f), path.join(home, DAY, f));
  // The fake codex can resume A once it has its own state for it.
  const zero = {
    input_tokens: 0,
    cached_input_tokens: 0,
    cache_write_input_tokens: 0,
    output_tokens: 0,
    reasoning_output_tokens: 0,
  };
  writeFileSync(
    path.join(home, "sessions", `fake-rollout-${A}.json`),
    JSON.stringify({ id: A, totals: zero, turns: 1 }),
  );
  catalog = new SessionCatalog({ reader: new CodexSessionReader(home), jobs: fx.jobs, codexHome: home });

  fx.script(
    { messages: ["resumed A"] },
    { messages: ["the answer is 42"], usage: { input_tokens: 100, output_tokens: 9 } },
  );
  resumedA = await untilFinal(fx.jobs, (await fx.jobs.submit({ prompt: "Again, A?", resumeThreadId: A })).id);
  expect(resumedA).toMatchObject({ status: "succeeded", threadId: A });
  t = await untilFinal(fx.jobs, (await fx.jobs.submit({ prompt: "What is six times seven?\nThink hard." })).id);
  expect(t.status).toBe("succeeded");
});
afterAll(() => fx?.close());

describe("SessionCatalog.list", () => {
  it("merges rollout files and job records, most recently updated first", async () => {
    const { sessions, nextPageToken } = await catalog.list({});
    expect(nextPageToken).toBe("");
    expect(sessions.map((s) => s.id)).toEqual([t.threadId, A, B]);
    expect(sessions[0]).toEqual({
      id: t.threadId,
      source: "agentgate_job",
      title: "What is six times seven?",
      model: "",
      cwd: "",
      createdAt: t.createdAt,
      updatedAt: t.updatedAt,
      rolloutFile: "",
      jobIds: [t.id],
      lastAgentMessage: "the answer is 42",
      usage: {
        inputTokens: 100,
        cachedInputTokens: 0,
        cacheWriteInputTokens: 0,
        outputTokens: 9,
        reasoningOutputTokens: 0,
      },
      messageCount: 2,
      lastJobStatus: "succeeded",
    });
    // A: the file's data wins, the resuming job is added; it was started outside agentgate.
    expect(sessions[1]).toMatchObject({
      id: A,
      source: "codex_session_file",
      title: "Create a.txt containing hi.",
      model: "qwen3:8b",
      rolloutFile: `${DAY}/${A_FILE}`,
      jobIds: [resumedA.id],
      lastAgentMessage: "It contains hi.",
      usage: { inputTokens: 3393, outputTokens: 12 },
      messageCount: 4,
    });
    expect(sessions[1].updatedAt.getTime()).toBe(resumedA.updatedAt.getTime());
    expect(sessions[2]).toMatchObject({ id: B, source: "codex_session_file", jobIds: [], title: "Say hello." });
  });

  it("filters by source and by update time", async () => {
    expect((await catalog.list({ source: "agentgate_job" })).sessions.map((s) => s.id)).toEqual([t.threadId]);
    expect((await catalog.list({ source: "codex_session_file" })).sessions.map((s) => s.id)).toEqual([A, B]);
    const after = new Date("2026-11-22T07:19:29.500Z");
    expect((await catalog.list({ updatedAfter: after })).sessions.map((s) => s.id)).toEqual([t.threadId, A]);
    expect((await catalog.list({ updatedAfter: new Date(Date.now() + 60_000) })).sessions).toEqual([]);
  });

  it("pages with an opaque token tied to its filters", async () => {
    const seen: string[] = [];
    let pageToken = "";
    for (let i = 0; i < 5; i++) {
      const page = await catalog.list({ pageSize: 1, pageToken });
      seen.push(...page.sessions.map((s) => s.id));
      pageToken = page.nextPageToken;
      if (!pageToken) break;
    }
    expect(seen).toEqual([t.threadId, A, B]);
    const first = await catalog.list({ pageSize: 2 });
    expect(first.sessions).toHaveLength(2);
    expect((await catalog.list({ pageSize: 2, pageToken: first.nextPageToken })).sessions.map((s) => s.id)).toEqual([
      B,
    ]);
    expect(await kind(catalog.list({ pageSize: 2, pageToken: first.nextPageToken, source: "agentgate_job" }))).toBe(
      "invalid_argument",
    );
    expect(await kind(catalog.list({ pageToken: "garbage" }))).toBe("invalid_argument");
    expect(await kind(catalog.list({ pageSize: 201 }))).toBe("invalid_argument");
  });
});

describe("SessionCatalog.get", () => {
  it("builds a job-only thread from its jobs", async () => {
    const s = await catalog.get(t.threadId, { includeEvents: true });
    expect(s.messages).toEqual([
      { role: "user", text: "What is six times seven?\nThink hard.", time: t.createdAt, jobId: t.id },
      { role: "assistant", text: "the answer is 42", time: t.completedAt, jobId: t.id },
    ]);
    expect(s.events.map((e) => e.type)).toEqual(["thread.started", "turn.started", "item.completed", "turn.completed"]);
    expect(s.events[0].payload).toEqual({ type: "thread.started", thread_id: t.threadId });
    const last = await catalog.get(t.threadId, { tailMessages: 1 });
    expect(last.messages.map((m) => m.text)).toEqual(["the answer is 42"]);
    expect(last.events).toEqual([]);
  });

  it("returns a rollout thread's conversation (user and assistant only) with its job ids", async () => {
    const s = await catalog.get(A.toUpperCase(), { tailMessages: 3, includeEvents: true, tailEvents: 2 });
    expect(s.id).toBe(A);
    expect(s.jobIds).toEqual([resumedA.id]);
    expect(s.messages.map((m) => [m.role, m.text])).toEqual([
      ["assistant", "Created a.txt with hi."],
      ["user", "What does a.txt contain?"],
      ["assistant", "It contains hi."],
    ]);
    expect(s.events).toHaveLength(2);
    expect(s.events[1]).toMatchObject({ type: "event_msg", payload: { type: "task_complete" } });
  });

  it("answers not_found for unknown sessions and invalid_argument for bad tails", async () => {
    expect(await kind(catalog.get("0b0b0b0b-0000-4000-8000-000000000000"))).toBe("not_found");
    expect(await kind(catalog.get("../../etc/passwd"))).toBe("not_found");
    expect(await kind(catalog.get(""))).toBe("invalid_argument");
    expect(await kind(catalog.get(A, { tailMessages: 2001 }))).toBe("invalid_argument");
  });
});

describe("SessionCatalog.resume", () => {
  it("submits a job that resumes the thread, with the thread's model and the default nudge", async () => {
    fx.script({ messages: ["continued"], usage: { input_tokens: 10, output_tokens: 1 } });
    const job = await catalog.resume(t.threadId, { prompt: "And times eight?", labels: { k: "v" }, requestId: "r-1" });
    expect(job.spec).toMatchObject({ prompt: "And times eight?", resumeThreadId: t.threadId, labels: { k: "v" } });
    expect((await catalog.resume(t.threadId, { prompt: "And times eight?", requestId: "r-1" })).id).toBe(job.id);
    const done = await untilFinal(fx.jobs, job.id);
    expect(done).toMatchObject({ status: "succeeded", threadId: t.threadId, finalMessage: "continued" });
    const argv = fx.invocations().at(-1)!.argv;
    expect(argv.slice(argv.indexOf("resume"), argv.indexOf("resume") + 2)).toEqual(["resume", t.threadId]);

    const s = await catalog.get(t.threadId);
    expect(s.jobIds).toEqual([t.id, job.id]);
    expect(s.messages.map((m) => m.text)).toEqual([
      "What is six times seven?\nThink hard.",
      "the answer is 42",
      "And times eight?",
      "continued",
    ]);
    expect(s.usage).toMatchObject({ inputTokens: 110, outputTokens: 10 });

    // A rollout thread: its model is reused; no prompt means the default nudge.
    const nudge = await catalog.resume(A);
    expect(nudge.spec).toMatchObject({ prompt: DEFAULT_NUDGE_PROMPT, resumeThreadId: A, model: "qwen3:8b" });
    await untilFinal(fx.jobs, nudge.id);
  });

  it("refuses unknown sessions", async () => {
    expect(await kind(catalog.resume("0b0b0b0b-0000-4000-8000-000000000000", { prompt: "hi" }))).toBe("not_found");
    expect(await kind(catalog.resume("", { prompt: "hi" }))).toBe("invalid_argument");
  });
});
