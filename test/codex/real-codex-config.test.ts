// The real Codex CLI (bundled @openai/codex 0.169.0) configured by `agentgate codex-config`'s renderer,
// against a scripted Responses mock that also serves our model catalog: Codex must fetch the catalog,
// accept every entry (no "Model metadata ... not found"), send the Bearer key to base_url + /responses,
// use our base_instructions and tools, and accept the config under --strict-config.
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { mkdirSync, rmSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ModelInfo } from "../../src/completion/types.js";
import { AGENT_INSTRUCTIONS, CHAT_ONLY_INSTRUCTIONS, codexModelCatalog } from "../../src/codex/model-catalog.js";
import { codexCliAvailable, runCodexExec, type CodexExecResult } from "../support/real-codex.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const REPLY = "Done: nothing to change.";
const THINKING_MODEL = "qwen3:8b";
const CHAT_ONLY_MODEL = "gemma3:1b";

const MODELS: ModelInfo[] = [
  {
    id: CHAT_ONLY_MODEL,
    backend: "ollama",
    ownedBy: "library",
    created: 0,
    contextWindow: 32_768,
    capabilities: ["chat", "completion"],
  },
  {
    id: THINKING_MODEL,
    backend: "ollama",
    ownedBy: "library",
    created: 0,
    contextWindow: 40_960,
    capabilities: ["chat", "completion", "tools", "thinking"],
    family: "qwen3",
  },
  { id: "nomic-embed-text", backend: "ollama", ownedBy: "library", created: 0, capabilities: ["embedding"] },
];

interface Recorded {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown> | undefined;
}

/** A loopback Responses mock: records every request, serves the catalog and one assistant message. */
function startMock(): Promise<{ url: string; requests: Recorded[]; close(): Promise<void> }> {
  const requests: Recorded[] = [];
  const catalog = codexModelCatalog(MODELS, { maxContextWindow: 65_536, defaultModel: THINKING_MODEL });
  const server: Server = createServer((req, res) => {
    let text = "";
    req.setEncoding("utf8").on("data", (d: string) => (text += d));
    req.on("end", () => {
      requests.push({
        method: req.method!,
        url: req.url!,
        headers: req.headers,
        body: text ? (JSON.parse(text) as Record<string, unknown>) : undefined,
      });
      if (req.method === "GET" && req.url!.split("?")[0] === "/v1/models") {
        // What agentgate will serve: OpenAI's `data` and Codex's `models` in one body.
        const data = MODELS.map((m) => ({ id: m.id, object: "model", created: 0, owned_by: m.ownedBy }));
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify({ object: "list", data, models: catalog.models }));
        return;
      }
      if (req.method === "POST" && req.url === "/v1/responses") {
        res.writeHead(200, { "content-type": "text/event-stream" });
        const send = (event: Record<string, unknown>) =>
          res.write(`event: ${String(event.type)}\ndata: ${JSON.stringify(event)}\n\n`);
        send({ type: "response.created", response: { id: "resp_1" } });
        send({
          type: "response.output_item.done",
          output_index: 0,
          item: { type: "message", role: "assistant", id: "msg_1", content: [{ type: "output_text", text: REPLY }] },
        });
        send({
          type: "response.completed",
          response: { id: "resp_1", usage: { input_tokens: 12, output_tokens: 5, total_tokens: 17 } },
        });
        res.end();
        return;
      }
      res.writeHead(404, { "content-type": "application/json" });
      res.end('{"error":{"message":"not found"}}');
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        requests,
        close: () => new Promise((r) => server.close(() => r())),
      }),
    ),
  );
}

const METADATA_WARNING = /Model metadata for `[^`]*` not found/;

describe.skipIf(!codexCliAvailable())("the real Codex CLI with agentgate's config and catalog", () => {
  let mock: Awaited<ReturnType<typeof startMock>>;
  let cwd: string;
  beforeAll(async () => {
    mock = await startMock();
    // Outside the temp dir for the same reason as CODEX_HOME (see test/support/real-codex.ts).
    cwd = path.join(ROOT, "node_modules/.cache/agentgate-codex-test", `cwd-${process.pid}`);
    mkdirSync(cwd, { recursive: true });
  });
  afterAll(async () => {
    await mock?.close();
    if (cwd) rmSync(cwd, { recursive: true, force: true });
  });

  /** Each run uses its own key, so the mock's requests can be told apart. */
  const run = (apiKey: string, model: string, extra: Partial<Parameters<typeof runCodexExec>[0]> = {}) =>
    runCodexExec({
      baseUrl: `${mock.url}/v1`,
      apiKey,
      model,
      prompt: "Say whether anything needs changing.",
      cwd,
      provider: { request_max_retries: 0, stream_max_retries: 0, stream_idle_timeout_ms: 20_000 },
      args: ["--strict-config"],
      timeoutMs: 60_000,
      ...extra,
    });
  const requestsOf = (apiKey: string) => mock.requests.filter((r) => r.headers.authorization === `Bearer ${apiKey}`);
  const everything = (r: CodexExecResult) => `${r.stdout}\n${r.stderr}`;
  const tools = (body: Record<string, unknown> | undefined) =>
    (body?.tools ?? []) as { type: string; name?: string; format?: { type: string; definition?: string } }[];

  it("fetches the catalog, posts to base_url/responses with the Bearer key and uses our instructions and tools", async () => {
    const r = await run("key-agent", THINKING_MODEL);
    expect(r.timedOut).toBe(false);
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.lastAgentMessage).toBe(REPLY);
    expect(r.events.map((e) => e.type)).toContain("turn.completed");
    expect(everything(r)).not.toMatch(METADATA_WARNING);
    expect(r.events.filter((e) => e.type === "error" || e.item?.type === "error")).toEqual([]);

    const reqs = requestsOf("key-agent");
    const catalogFetch = reqs.find((q) => q.method === "GET");
    expect(catalogFetch?.url).toMatch(/^\/v1\/models\?client_version=\d+\.\d+\.\d+$/);
    const posts = reqs.filter((q) => q.method === "POST");
    expect(posts.map((q) => q.url)).toEqual(["/v1/responses"]);
    // Every request to the mock carried the key (none went out without it).
    expect(mock.requests.filter((q) => !q.headers.authorization)).toEqual([]);

    const body = posts[0]!.body!;
    expect(body).toMatchObject({ model: THINKING_MODEL, stream: true, store: false });
    expect(body).not.toHaveProperty("instructions");
    expect(body).not.toHaveProperty("previous_response_id");
    // The catalog's levels: Codex sends an effort for a thinking model.
    expect(body.reasoning).toEqual({ effort: "medium", summary: "auto" });
    // base_instructions replaced Codex's 17 KB prompt as the first developer message.
    const first = (body.input as { role: string; content: { text: string }[] }[])[0]!;
    expect(first.role).toBe("developer");
    expect(first.content[0]!.text).toBe(AGENT_INSTRUCTIONS);
    // apply_patch_tool_type "freeform" makes Codex offer apply_patch as a custom grammar tool.
    const t = tools(body);
    const applyPatch = t.find((x) => x.name === "apply_patch");
    expect(applyPatch).toMatchObject({ type: "custom", format: { type: "grammar" } });
    expect(applyPatch!.format!.definition).toContain("*** Begin Patch");
    expect(t.find((x) => x.name === "exec_command")?.type).toBe("function");
    expect(t.some((x) => x.type === "web_search")).toBe(false); // web_search = "disabled"
  }, 90_000);

  it("gives a model without tool calling no apply_patch, no reasoning effort and the chat-only instructions (and takes -c overrides)", async () => {
    const r = await run("key-chat", CHAT_ONLY_MODEL, { config: { "features.multi_agent": false } });
    expect(r.exitCode, r.stderr).toBe(0);
    expect(r.lastAgentMessage).toBe(REPLY);
    expect(everything(r)).not.toMatch(METADATA_WARNING);
    const body = requestsOf("key-chat").find((q) => q.method === "POST")!.body!;
    expect(body.reasoning).toEqual({ summary: "auto" });
    expect(tools(body).some((x) => x.name === "apply_patch")).toBe(false);
    // The -c override reached Codex: no multi-agent namespace tool.
    expect(tools(body).some((x) => x.type === "namespace")).toBe(false);
    const first = (body.input as { content: { text: string }[] }[])[0]!;
    expect(first.content[0]!.text).toBe(CHAT_ONLY_INSTRUCTIONS);
  }, 90_000);

  it("warns about a model the catalog lacks (so the checks above can fail)", async () => {
    const r = await run("key-unknown", "not-in-the-catalog");
    expect(r.exitCode, r.stderr).toBe(0);
    expect(everything(r)).toMatch(METADATA_WARNING);
    expect(requestsOf("key-unknown").some((q) => q.method === "GET")).toBe(true);
  }, 90_000);

  it("accepts a user's config merged with ours under --strict-config, and strict mode does reject unknown keys", async () => {
    const userConfig = `model = "gpt-5"
approval_policy = "never"

[model_providers.other]
name = "Other"
base_url = "http://127.0.0.1:9/v1"
wire_api = "responses"
env_key = "OTHER_KEY"

[model_providers.agentgate]
name = "stale"
base_url = "http://stale.invalid/v1"

[shell_environment_policy]
inherit = "core"
`;
    const [merged, bogus] = await Promise.all([
      run("key-merged", THINKING_MODEL, { existingConfig: userConfig }),
      run("key-bogus", THINKING_MODEL, { existingConfig: "no_such_codex_setting = 1\n" }),
    ]);
    expect(merged.exitCode, merged.stderr).toBe(0);
    expect(merged.lastAgentMessage).toBe(REPLY);
    expect(everything(merged)).not.toMatch(METADATA_WARNING);
    expect(requestsOf("key-merged").find((q) => q.method === "POST")?.body?.model).toBe(THINKING_MODEL);

    expect(bogus.exitCode).not.toBe(0);
    expect(bogus.stderr).toMatch(/unknown configuration field `no_such_codex_setting`/);
    expect(requestsOf("key-bogus")).toEqual([]);
  }, 90_000);
});
