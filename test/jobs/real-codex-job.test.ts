/**
 * A Codex job end to end with the real CLI (the bundled @openai/codex): agentgate runs
 * `codex exec --json ... -` for a job submitted over the seed REST API, and that Codex's model
 * provider (config.toml written by src/codex/codex-config.ts) is the same agentgate's /v1/responses,
 * backed by the Ollama double. The double answers as a model would: an exec_command call that writes
 * output/suggestion.json and output/summary.txt in the job's workspace, then a final message. A
 * second job resumes the thread (JobSpec.resumeThreadId over JobService) and the double sees the
 * whole earlier conversation replayed by the real CLI.
 */
import { readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { toJson } from "@bufbuild/protobuf";
import { ValueSchema } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  CodexEventType,
  createAgentgateClients,
  JobStatus,
  type AgentgateClients,
  type JobEvent,
} from "../../clients/index.js";
import { renderCodexConfig } from "../../src/codex/codex-config.js";
import { startGateway, type GatewayHarness } from "../support/gateway-harness.js";
import {
  CODEX_API_KEY_ENV,
  codexCliAvailable,
  createCodexRunDirs,
  writeCodexLauncher,
  type CodexRunDirs,
} from "../support/real-codex.js";

const MODEL = "qwen3:8b";
const TOKEN = "real-codex-job-secret-token";
/** The job's own timeout: a failing run ends as a failed job, not a hung test. */
const JOB_TIMEOUT_MS = 40_000;

type Body = Record<string, any>;

const available = codexCliAvailable();

describe.runIf(available)("a Codex job run by the real CLI against agentgate's own /v1/responses", () => {
  let h: GatewayHarness;
  let ag: AgentgateClients;
  let dirs: CodexRunDirs;
  let threadId = "";
  let firstJobId = "";

  const chatBodies = (): Body[] => h.ollama.requests.filter((r) => r.path === "/api/chat").map((r) => r.body as Body);

  async function rest(method: string, url: string, body?: unknown) {
    const res = await fetch(`${h.url}${url}`, {
      method,
      headers: {
        authorization: `Bearer ${TOKEN}`,
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, body: (text ? JSON.parse(text) : undefined) as Body };
  }

  /** Follows the job over WatchJob (HTTP/1.1) until it ends; returns its events. No polling, no sleeps. */
  async function watchToEnd(jobId: string): Promise<JobEvent[]> {
    const events: JobEvent[] = [];
    for await (const r of ag.jobs.watchJob({ jobId, afterSequence: 0n }, { timeoutMs: JOB_TIMEOUT_MS + 10_000 }))
      events.push(r.event!);
    return events;
  }

  const rollouts = (): string[] =>
    readdirSync(path.join(dirs.codexHome, "sessions"), { recursive: true, encoding: "utf8" }).filter((f) =>
      f.endsWith(".jsonl"),
    );

  const codexEvents = (events: JobEvent[]) => events.flatMap((e) => (e.event.case === "codex" ? [e.event.value] : []));

  beforeAll(async () => {
    dirs = createCodexRunDirs();
    // The job runner hands process.env to Codex (and the session catalog reads CODEX_HOME at start).
    vi.stubEnv("CODEX_HOME", dirs.codexHome);
    vi.stubEnv("TMPDIR", dirs.tmpDir);
    vi.stubEnv(CODEX_API_KEY_ENV, TOKEN);
    h = await startGateway({
      env: {
        MODEL,
        AUTH_TOKEN: TOKEN,
        RESPONSES_HEARTBEAT_MS: "500",
        CODEX_BIN: writeCodexLauncher(path.join(dirs.runDir, "bin")),
        DATA_DIR: path.join(dirs.runDir, "data"),
        CODEX_PROXY_KEEP_WORKSPACES: "true",
      },
    });
    // The port is known only now: Codex's provider is this agentgate, with its AUTH_TOKEN as the key.
    writeFileSync(
      path.join(dirs.codexHome, "config.toml"),
      renderCodexConfig({
        baseUrl: `${h.url}/v1`,
        model: MODEL,
        envKey: CODEX_API_KEY_ENV,
        provider: { request_max_retries: 0, stream_max_retries: 0 },
      }),
    );
    ag = createAgentgateClients({ baseUrl: h.url, token: TOKEN, httpVersion: "1.1" });
  });

  afterAll(async () => {
    await h?.close();
    vi.unstubAllEnvs();
    if (dirs) rmSync(dirs.runDir, { recursive: true, force: true });
  });

  it("runs a free-prompt job: Codex calls exec_command to write output/, the job reports the results", async () => {
    const suggestion = { steps: ["lint", "test"], by: "the real codex" };
    const cmd =
      `printf '%s' '${JSON.stringify(suggestion)}' > output/suggestion.json && ` +
      `printf 'Two steps: lint, then test.\\n' > output/summary.txt`;
    h.ollama.reset();
    h.ollama.enqueue(
      { toolCalls: [{ name: "exec_command", arguments: { cmd } }], promptEvalCount: 1200, evalCount: 30 },
      { content: ["Wrote output/suggestion.json ", "and output/summary.txt."], promptEvalCount: 1300, evalCount: 12 },
    );

    const created = await rest("POST", "/v1/codex/jobs", {
      prompt: "Plan the CI steps for this repository. Write them to output/suggestion.json and a summary.",
      timeoutMs: JOB_TIMEOUT_MS,
      labels: { suite: "real-codex-job" },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    firstJobId = created.body.jobId;

    const events = await watchToEnd(firstJobId);
    const seed = await rest("GET", `/v1/codex/jobs/${firstJobId}`);
    expect(seed.status).toBe(200);
    const job = seed.body;
    expect(job.agentgateStatus, `${job.error}\n--- stderr:\n${job.stderr}\n--- stdout:\n${job.stdout}`).toBe(
      "succeeded",
    );
    expect(job).toMatchObject({
      jobId: firstJobId,
      status: "succeeded",
      output: suggestion,
      summary: "Two steps: lint, then test.",
      error: null,
      exitCode: 0,
      finalMessage: "Wrote output/suggestion.json and output/summary.txt.",
    });
    expect(job.threadId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    threadId = job.threadId;

    // The same job over JobService, which also carries usage: the turn's two model calls, as the
    // double reported them (prompt_eval_count / eval_count through agentgate's Responses usage).
    const { job: pb } = await ag.jobs.getJob({ jobId: firstJobId });
    expect(pb).toMatchObject({
      status: JobStatus.SUCCEEDED,
      exitCode: 0,
      threadId,
      summary: "Two steps: lint, then test.",
      finalMessage: "Wrote output/suggestion.json and output/summary.txt.",
      usage: { inputTokens: 2500n, outputTokens: 42n },
    });
    expect(toJson(ValueSchema, pb!.output!)).toEqual(suggestion);

    // What the real CLI emitted: a thread, the command it ran in the workspace, the message, the usage.
    const codex = codexEvents(events);
    expect(codex[0]).toMatchObject({
      type: CodexEventType.THREAD_STARTED,
      payload: { case: "threadId", value: threadId },
    });
    const command = codex.find(
      (c) => c.type === CodexEventType.ITEM_COMPLETED && c.payload.case === "commandExecution",
    );
    expect(command?.payload.value).toMatchObject({ exitCode: 0 });
    expect(command?.raw).toMatchObject({ item: { command: expect.stringContaining("output/suggestion.json") } });
    expect(codex.at(-1)).toMatchObject({ type: CodexEventType.TURN_COMPLETED });
    const statuses = events.flatMap((e) => (e.event.case === "statusChange" ? [e.event.value.status] : []));
    expect(statuses.at(-1)).toBe(JobStatus.SUCCEEDED);

    // The files are where the job said (workspaces are kept here), written by Codex's command.
    expect(job.workspace).toBe(path.join(dirs.runDir, "data", "jobs", firstJobId));
    expect(job.outputPath).toBe(path.join(job.workspace, "output", "suggestion.json"));
    expect(JSON.parse(readFileSync(job.outputPath, "utf8"))).toEqual(suggestion);
    // The real CLI recorded the thread as a rollout in CODEX_HOME, which `exec resume` reads back.
    expect(rollouts().some((f) => f.endsWith(`-${threadId}.jsonl`))).toBe(true);

    // Codex's model calls went through agentgate's own /v1/responses to the double, with the prompt
    // (instructions.md on stdin) and the tool call's result replayed in the second call.
    const posts = h.logs.filter((l) => l.msg === "request" && l.url === "/v1/responses");
    expect(posts.map((l) => Number(l.status))).toEqual([200, 200]);
    const bodies = chatBodies();
    expect(bodies).toHaveLength(2);
    expect(bodies[0]!.model).toBe(MODEL);
    expect(JSON.stringify(bodies[0]!.messages)).toContain("Plan the CI steps for this repository.");
    const tool = (bodies[1]!.messages as Body[]).find((m) => m.role === "tool");
    expect(tool).toMatchObject({ tool_name: "exec_command" });
  }, 60_000);

  it("resumes the job's thread: the real CLI replays the earlier conversation to the model", async () => {
    expect(threadId, "the first job must have run").not.toBe("");
    h.ollama.reset();
    h.ollama.enqueue({ content: ["Yes: lint comes first."], promptEvalCount: 3000, evalCount: 7 });

    const { job: submitted } = await ag.jobs.submitJob({
      spec: { prompt: "Which step runs first?", resumeThreadId: threadId, timeoutMs: JOB_TIMEOUT_MS },
    });
    await watchToEnd(submitted!.id);
    const { job } = await ag.jobs.getJob({ jobId: submitted!.id });
    expect(job!.status, `${job!.error}\n--- stderr:\n${job!.stderr}\n--- stdout:\n${job!.stdout}`).toBe(
      JobStatus.SUCCEEDED,
    );
    expect(job).toMatchObject({
      exitCode: 0,
      threadId,
      finalMessage: "Yes: lint comes first.",
      // Codex reports the thread's total; the job records only its own turn.
      usage: { inputTokens: 3000n, outputTokens: 7n },
    });
    // A free prompt need not write output/: no output, no summary.
    expect(job!.output).toBeUndefined();

    // One model call, carrying the first job's prompt, its tool call and output, its answer, then the new prompt.
    const bodies = chatBodies();
    expect(bodies).toHaveLength(1);
    const messages = bodies[0]!.messages as Body[];
    const text = JSON.stringify(messages);
    expect(text).toContain("Plan the CI steps for this repository.");
    expect(messages.find((m) => m.tool_calls)?.tool_calls[0].function.name).toBe("exec_command");
    expect(messages.find((m) => m.role === "tool")).toMatchObject({ tool_name: "exec_command" });
    const assistant = messages.filter((m) => m.role === "assistant" && m.content).map((m) => m.content);
    expect(assistant).toContain("Wrote output/suggestion.json and output/summary.txt.");
    const users = messages.filter((m) => m.role === "user").map((m) => String(m.content));
    expect(users.at(-1)).toContain("Which step runs first?");
    expect(text.indexOf("Plan the CI steps")).toBeLessThan(text.lastIndexOf("Which step runs first?"));

    // Both jobs are on the thread.
    const { jobs } = await ag.jobs.listJobs({ threadId });
    expect(jobs.map((j) => j.id).sort()).toEqual([firstJobId, submitted!.id].sort());
  }, 60_000);
});
