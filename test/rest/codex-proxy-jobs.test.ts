/**
 * The seed apphub codex-proxy API (POST /v1/codex/jobs, GET|DELETE /v1/codex/jobs/{jobId},
 * POST /v1/codex/generate) through the real gateway, with CODEX_BIN pointing at
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
const TOKEN = "codex-proxy-suite-token-123";

let h: GatewayHarness;
let dir: string;
let dataDir: string;
let sentinel: string;
let logFile: string;
let scriptFile: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-proxy-jobs-"));
  dataDir = path.join(dir, "data");
  sentinel = path.join(dir, "sentinel");
  fs.mkdirSync(sentinel);
  logFile = path.join(dir, "invocations.jsonl");
  scriptFile = path.join(dir, "script.json");
  writeFakeCodexScript(scriptFile, {});
  // The job runner hands process.env to Codex.
  vi.stubEnv("CODEX_HOME", path.join(dir, "codex-home"));
  vi.stubEnv("FAKE_CODEX_LOG", logFile);
  vi.stubEnv("FAKE_CODEX_SCRIPT", scriptFile);
  h = await startGateway({
    env: {
      CODEX_BIN: FAKE,
      DATA_DIR: dataDir,
      CODEX_PROXY_KEEP_WORKSPACES: "true",
      // Room for a context file over the 10 MiB per-file cap.
      BODY_LIMIT_BYTES: String(32 * 1024 * 1024),
    },
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

async function call(method: string, url: string, body?: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(`${h.url}${url}`, {
    method,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: (text ? JSON.parse(text) : undefined) as Record<string, any> };
}

const seedBody = (more: Record<string, unknown> = {}) => ({
  mode: "workflow",
  operatorRequest: "Design a workflow that lints the repo",
  metadataSummary: "repo: agentgate",
  additionalNotes: "run nightly",
  ...more,
});

async function pollUntilFinal(jobId: string, ms = 15_000) {
  const t0 = Date.now();
  for (;;) {
    const r = await call("GET", `/v1/codex/jobs/${jobId}`);
    expect(r.status).toBe(200);
    if (r.body.status === "succeeded" || r.body.status === "failed") return r.body;
    if (Date.now() - t0 > ms) throw new Error(`job ${jobId} still ${r.body.status}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

describe("POST /v1/codex/jobs then GET /v1/codex/jobs/{jobId}", () => {
  it("queues a seed job (202) and reports every seed field once it succeeded", async () => {
    script({
      messages: ["done: see output/"],
      writeFiles: { "output/suggestion.json": { steps: ["lint", "test"] }, "output/summary.txt": "two steps\n" },
    });
    const created = await call(
      "POST",
      "/v1/codex/jobs",
      seedBody({ timeoutMs: 10_000, contextFiles: [{ path: "notes/a.txt", contents: "alpha" }] }),
    );
    expect(created.status).toBe(202);
    expect(created.body.jobId).toMatch(/^job_/);
    expect(created.body.status).toMatch(/^(pending|running)$/);
    expect(created.body.createdAt).toMatch(ISO);

    const job = await pollUntilFinal(created.body.jobId);
    expect(job).toMatchObject({
      jobId: created.body.jobId,
      status: "succeeded",
      agentgateStatus: "succeeded",
      output: { steps: ["lint", "test"] },
      summary: "two steps",
      error: null,
      exitCode: 0,
      createdAt: created.body.createdAt,
    });
    for (const field of [
      "jobId",
      "status",
      "stdout",
      "stderr",
      "output",
      "summary",
      "error",
      "exitCode",
      "workspace",
      "outputPath",
      "durationMs",
      "createdAt",
      "startedAt",
      "completedAt",
      "updatedAt",
    ])
      expect(job).toHaveProperty(field);
    expect(job.stdout).toContain('"type":"turn.completed"');
    expect(typeof job.stderr).toBe("string");
    expect(job.durationMs).toBeGreaterThanOrEqual(0);
    for (const t of ["createdAt", "startedAt", "completedAt", "updatedAt"]) expect(job[t]).toMatch(ISO);
    // CODEX_PROXY_KEEP_WORKSPACES=true: the workspace stays and its paths are reported.
    expect(job.workspace).toBe(path.join(dataDir, "jobs", created.body.jobId));
    expect(job.outputPath).toBe(path.join(job.workspace, "output", "suggestion.json"));
    expect(JSON.parse(fs.readFileSync(job.outputPath, "utf8"))).toEqual({ steps: ["lint", "test"] });
    expect(fs.readFileSync(path.join(job.workspace, "context", "notes", "a.txt"), "utf8")).toBe("alpha");
    const inv = fakeCodexInvocations(logFile).at(-1)!;
    expect(inv.prompt).toContain("Design a workflow that lints the repo");
  });

  it("reports a job whose suggestion.json is not JSON as failed, with the parse error in error", async () => {
    script({ writeFiles: { "output/suggestion.json": "{not json", "output/summary.txt": "oops" } });
    const created = await call("POST", "/v1/codex/jobs", seedBody());
    expect(created.status).toBe(202);
    const job = await pollUntilFinal(created.body.jobId);
    expect(job.status).toBe("failed");
    expect(job.agentgateStatus).toBe("failed");
    expect(job.failureReason).toBe("invalid_output");
    expect(job.error).toMatch(/suggestion\.json/);
    expect(job.error).toMatch(/JSON/i);
    expect(job.exitCode).toBe(0);
    expect(job.output).toBeNull();
  });

  it("accepts the agentgate extensions (a free prompt with a model and labels)", async () => {
    script({ messages: ["free answer"] });
    const created = await call("POST", "/v1/codex/jobs", {
      prompt: "Say hi",
      model: "gpt-5.5",
      labels: { team: "infra" },
      sandboxPolicy: "read-only",
      additionalNotes: null,
      timeoutMs: null,
    });
    expect(created.status).toBe(202);
    const job = await pollUntilFinal(created.body.jobId);
    expect(job).toMatchObject({ status: "succeeded", finalMessage: "free answer", output: null });
    const inv = fakeCodexInvocations(logFile).at(-1)!;
    expect(inv.argv).toEqual(expect.arrayContaining(["-m", "gpt-5.5"]));
    expect(inv.argv).toEqual(expect.arrayContaining(["--sandbox", "read-only"]));
  });

  it("answers 404 as an OpenAI error object for an unknown job", async () => {
    const r = await call("GET", "/v1/codex/jobs/job_doesnotexist");
    expect(r.status).toBe(404);
    expect(r.body.error).toMatchObject({ type: "invalid_request_error", code: "job_not_found" });
    expect(r.body.error.message).toContain("job_doesnotexist");
  });

  it("cancels with DELETE: the seed view says failed, agentgateStatus says canceled", async () => {
    script({ hang: true });
    const created = await call("POST", "/v1/codex/jobs", seedBody());
    const id = created.body.jobId as string;
    const t0 = Date.now();
    while ((await call("GET", `/v1/codex/jobs/${id}`)).body.status !== "running") {
      if (Date.now() - t0 > 10_000) throw new Error("never ran");
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    const del = await call("DELETE", `/v1/codex/jobs/${id}`);
    expect(del.status).toBe(200);
    expect(del.body).toMatchObject({ jobId: id, status: "failed", agentgateStatus: "canceled" });
    expect(del.body.error).toMatch(/^job canceled: /);
    expect(del.body.completedAt).toMatch(ISO);
  });
});

describe("validation errors are 400 OpenAI error objects naming the field", () => {
  it.each([
    [{ operatorRequest: "x" }, "mode"],
    [seedBody({ mode: "everything" }), "mode"],
    [seedBody({ timeoutMs: 999 }), "timeoutMs"],
    [seedBody({ timeoutMs: "soon" }), "timeoutMs"],
    [{ mode: "job", metadataSummary: "m" }, "operatorRequest"],
    [seedBody({ contextFiles: [{ path: "a.txt" }] }), "contextFiles[0].contents"],
  ])("%j -> param %s", async (body, param) => {
    const r = await call("POST", "/v1/codex/jobs", body);
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ type: "invalid_request_error", param });
  });
});

describe("context file attacks", () => {
  const jobsDir = () => path.join(dataDir, "jobs");
  const jobDirs = () => (fs.existsSync(jobsDir()) ? fs.readdirSync(jobsDir()).sort() : []);

  // [what, the files, what the message contains, param]
  const attacks: [string, () => unknown[], () => string, string][] = [
    [
      "a .. path",
      () => [{ path: "../../sentinel/pwned.txt", contents: "x" }],
      () => '"../../sentinel/pwned.txt"',
      "contextFiles[0].path",
    ],
    ["a short .. path", () => [{ path: "../x", contents: "x" }], () => '"../x"', "contextFiles[0].path"],
    [
      "an absolute path",
      () => [
        { path: "ok.txt", contents: "" },
        { path: "/etc/passwd", contents: "x" },
      ],
      () => '"/etc/passwd"',
      "contextFiles[1].path",
    ],
    [
      "an absolute path into the sentinel",
      () => [{ path: path.join(sentinel, "pwned.txt"), contents: "x" }],
      () => JSON.stringify(path.join(sentinel, "pwned.txt")),
      "contextFiles[0].path",
    ],
    [
      "too many files",
      () => Array.from({ length: 1001 }, (_, i) => ({ path: `f${i}.txt`, contents: "" })),
      () => "1001 files; at most 1000",
      "contextFiles",
    ],
    [
      "a file over the cap",
      () => [{ path: "big/blob.bin", contents: "a".repeat(10 * 1024 * 1024 + 1) }],
      () => '"big/blob.bin" is 10485761 bytes',
      "contextFiles[0].contents",
    ],
  ];

  it.each(attacks)("refuses %s with 400 naming it, and writes nothing", async (_name, files, message, param) => {
    const before = jobDirs();
    for (const route of ["/v1/codex/jobs", "/v1/codex/generate"]) {
      const r = await call("POST", route, seedBody({ contextFiles: files() }));
      expect(r.status).toBe(400);
      expect(r.body.error.type).toBe("invalid_request_error");
      expect(r.body.error.message).toContain(message());
      expect(r.body.error.param).toBe(param);
    }
    expect(fs.readdirSync(sentinel)).toEqual([]);
    expect(jobDirs()).toEqual(before);
    expect(fs.existsSync(path.join(dataDir, "x"))).toBe(false);
    expect(fakeCodexInvocations(logFile)).toEqual([]);
  });
});

describe("POST /v1/codex/generate", () => {
  it("runs the job to its end and answers the seed's result fields", async () => {
    script({
      writeFiles: { "output/suggestion.json": { job: "lint" }, "output/summary.txt": "a lint job" },
    });
    const r = await call("POST", "/v1/codex/generate", seedBody({ mode: "job" }));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ output: { job: "lint" }, summary: "a lint job" });
    for (const f of ["workspace", "outputPath", "output", "stdout", "stderr", "summary", "durationMs"])
      expect(r.body).toHaveProperty(f);
    expect(r.body.outputPath).toBe(path.join(r.body.workspace, "output", "suggestion.json"));
    expect(r.body.stdout).toContain('"type":"thread.started"');
    expect(r.body.durationMs).toBeGreaterThanOrEqual(0);
  });

  it("answers a failed run with 502 {message, exitCode, stdout, stderr} (the seed's shape)", async () => {
    script({ fail: "the model refused", stderr: "something on stderr" });
    const r = await call("POST", "/v1/codex/generate", seedBody());
    expect(r.status).toBe(502);
    expect(r.body.error).toBeUndefined();
    expect(r.body).toMatchObject({ message: "the model refused", exitCode: 1, agentgateStatus: "failed" });
    expect(r.body.stdout).toContain('"type":"turn.failed"');
    expect(r.body.stderr).toContain("something on stderr");
  });

  it("answers invalid suggestion JSON with 502 and the parse error", async () => {
    script({ writeFiles: { "output/suggestion.json": "[1, 2" } });
    const r = await call("POST", "/v1/codex/generate", seedBody());
    expect(r.status).toBe(502);
    expect(r.body.message).toMatch(/suggestion\.json/);
    expect(r.body.failureReason).toBe("invalid_output");
  });

  it("cancels the job when the client goes away", async () => {
    script({ hang: true });
    const ac = new AbortController();
    const pending = fetch(`${h.url}/v1/codex/generate`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(seedBody()),
      signal: ac.signal,
    }).catch((err: unknown) => err);
    const t0 = Date.now();
    while (fakeCodexInvocations(logFile).length === 0) {
      if (Date.now() - t0 > 10_000) throw new Error("codex never started");
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    ac.abort();
    await pending;
    // The workspace (Codex's working directory) is named after the job.
    const id = path.basename(fakeCodexInvocations(logFile)[0]!.cwd);
    const t1 = Date.now();
    let latest = await h.gate.jobs.get(id);
    while (latest.status === "running" || latest.status === "pending") {
      if (Date.now() - t1 > 10_000) throw new Error("job still running after the client left");
      await new Promise((resolve) => setTimeout(resolve, 25));
      latest = await h.gate.jobs.get(id);
    }
    expect(latest.status).toBe("canceled");
  });
});

describe("with AUTH_TOKEN", () => {
  let authed: GatewayHarness;
  beforeAll(async () => {
    authed = await startGateway({
      env: { CODEX_BIN: FAKE, DATA_DIR: path.join(dir, "authed"), AUTH_TOKEN: TOKEN },
      ollama: h.ollama,
    });
  });
  afterAll(() => authed?.close());

  it("refuses every codex-proxy route without the token (401) and accepts X-AppHub-Proxy-Token", async () => {
    const req = (method: string, url: string, body?: unknown, headers: Record<string, string> = {}) =>
      fetch(`${authed.url}${url}`, {
        method,
        headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    for (const [method, url, body] of [
      ["POST", "/v1/codex/jobs", seedBody()],
      ["GET", "/v1/codex/jobs/job_x", undefined],
      ["DELETE", "/v1/codex/jobs/job_x", undefined],
      ["POST", "/v1/codex/generate", seedBody()],
    ] as const) {
      const res = await req(method, url, body);
      expect(res.status, `${method} ${url}`).toBe(401);
      expect(((await res.json()) as any).error.type).toBe("authentication_error");
      const wrong = await req(method, url, body, { authorization: "Bearer nope" });
      expect(wrong.status).toBe(401);
      await wrong.text();
    }
    script({ writeFiles: { "output/suggestion.json": {} } });
    const ok = await req("POST", "/v1/codex/jobs", seedBody(), { "x-apphub-proxy-token": TOKEN });
    expect(ok.status).toBe(202);
    const { jobId } = (await ok.json()) as { jobId: string };
    const got = await req("GET", `/v1/codex/jobs/${jobId}`, undefined, { authorization: `Bearer ${TOKEN}` });
    expect(got.status).toBe(200);
    await got.text();
  });
});
