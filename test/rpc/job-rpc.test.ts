// agentgate.v1.JobService through the typed clients against a real gateway, Codex being the fake
// (test/doubles/fake-codex.mjs, scripted per test): submit, watch (typed Codex events), get, list,
// cancel, run, bad input as clear Connect errors, and sessions (list, get, resume) of the threads
// the jobs ran. Watch runs over HTTP/1.1, the rest over h2c.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  CodexEventType,
  CodexFileChangeKind,
  CodexItemStatus,
  createAgentgateClients,
  JobMode,
  JobStatus,
  Role,
  SessionSource,
  type AgentgateClients,
  type JobEvent,
} from "../../clients/index.js";
import { fakeCodexInvocations, writeFakeCodexScript } from "../doubles/fake-codex-files.js";
import { FAKE_CODEX } from "../jobs/jobs-fixture.js";
import { startGateway, type GatewayHarness } from "../support/gateway-harness.js";
import { pbCodexEvent } from "../../src/rpc/job-convert.js";

let h: GatewayHarness;
let ag: AgentgateClients;
let ag1: AgentgateClients;
let dir: string;
let scriptFile: string;
let logFile: string;
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentgate-rpc-jobs-"));
  scriptFile = path.join(dir, "script.json");
  logFile = path.join(dir, "invocations.jsonl");
  writeFakeCodexScript(scriptFile, {});
  // The job runner hands process.env to Codex.
  const env = { FAKE_CODEX_SCRIPT: scriptFile, FAKE_CODEX_LOG: logFile, CODEX_HOME: path.join(dir, "codex-home") };
  for (const [k, v] of Object.entries(env)) {
    saved[k] = process.env[k];
    process.env[k] = v;
  }
  h = await startGateway({
    env: { DATA_DIR: path.join(dir, "data"), CODEX_BIN: FAKE_CODEX, JOB_CONCURRENCY: "4" },
  });
  ag = createAgentgateClients({ baseUrl: h.url, httpVersion: "2" });
  ag1 = createAgentgateClients({ baseUrl: h.url, httpVersion: "1.1" });
});
afterAll(async () => {
  await h?.close();
  for (const [k, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

const script = (turn: Record<string, unknown>) => writeFakeCodexScript(scriptFile, turn);
const invocations = () => fakeCodexInvocations(logFile);

async function connectError(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail");
}

async function watchAll(jobId: string, client = ag1): Promise<JobEvent[]> {
  const events: JobEvent[] = [];
  for await (const r of client.jobs.watchJob({ jobId, afterSequence: 0n })) events.push(r.event!);
  return events;
}

async function untilStatus(jobId: string, status: JobStatus, ms = 10_000) {
  const t0 = Date.now();
  for (;;) {
    const { job } = await ag.jobs.getJob({ jobId });
    if (job!.status === status) return job!;
    if (job!.status >= JobStatus.SUCCEEDED)
      throw new Error(`job ${jobId} ended ${JobStatus[job!.status]}: ${job!.error}`);
    if (Date.now() - t0 > ms) throw new Error(`job ${jobId} still ${JobStatus[job!.status]}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

let firstThread = "";
let firstJobId = "";

describe("submit, watch, get", () => {
  it("streams status changes and typed Codex events, then GetJob has the results", async () => {
    script({
      items: [
        {
          type: "command_execution",
          command: "bash -lc ls",
          aggregated_output: "a.txt\n",
          exit_code: 0,
          status: "completed",
        },
      ],
      messages: ["all done"],
      writeFiles: { "output/suggestion.json": { answer: 42, list: [1, "x"] }, "output/summary.txt": "the summary\n" },
      usage: { input_tokens: 120, output_tokens: 7 },
    });
    const { job } = await ag.jobs.submitJob({
      spec: { prompt: "List the files.\nThen stop.", labels: { suite: "watch" } },
    });
    expect(job!.id).toMatch(/^job_/);
    expect([JobStatus.PENDING, JobStatus.RUNNING]).toContain(job!.status);
    firstJobId = job!.id;

    const events = await watchAll(job!.id);
    expect(events.map((e) => Number(e.sequence))).toEqual(
      [...events.map((e) => Number(e.sequence))].sort((a, b) => a - b),
    );
    const statuses = events.flatMap((e) => (e.event.case === "statusChange" ? [e.event.value.status] : []));
    expect(statuses).toEqual([JobStatus.PENDING, JobStatus.RUNNING, JobStatus.SUCCEEDED]);
    const codex = events.flatMap((e) => (e.event.case === "codex" ? [e.event.value] : []));
    expect(codex.map((c) => c.type)).toEqual([
      CodexEventType.THREAD_STARTED,
      CodexEventType.TURN_STARTED,
      CodexEventType.ITEM_STARTED,
      CodexEventType.ITEM_COMPLETED,
      CodexEventType.ITEM_COMPLETED, // file_change
      CodexEventType.ITEM_COMPLETED, // agent_message
      CodexEventType.TURN_COMPLETED,
    ]);
    const started = codex[0];
    expect(started.payload.case).toBe("threadId");
    firstThread = started.payload.value as string;
    expect(firstThread).toMatch(/^[0-9a-f-]{36}$/);
    expect(started.raw).toEqual({ type: "thread.started", thread_id: firstThread });

    expect(codex[2].payload).toMatchObject({
      case: "commandExecution",
      value: { command: "bash -lc ls", status: CodexItemStatus.IN_PROGRESS },
    });
    expect(codex[3].itemId).toBe("item_0");
    expect(codex[3].payload).toMatchObject({
      case: "commandExecution",
      value: { command: "bash -lc ls", aggregatedOutput: "a.txt\n", exitCode: 0, status: CodexItemStatus.COMPLETED },
    });
    expect(codex[4].payload.case).toBe("fileChange");
    expect(codex[5].payload).toMatchObject({ case: "agentMessage", value: { text: "all done" } });
    expect(codex[6].payload).toMatchObject({ case: "usage", value: { inputTokens: 120n, outputTokens: 7n } });
    // No raw output unless asked for.
    expect(events.some((e) => e.event.case === "output")).toBe(false);
    const last = events.at(-1)!;
    expect(last.event.case).toBe("statusChange");
    if (last.event.case === "statusChange") expect(last.event.value.job!.stdout).toBe("");

    const { job: done } = await ag.jobs.getJob({ jobId: job!.id });
    expect(done).toMatchObject({
      status: JobStatus.SUCCEEDED,
      exitCode: 0,
      summary: "the summary",
      finalMessage: "all done",
      threadId: firstThread,
      usage: { inputTokens: 120n, outputTokens: 7n },
      spec: { prompt: "List the files.\nThen stop.", labels: { suite: "watch" } },
    });
    expect(toJson(ValueSchema, done!.output!)).toEqual({ answer: 42, list: [1, "x"] });
    expect(done!.stdout).toContain('"type":"turn.completed"');
    expect(done!.completedAt).toBeDefined();
  });

  it("with include_output streams raw stdout; without after_sequence it starts with the current record", async () => {
    const out: JobEvent[] = [];
    for await (const r of ag.jobs.watchJob({ jobId: firstJobId, afterSequence: 0n, includeOutput: true }))
      out.push(r.event!);
    const chunks = out.flatMap((e) => (e.event.case === "output" ? [e.event.value] : []));
    expect(Buffer.concat(chunks.map((c) => c.data)).toString()).toContain('"type":"thread.started"');

    const now: JobEvent[] = [];
    for await (const r of ag.jobs.watchJob({ jobId: firstJobId })) now.push(r.event!);
    expect(now).toHaveLength(1);
    expect(now[0].event).toMatchObject({
      case: "statusChange",
      value: { status: JobStatus.SUCCEEDED, job: { id: firstJobId, stdout: "" } },
    });
  });

  it("a retried SubmitJob with the same request_id returns the first job", async () => {
    script({ messages: ["once"] });
    const spec = { prompt: "only once" };
    const a = await ag.jobs.submitJob({ spec, requestId: "req-idem-1" });
    const b = await ag1.jobs.submitJob({ spec, requestId: "req-idem-1" });
    expect(b.job!.id).toBe(a.job!.id);
    await untilStatus(a.job!.id, JobStatus.SUCCEEDED);
    const c = await ag.jobs.submitJob({ spec, requestId: "req-idem-1" });
    expect(c.job!).toMatchObject({ id: a.job!.id, status: JobStatus.SUCCEEDED });
  });
});

describe("ListJobs", () => {
  it("filters by labels, statuses and thread, pages, and leaves captured output out", async () => {
    // Seed jobs promise output/suggestion.json.
    script({ messages: ["listed"], writeFiles: { "output/suggestion.json": { ok: true } } });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { job } = await ag.jobs.submitJob({
        spec: { mode: JobMode.WORKFLOW, operatorRequest: `list me ${i}`, labels: { suite: "list", n: String(i) } },
      });
      ids.push(job!.id);
    }
    for (const id of ids) await untilStatus(id, JobStatus.SUCCEEDED);

    const all = await ag.jobs.listJobs({ labels: { suite: "list" } });
    expect(all.jobs.map((j) => j.id)).toEqual([...ids].reverse());
    expect(all.nextPageToken).toBe("");
    for (const j of all.jobs) {
      expect(j.stdout).toBe("");
      expect(j.output).toBeUndefined();
      expect(j.finalMessage).toBe("listed");
    }
    expect((await ag.jobs.listJobs({ labels: { suite: "list", n: "1" } })).jobs.map((j) => j.id)).toEqual([ids[1]]);
    expect((await ag.jobs.listJobs({ labels: { suite: "list" }, statuses: [JobStatus.FAILED] })).jobs).toEqual([]);
    expect(
      (await ag.jobs.listJobs({ labels: { suite: "list" }, statuses: [JobStatus.SUCCEEDED, JobStatus.FAILED] })).jobs,
    ).toHaveLength(3);
    expect((await ag.jobs.listJobs({ threadId: firstThread })).jobs.map((j) => j.id)).toEqual([firstJobId]);

    const seen: string[] = [];
    let pageToken = "";
    for (let i = 0; i < 5; i++) {
      const page = await ag1.jobs.listJobs({ labels: { suite: "list" }, pageSize: 2, pageToken });
      expect(page.jobs.length).toBeLessThanOrEqual(2);
      seen.push(...page.jobs.map((j) => j.id));
      pageToken = page.nextPageToken;
      if (!pageToken) break;
    }
    expect(seen).toEqual([...ids].reverse());

    expect((await connectError(ag.jobs.listJobs({ statuses: [JobStatus.UNSPECIFIED] }))).code).toBe(
      Code.InvalidArgument,
    );
    expect((await connectError(ag.jobs.listJobs({ pageToken: "nonsense" }))).code).toBe(Code.InvalidArgument);
  });
});

describe("CancelJob and RunJob", () => {
  it("cancels a hanging job and ends its process", async () => {
    script({ hang: true });
    const before = invocations().length;
    const { job } = await ag.jobs.submitJob({ spec: { prompt: "hang forever" } });
    await untilStatus(job!.id, JobStatus.RUNNING);
    const t0 = Date.now();
    while (invocations().length === before) {
      if (Date.now() - t0 > 10_000) throw new Error("the fake codex never started");
      await new Promise((r) => setTimeout(r, 20));
    }
    const pid = invocations().at(-1)!.pid;
    expect(() => process.kill(pid, 0)).not.toThrow();

    const { job: canceled } = await ag.jobs.cancelJob({ jobId: job!.id, reason: "no longer needed" });
    expect(canceled).toMatchObject({ id: job!.id, status: JobStatus.CANCELED });
    expect(canceled!.error).toContain("no longer needed");
    expect(() => process.kill(pid, 0)).toThrow();
    // Cancelling a finished job returns it unchanged.
    expect((await ag.jobs.cancelJob({ jobId: job!.id })).job!.status).toBe(JobStatus.CANCELED);
  });

  it("RunJob blocks until the job ends and returns it with its output", async () => {
    script({ messages: ["ran to the end"], usage: { input_tokens: 5, output_tokens: 1 } });
    const { job } = await ag1.jobs.runJob({ spec: { prompt: "run me" }, requestId: "run-1" });
    expect(job).toMatchObject({
      status: JobStatus.SUCCEEDED,
      finalMessage: "ran to the end",
      usage: { inputTokens: 5n, outputTokens: 1n },
    });
    expect(job!.stdout).toContain("ran to the end");
    // A retry with the same request id waits for (here: returns) the job already created.
    expect((await ag.jobs.runJob({ spec: { prompt: "run me" }, requestId: "run-1" })).job!.id).toBe(job!.id);
  });
});

describe("bad input", () => {
  it("answers InvalidArgument for invalid specs, naming the problem", async () => {
    const both = await connectError(
      ag.jobs.submitJob({ spec: { prompt: "a", operatorRequest: "b", mode: JobMode.JOB } }),
    );
    expect(both.code).toBe(Code.InvalidArgument);
    expect(both.rawMessage).toMatch(/exactly one of operatorRequest/);

    const badPath = await connectError(
      ag.jobs.submitJob({ spec: { prompt: "a", contextFiles: [{ path: "../x", contents: "y" }] } }),
    );
    expect(badPath.code).toBe(Code.InvalidArgument);
    expect(badPath.rawMessage).toContain("../x");

    const badOption = await connectError(
      ag1.jobs.submitJob({ spec: { prompt: "a", execOptions: ["--dangerously-bypass-approvals-and-sandbox"] } }),
    );
    expect(badOption.code).toBe(Code.InvalidArgument);
    expect(badOption.rawMessage).toContain("--dangerously-bypass-approvals-and-sandbox");

    expect((await connectError(ag.jobs.submitJob({}))).code).toBe(Code.InvalidArgument);
    expect((await connectError(ag.jobs.runJob({ spec: { prompt: "" } }))).code).toBe(Code.InvalidArgument);
    expect((await connectError(ag.jobs.submitJob({ spec: { prompt: "a" }, retryOfJobId: firstJobId }))).code).toBe(
      Code.InvalidArgument,
    );
    expect((await connectError(ag.jobs.getJob({ jobId: "" }))).code).toBe(Code.InvalidArgument);
  });

  it("answers NotFound for unknown ids (jobs, triggers) and stays healthy", async () => {
    expect((await connectError(ag.jobs.getJob({ jobId: "job_nope" }))).code).toBe(Code.NotFound);
    expect((await connectError(ag.jobs.cancelJob({ jobId: "job_nope" }))).code).toBe(Code.NotFound);
    expect((await connectError(watchAll("job_nope"))).code).toBe(Code.NotFound);
    expect((await connectError(ag.jobs.submitJob({ retryOfJobId: "job_nope" }))).code).toBe(Code.NotFound);
    expect((await connectError(ag.jobs.getTrigger({ triggerId: "trg_nope" }))).code).toBe(Code.NotFound);
    expect((await ag.jobs.getJob({ jobId: firstJobId })).job!.status).toBe(JobStatus.SUCCEEDED);
  });
});

describe("sessions", () => {
  it("lists, shows and resumes the thread a job started", async () => {
    const { sessions } = await ag.jobs.listSessions({ source: SessionSource.AGENTGATE_JOB });
    const s = sessions.find((x) => x.id === firstThread)!;
    expect(s).toMatchObject({
      source: SessionSource.AGENTGATE_JOB,
      title: "List the files.",
      jobIds: [firstJobId],
      lastAgentMessage: "all done",
      messageCount: 2,
      messages: [],
    });
    expect((await ag.jobs.listSessions({ source: SessionSource.CODEX_SESSION_FILE })).sessions).toEqual([]);
    const page = await ag.jobs.listSessions({ pageSize: 1 });
    expect(page.sessions).toHaveLength(1);

    const { session } = await ag1.jobs.getSession({ sessionId: firstThread, includeEvents: true });
    expect(session!.messages.map((m) => [m.role, m.text, m.jobId])).toEqual([
      [Role.USER, "List the files.\nThen stop.", firstJobId],
      [Role.ASSISTANT, "all done", firstJobId],
    ]);
    expect(session!.events[0]).toMatchObject({ type: "thread.started", payload: { thread_id: firstThread } });
    expect((await connectError(ag.jobs.getSession({ sessionId: "0b0b0b0b-0000-4000-8000-000000000000" }))).code).toBe(
      Code.NotFound,
    );

    script({ messages: ["resumed!"] });
    const { job } = await ag.jobs.resumeSession({
      sessionId: firstThread,
      prompt: "One more thing.",
      labels: { r: "1" },
    });
    expect(job!.spec).toMatchObject({ prompt: "One more thing.", resumeThreadId: firstThread, labels: { r: "1" } });
    const done = await untilStatus(job!.id, JobStatus.SUCCEEDED);
    expect(done).toMatchObject({ threadId: firstThread, finalMessage: "resumed!" });
    const argv = invocations().at(-1)!.argv;
    const at = argv.indexOf("resume");
    expect(at).toBeGreaterThan(0);
    expect(argv[at + 1]).toBe(firstThread);

    const after = (await ag.jobs.getSession({ sessionId: firstThread })).session!;
    expect(after.jobIds).toEqual([firstJobId, job!.id]);
    expect(after.messages.map((m) => m.text).slice(-2)).toEqual(["One more thing.", "resumed!"]);
    expect(
      (await connectError(ag.jobs.resumeSession({ sessionId: "0b0b0b0b-0000-4000-8000-000000000000", prompt: "x" })))
        .code,
    ).toBe(Code.NotFound);
  });
});

describe("Codex events as CodexEvent", () => {
  it("types every item kind and keeps the raw object", () => {
    const item = (it: Record<string, unknown>) =>
      pbCodexEvent({ type: "item.completed", item: { id: "item_9", ...it } });
    expect(item({ type: "reasoning", text: "hmm" }).payload).toMatchObject({
      case: "reasoning",
      value: { text: "hmm" },
    });
    const mcp = item({
      type: "mcp_tool_call",
      server: "docs",
      tool: "search",
      arguments: { q: "x" },
      result: { content: [{ type: "text", text: "r" }] },
      error: { message: "boom" },
      status: "failed",
    });
    expect(mcp.itemId).toBe("item_9");
    expect(mcp.payload).toMatchObject({
      case: "mcpToolCall",
      value: { server: "docs", tool: "search", error: "boom", status: CodexItemStatus.FAILED },
    });
    if (mcp.payload.case === "mcpToolCall") {
      expect(toJson(ValueSchema, mcp.payload.value.arguments!)).toEqual({ q: "x" });
      expect(toJson(ValueSchema, mcp.payload.value.result!)).toEqual({ content: [{ type: "text", text: "r" }] });
    }
    expect(item({ type: "web_search", query: "q" }).payload).toMatchObject({
      case: "webSearch",
      value: { query: "q" },
    });
    expect(item({ type: "todo_list", items: [{ text: "a", completed: true }, { text: "b" }] }).payload).toMatchObject({
      case: "todoList",
      value: {
        items: [
          { text: "a", completed: true },
          { text: "b", completed: false },
        ],
      },
    });
    expect(
      item({ type: "file_change", changes: [{ path: "/w/a", kind: "update" }], status: "completed" }).payload,
    ).toMatchObject({
      case: "fileChange",
      value: { changes: [{ path: "/w/a", kind: CodexFileChangeKind.UPDATE }], status: CodexItemStatus.COMPLETED },
    });
    expect(item({ type: "error", message: "bad item" }).payload).toEqual({ case: "errorMessage", value: "bad item" });
    const unknown = item({ type: "future_thing", x: 1 });
    expect(unknown.payload.case).toBeUndefined();
    expect(unknown.raw).toEqual({ type: "item.completed", item: { id: "item_9", type: "future_thing", x: 1 } });

    const failed = pbCodexEvent({ type: "turn.failed", error: { message: "quota" } });
    expect(failed).toMatchObject({
      type: CodexEventType.TURN_FAILED,
      payload: { case: "errorMessage", value: "quota" },
    });
    const notice = pbCodexEvent({ type: "error", message: "Reconnecting... 1/5" });
    expect(notice).toMatchObject({ type: CodexEventType.ERROR, payload: { value: "Reconnecting... 1/5" } });
    expect(pbCodexEvent({ type: "something.new" }).type).toBe(CodexEventType.UNSPECIFIED);
  });
});

describe("triggers over RPC", () => {
  it(
    "an interval trigger submits its job template on schedule; Get/List/Delete; bad schedules are invalid_argument",
    { timeout: 30_000 },
    async () => {
      script({ messages: ["from a trigger"] });
      const { trigger } = await ag.jobs.createTrigger({
        spec: {
          name: "every second",
          schedule: { case: "interval", value: { interval: { seconds: 1n, nanos: 0 } } },
          jobTemplate: { prompt: "triggered work" },
        },
      });
      expect(trigger?.id).toBeTruthy();
      const t0 = Date.now();
      let fired: { id: string; status: number }[] = [];
      while (fired.length === 0 && Date.now() - t0 < 10_000) {
        fired = (await ag.jobs.listJobs({ triggerId: trigger!.id })).jobs;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(fired.length).toBeGreaterThan(0);
      const got = await ag.jobs.getTrigger({ triggerId: trigger!.id });
      expect(Number(got.trigger?.fireCount)).toBeGreaterThan(0);
      expect((await ag.jobs.listTriggers({})).triggers.map((t) => t.id)).toContain(trigger!.id);
      await ag.jobs.deleteTrigger({ triggerId: trigger!.id });
      const gone = await ag.jobs.getTrigger({ triggerId: trigger!.id }).catch((e: unknown) => e as ConnectError);
      expect((gone as ConnectError).code).toBe(Code.NotFound);
      const bad = await ag.jobs
        .createTrigger({
          spec: {
            name: "bad",
            schedule: { case: "cron", value: { expression: "61 * * * *", timeZone: "Mars/Olympus" } },
            jobTemplate: { prompt: "x" },
          },
        })
        .catch((e: unknown) => e as ConnectError);
      expect((bad as ConnectError).code).toBe(Code.InvalidArgument);
      const badTemplate = await ag.jobs
        .createTrigger({
          spec: {
            name: "bad template",
            schedule: { case: "interval", value: { interval: { seconds: 60n, nanos: 0 } } },
            jobTemplate: { prompt: "x", contextFiles: [{ path: "../escape", contents: "" }] },
          },
        })
        .catch((e: unknown) => e as ConnectError);
      expect((badTemplate as ConnectError).code).toBe(Code.InvalidArgument);
      expect((badTemplate as ConnectError).rawMessage).toContain("../escape");
    },
  );
});
