/**
 * A dreamed endpoint end to end with the real Codex CLI (the bundled @openai/codex): POST /endpoints
 * submits the dreaming job, agentgate runs `codex exec --json ... -` with the dream prompt on stdin,
 * and that Codex's model provider (config.toml written by src/codex/codex-config.ts) is the same
 * agentgate's /v1/responses, backed by the Ollama double. The double answers as a model would: an
 * apply_patch call that adds output/operation.json, output/handler.js and output/examples.json, an
 * exec_command call that tries the handler on one request, then a final message. agentgate then
 * validates the files (the handler in bwrap on every example) and serves the endpoint at /dream/....
 * test/endpoints/dream-flow.test.ts covers the rest of the life cycle with a fake codex.
 */
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import {
  CodexEventType,
  createAgentgateClients,
  EndpointStatus,
  JobStatus,
  type AgentgateClients,
  type Endpoint,
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
import { restCaller, settle as settleEndpoint } from "./endpoint-clients.js";
import { TRUNCATE_EXAMPLES, TRUNCATE_HANDLER, TRUNCATE_OPERATION } from "./fixtures.js";

const MODEL = "qwen3:8b";
const TOKEN = "real-codex-dream-secret-token";
/** Every job's timeout (CODEX_PROXY_TIMEOUT_MS): a failing run ends as a FAILED endpoint, not a hung test. */
const JOB_TIMEOUT_MS = 40_000;

type Body = Record<string, any>;

const TRUNCATE = {
  method: "POST",
  path: "/text/truncate",
  description: "Truncate a text to at most width characters and report the length of the result",
  // The client's own example: validation runs it before Codex's.
  examples: [{ request_body: { text: "abcdefgh", width: 4 }, response_body: { text: "abcd", length: 4 } }],
};

/** An apply_patch that adds each file (the freeform grammar Codex's apply_patch tool takes). */
function addFilesPatch(files: Record<string, string>): string {
  const lines = ["*** Begin Patch"];
  for (const [file, text] of Object.entries(files)) {
    lines.push(`*** Add File: ${file}`);
    for (const line of text.replace(/\n$/, "").split("\n")) lines.push(`+${line}`);
  }
  lines.push("*** End Patch", "");
  return lines.join("\n");
}

const available = codexCliAvailable();

describe.runIf(available)("a dreamed endpoint designed by the real Codex CLI against agentgate's /v1/responses", () => {
  let h: GatewayHarness;
  let ag: AgentgateClients;
  let dirs: CodexRunDirs;

  const chatBodies = (): Body[] => h.ollama.requests.filter((r) => r.path === "/api/chat").map((r) => r.body as Body);

  const rest = restCaller(() => h.url, TOKEN);
  const settle = (id: string) => settleEndpoint(ag, id, JOB_TIMEOUT_MS + 20_000);

  async function jobEvents(jobId: string): Promise<JobEvent[]> {
    const events: JobEvent[] = [];
    for await (const r of ag.jobs.watchJob({ jobId, afterSequence: 0n }, { timeoutMs: 10_000 })) events.push(r.event!);
    return events;
  }

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
        // The handler's sandbox uid must traverse the run directory: it is 0755 (createCodexRunDirs).
        DATA_DIR: path.join(dirs.runDir, "data"),
        CODEX_PROXY_TIMEOUT_MS: String(JOB_TIMEOUT_MS),
        ENDPOINT_HANDLER_TIMEOUT_MS: "5000",
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
  }, 60_000);

  afterAll(async () => {
    await h?.close();
    vi.unstubAllEnvs();
    if (dirs) rmSync(dirs.runDir, { recursive: true, force: true });
  });

  it("POST /endpoints -> Codex writes the three files -> DREAMING -> READY -> POST /dream/... answers", async () => {
    const patch = addFilesPatch({
      "output/operation.json": JSON.stringify(TRUNCATE_OPERATION, null, 2),
      "output/handler.js": TRUNCATE_HANDLER,
      "output/examples.json": JSON.stringify(TRUNCATE_EXAMPLES, null, 2),
    });
    // What a careful model does next: try the handler on one request in its workspace.
    const tryIt =
      `printf '%s' '${JSON.stringify({ method: "POST", path: "/text/truncate", path_params: {}, query: {}, headers: {}, body: { text: "hello world", width: 5 } })}'` +
      ` | node output/handler.js`;
    h.ollama.reset();
    h.ollama.enqueue(
      { toolCalls: [{ name: "apply_patch", arguments: { input: patch } }], promptEvalCount: 2000, evalCount: 300 },
      { toolCalls: [{ name: "exec_command", arguments: { cmd: tryIt } }], promptEvalCount: 2400, evalCount: 60 },
      { content: ["Wrote the operation, ", "the handler and the examples."], promptEvalCount: 2500, evalCount: 12 },
    );

    const created = await rest("POST", "/endpoints", TRUNCATE);
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    expect(created.body).toMatchObject({
      status: "ENDPOINT_STATUS_DREAMING",
      cache_hit: false,
      invoke_path: "/dream/text/truncate",
    });
    const id: string = created.body.id;

    const { statuses, endpoint } = await settle(id);
    const job = (await ag.jobs.getJob({ jobId: endpoint.jobId })).job!;
    expect(
      endpoint.status,
      `${JSON.stringify(endpoint.failureReasons)}\n--- job ${job.error}\n--- stderr:\n${job.stderr}\n--- stdout:\n${job.stdout}`,
    ).toBe(EndpointStatus.READY);
    expect(statuses[0]).toBe(EndpointStatus.DREAMING);
    expect(statuses.at(-1)).toBe(EndpointStatus.READY);
    expect(statuses.filter((s) => s !== EndpointStatus.VALIDATING)).toEqual([
      EndpointStatus.DREAMING,
      EndpointStatus.READY,
    ]);
    expect(endpoint).toMatchObject({ id, version: 1, failureReasons: [] });
    // What Codex wrote, read back from the job's output/ and validated: the handler as written, the
    // client's example first, then Codex's.
    expect(endpoint.handler).toMatchObject({ runtime: "node", entrypoint: "handler.js", source: TRUNCATE_HANDLER });
    expect(endpoint.examples.map((x) => x.description)).toEqual(["", "cut", "short"]);
    expect(endpoint.versions.map((v) => v.status)).toEqual([EndpointStatus.READY]);

    // The dreaming job: run by the real CLI, labelled with the endpoint, all three files collected.
    expect(job).toMatchObject({
      status: JobStatus.SUCCEEDED,
      exitCode: 0,
      finalMessage: "Wrote the operation, the handler and the examples.",
      usage: { inputTokens: 6900n, outputTokens: 372n },
    });
    expect(job.spec!.labels["agentgate.endpoint_id"]).toBe(id);
    expect(job.threadId).toMatch(/^[0-9a-f-]{36}$/);
    const codex = (await jobEvents(job.id)).flatMap((e) => (e.event.case === "codex" ? [e.event.value] : []));
    expect(codex[0]).toMatchObject({ type: CodexEventType.THREAD_STARTED });
    const completed = codex.filter((c) => c.type === CodexEventType.ITEM_COMPLETED).map((c) => c.raw as Body);
    const change = completed.find((c) => c.item?.type === "file_change");
    expect(
      (change?.item.changes as { path: string; kind: string }[]).map((c) => [path.basename(c.path), c.kind]).sort(),
    ).toEqual([
      ["examples.json", "add"],
      ["handler.js", "add"],
      ["operation.json", "add"],
    ]);
    const command = completed.find((c) => c.item?.type === "command_execution");
    expect(command?.item).toMatchObject({ exit_code: 0, status: "completed" });
    expect(codex.at(-1)).toMatchObject({ type: CodexEventType.TURN_COMPLETED });
    // The real CLI recorded the thread in CODEX_HOME.
    const rollouts = readdirSync(path.join(dirs.codexHome, "sessions"), { recursive: true, encoding: "utf8" });
    expect(rollouts.some((f) => f.endsWith(`-${job.threadId}.jsonl`))).toBe(true);

    // Codex's three model calls went through agentgate's /v1/responses to the double: the dream
    // prompt in the first, the patch's and the command's results replayed in the next ones.
    const posts = h.logs.filter((l) => l.msg === "request" && l.url === "/v1/responses");
    expect(posts.map((l) => Number(l.status))).toEqual([200, 200, 200]);
    const bodies = chatBodies();
    expect(bodies).toHaveLength(3);
    expect(bodies[0]!.model).toBe(MODEL);
    const prompt = JSON.stringify(bodies[0]!.messages);
    expect(prompt).toContain("# Design an HTTP endpoint");
    expect(prompt).toContain("`POST /text/truncate`");
    expect(prompt).toContain("output/operation.json");
    expect(prompt).toContain('\\"abcdefgh\\"'); // the client's example
    expect((bodies[0]!.tools as Body[]).map((t) => t.function.name)).toEqual(
      expect.arrayContaining(["apply_patch", "exec_command"]),
    );
    const tools = (bodies[2]!.messages as Body[]).filter((m) => m.role === "tool");
    expect(tools.map((m) => m.tool_name)).toEqual(["apply_patch", "exec_command"]);
    // The handler Codex wrote already answered inside Codex's own sandbox.
    expect(tools[1]!.content).toContain('{"text":"hello","length":5}');

    // Served at /dream/...: the handler's answer, run in bwrap and checked against the response schema.
    const ok = await rest("POST", "/dream/text/truncate", { text: "dreamed endpoints", width: 7 });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    expect(ok.body).toEqual({ text: "dreamed", length: 7 });
    expect(ok.headers.get("agentgate-endpoint-id")).toBe(id);
    expect(ok.headers.get("agentgate-endpoint-version")).toBe("1");
    // The operation Codex wrote is enforced on requests.
    const bad = await rest("POST", "/dream/text/truncate", { text: "abc", width: "three" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/width/);
    const doc = await rest("GET", "/dream/openapi.json");
    expect(doc.body.paths["/text/truncate"].post.requestBody).toEqual(TRUNCATE_OPERATION.requestBody);
  }, 90_000);
});
