// Upstream faults, disconnects, deadlines, timeouts and graceful shutdown against a real gateway and
// the Ollama double: every failure is an HTTP status or an SSE error event followed by [DONE] (or a
// Connect code), never a hang, and abandoned work is cancelled upstream.
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createAgentgateClients, Role } from "../../clients/index.js";
import { UpstreamCall, UpstreamTimeout, upstreamFailure } from "../../src/backends/upstream-call.js";
import { startGateway, type GatewayHarness } from "../support/gateway-harness.js";

type OpenAIError = { error: { message: string; type: string; param: string | null; code: string | null } };

const CHAT = { model: "qwen3:8b", messages: [{ role: "user", content: "tell me a story" }] };

function post(h: GatewayHarness, path: string, body: unknown, signal: AbortSignal = AbortSignal.timeout(5_000)) {
  return fetch(`${h.url}${path}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });
}

/** The `data:` payloads of an SSE body (each JSON-parsed except [DONE]). */
function events(text: string): unknown[] {
  return text
    .split("\n\n")
    .filter((block) => block.startsWith("data: "))
    .map((block) => block.slice(6))
    .map((data) => (data === "[DONE]" ? "[DONE]" : (JSON.parse(data) as unknown)));
}

async function metricsText(h: GatewayHarness): Promise<string> {
  const res = await fetch(`${h.url}/metrics`);
  expect(res.status).toBe(200);
  return res.text();
}

function activeStreams(text: string, protocol: string): number {
  const m = new RegExp(`^agentgate_active_streams\\{protocol="${protocol}"\\} (\\d+)$`, "m").exec(text);
  return m ? Number(m[1]) : 0;
}

async function rpcCode(p: Promise<unknown>): Promise<Code> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err).code;
  }
  throw new Error("the call succeeded");
}

describe("upstream faults", () => {
  let h: GatewayHarness;

  beforeAll(async () => {
    h = await startGateway();
  });

  afterEach(async () => {
    await h.ollama.up();
    h.ollama.reset();
  });

  afterAll(async () => {
    await h?.close();
  });

  it("upstream down: 503 naming the upstream URL for chat, streaming chat, completions, embeddings and models", async () => {
    await h.ollama.down();
    const cases: [string, string, unknown][] = [
      ["chat", "/v1/chat/completions", CHAT],
      ["streaming chat", "/v1/chat/completions", { ...CHAT, stream: true }],
      ["streaming completions", "/v1/completions", { model: "qwen3:8b", prompt: "hi", stream: true }],
      ["embeddings", "/v1/embeddings", { model: "nomic-embed-text", input: "hi" }],
    ];
    for (const [label, path, body] of cases) {
      const res = await post(h, path, body);
      expect(res.status, label).toBe(503);
      expect(res.headers.get("content-type"), label).toMatch(/^application\/json/);
      const err = (await res.json()) as OpenAIError;
      expect(err.error.message, label).toContain(h.ollama.url);
      expect(err.error.message, label).toMatch(/unreachable/);
      expect(err.error.type, label).toBe("api_error");
      expect(err.error.code, label).toBe("upstream_unavailable");
    }
    // The list answers with what the other backends (the codex model) still serve, without Ollama's.
    const models = await fetch(`${h.url}/v1/models`);
    expect(models.status).toBe(200);
    const ids = ((await models.json()) as { data: { id: string }[] }).data.map((m) => m.id);
    expect(ids).not.toContain("qwen3:8b");
    // One model: with its backend unreachable the gateway cannot tell whether it exists: 503, not 404.
    const one = await fetch(`${h.url}/v1/models/qwen3:8b`);
    expect(one.status).toBe(503);
    expect(((await one.json()) as OpenAIError).error.message).toMatch(/unreachable/);
    // RPC: unavailable.
    const c = createAgentgateClients({ baseUrl: h.url, httpVersion: "1.1" });
    expect(
      await rpcCode(c.completion.chat({ model: "qwen3:8b", messages: [{ role: Role.USER, content: "hi" }] })),
    ).toBe(Code.Unavailable);
    // /healthz says degraded but answers.
    const health = (await (await fetch(`${h.url}/healthz`)).json()) as {
      status: string;
      backends: { ok: boolean; detail: string }[];
    };
    expect(health.status).toBe("degraded");
    expect(health.backends[0]!.ok).toBe(false);
    // Back up: served again.
    await h.ollama.up();
    expect((await post(h, "/v1/chat/completions", CHAT)).status).toBe(200);
  });

  it("upstream HTTP 500: 502 with the upstream's message", async () => {
    h.ollama.enqueue({ httpError: { status: 500, message: "llama runner process has terminated" } });
    const res = await post(h, "/v1/chat/completions", CHAT);
    expect(res.status).toBe(502);
    const err = (await res.json()) as OpenAIError;
    expect(err.error.message).toContain("llama runner process has terminated");
    expect(err.error.message).toContain(h.ollama.url);
    expect(err.error.type).toBe("api_error");
    // Streaming too: nothing was streamed yet, so it is still a JSON 502.
    h.ollama.enqueue({ httpError: { status: 500, message: "out of memory" } });
    const s = await post(h, "/v1/chat/completions", { ...CHAT, stream: true });
    expect(s.status).toBe(502);
    expect(((await s.json()) as OpenAIError).error.message).toContain("out of memory");
  });

  it("metrics count the failures: agentgate_requests_total by status and agentgate_upstream_errors_total by kind", async () => {
    h.ollama.enqueue({ httpError: { status: 500, message: "boom" } });
    expect((await post(h, "/v1/chat/completions", CHAT)).status).toBe(502);
    const text = await metricsText(h);
    expect(text).toMatch(
      /^agentgate_requests_total\{protocol="rest",route="\/v1\/chat\/completions",status="502"\} [1-9]\d*$/m,
    );
    expect(text).toMatch(
      /^agentgate_requests_total\{protocol="rest",route="\/v1\/chat\/completions",status="503"\} [1-9]\d*$/m,
    );
    expect(text).toMatch(
      /^agentgate_upstream_errors_total\{backend="ollama",operation="chat",kind="upstream_error"\} [1-9]\d*$/m,
    );
    expect(text).toMatch(
      /^agentgate_upstream_errors_total\{backend="ollama",operation="chat",kind="unavailable"\} [1-9]\d*$/m,
    );
    expect(text).toMatch(
      /^agentgate_upstream_errors_total\{backend="ollama",operation="embed",kind="unavailable"\} [1-9]\d*$/m,
    );
  });

  for (const [label, script] of [
    ["an error line mid-stream", { midStreamError: { afterChunks: 2, message: "model crashed mid-answer" } }],
    ["the socket destroyed mid-stream", { destroy: { afterChunks: 2 } }],
  ] as const) {
    it(`${label}: an SSE error event, then [DONE], never a hang`, async () => {
      h.ollama.enqueue({ content: ["one ", "two ", "three ", "four "], chunkDelayMs: 10, ...script });
      const res = await post(h, "/v1/chat/completions", { ...CHAT, stream: true }, AbortSignal.timeout(3_000));
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toMatch(/^text\/event-stream/);
      const text = await res.text();
      expect(text.endsWith("data: [DONE]\n\n")).toBe(true);
      const evs = events(text);
      expect(evs.at(-1)).toBe("[DONE]");
      const err = evs.at(-2) as OpenAIError;
      expect(err.error.type).toBe("api_error");
      expect(err.error.message).toContain(h.ollama.url);
      if ("midStreamError" in script) expect(err.error.message).toContain("model crashed mid-answer");
      // What came before is the content the upstream had sent.
      const content = evs
        .slice(0, -2)
        .map((e) => (e as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? "")
        .join("");
      expect(content).toBe("one two ");
      await expect.poll(async () => activeStreams(await metricsText(h), "sse")).toBe(0);
    });
  }

  it("RPC server stream: an upstream error mid-stream ends the stream with a Connect error", async () => {
    h.ollama.enqueue({ content: ["a ", "b ", "c "], midStreamError: { afterChunks: 1, message: "gpu fell off" } });
    const c = createAgentgateClients({ baseUrl: h.url, httpVersion: "1.1" });
    const got: string[] = [];
    const code = await rpcCode(
      (async () => {
        for await (const m of c.completion.chatStream(
          { model: "qwen3:8b", messages: [{ role: Role.USER, content: "hi" }] },
          { timeoutMs: 3_000 },
        )) {
          got.push(m.contentDelta);
        }
      })(),
    );
    expect(code).toBe(Code.Unavailable);
    expect(got.join("")).toBe("a ");
  });

  it("client disconnect mid-stream aborts the upstream request and the stream gauge returns to 0", async () => {
    h.ollama.enqueue({ content: Array.from({ length: 100 }, (_, i) => `w${i} `), chunkDelayMs: 50 });
    const ac = new AbortController();
    const res = await post(h, "/v1/chat/completions", { ...CHAT, stream: true }, ac.signal);
    expect(res.status).toBe(200);
    const reader = res.body!.getReader();
    const first = await reader.read();
    expect(new TextDecoder().decode(first.value)).toContain("chat.completion.chunk");
    expect(activeStreams(await metricsText(h), "sse")).toBe(1);
    ac.abort();
    const aborted = await h.ollama.waitForAbort(2_000);
    expect(aborted.path).toBe("/api/chat");
    await expect.poll(async () => activeStreams(await metricsText(h), "sse")).toBe(0);
    // A cancelled stream is not an upstream error.
    expect(await metricsText(h)).not.toMatch(/kind="canceled"/);
  });

  it("client disconnect during a non-streaming call aborts the upstream request", async () => {
    for (const [path, body] of [
      ["/v1/chat/completions", CHAT],
      ["/v1/completions", { model: "qwen3:8b", prompt: "hi" }],
    ] as const) {
      h.ollama.enqueue({ hang: true });
      const ac = new AbortController();
      const pending = post(h, path, body, ac.signal).catch((err: unknown) => err);
      // Wait until the gateway has called the upstream, then go away.
      await expect.poll(() => h.ollama.requests.some((r) => r.path !== "/api/version")).toBe(true);
      ac.abort();
      expect((await pending) as Error).toBeInstanceOf(Error);
      expect((await h.ollama.waitForAbort(2_000)).path).toBe(
        path === "/v1/completions" ? "/api/generate" : "/api/chat",
      );
      h.ollama.reset();
    }
  });

  for (const [label, opts] of [
    ["Connect over HTTP/1.1", { httpVersion: "1.1" as const }],
    ["gRPC over h2c", { protocol: "grpc" as const }],
  ] as const) {
    it(`a slow upstream honours the RPC deadline (${label}): deadline_exceeded within ~1 s, upstream aborted`, async () => {
      h.ollama.enqueue({ hang: true });
      const c = createAgentgateClients({ baseUrl: h.url, ...opts });
      const started = Date.now();
      const code = await rpcCode(
        c.completion.chat({ model: "qwen3:8b", messages: [{ role: Role.USER, content: "hi" }] }, { timeoutMs: 300 }),
      );
      expect(code).toBe(Code.DeadlineExceeded);
      expect(Date.now() - started).toBeLessThan(1_000);
      // The server saw the deadline too (not only the client): it cancelled the upstream call.
      expect((await h.ollama.waitForAbort(1_500)).path).toBe("/api/chat");
    });
  }

  it("a slow upstream honours the deadline of a server stream", async () => {
    h.ollama.enqueue({ content: ["a ", "b "], hang: { afterChunks: 1 } });
    const c = createAgentgateClients({ baseUrl: h.url, protocol: "grpc" });
    const started = Date.now();
    const got: string[] = [];
    const code = await rpcCode(
      (async () => {
        for await (const m of c.completion.chatStream(
          { model: "qwen3:8b", messages: [{ role: Role.USER, content: "hi" }] },
          { timeoutMs: 400 },
        )) {
          got.push(m.contentDelta);
        }
      })(),
    );
    expect(code).toBe(Code.DeadlineExceeded);
    expect(got.join("")).toBe("a ");
    expect(Date.now() - started).toBeLessThan(1_200);
    expect((await h.ollama.waitForAbort(1_500)).path).toBe("/api/chat");
    await expect.poll(async () => activeStreams(await metricsText(h), "rpc")).toBe(0);
  });
});

describe("UPSTREAM_TIMEOUT_MS", () => {
  let h: GatewayHarness;

  beforeAll(async () => {
    h = await startGateway({ env: { UPSTREAM_TIMEOUT_MS: "200" } });
  });

  afterAll(async () => {
    await h?.close();
  });

  it("a slow first byte is a 504 upstream_timeout (streaming or not), and the upstream call is cancelled", async () => {
    for (const stream of [false, true]) {
      h.ollama.enqueue({ firstByteDelayMs: 3_000 });
      const started = Date.now();
      const res = await post(h, "/v1/chat/completions", { ...CHAT, stream });
      expect(res.status).toBe(504);
      expect(Date.now() - started).toBeLessThan(1_500);
      const err = (await res.json()) as OpenAIError;
      expect(err.error.code).toBe("upstream_timeout");
      expect(err.error.type).toBe("timeout_error");
      expect(err.error.message).toContain(h.ollama.url);
      expect((await h.ollama.waitForAbort(1_000)).path).toBe("/api/chat");
    }
    // A stream that starts in time is not cut, however long it runs.
    h.ollama.enqueue({ content: ["a ", "b ", "c ", "d ", "e "], chunkDelayMs: 80 });
    const ok = await post(h, "/v1/chat/completions", { ...CHAT, stream: true });
    expect(ok.status).toBe(200);
    const evs = events(await ok.text());
    expect(evs.at(-1)).toBe("[DONE]");
    expect(
      evs.map((e) => (e as { choices?: { delta: { content?: string } }[] }).choices?.[0]?.delta.content ?? "").join(""),
    ).toBe("a b c d e ");
  });

  it("a stream that goes silent mid-way is cut after UPSTREAM_TIMEOUT_MS: an upstream_timeout event, then [DONE]", async () => {
    h.ollama.enqueue({ content: ["a ", "b "], hang: { afterChunks: 1 } });
    const started = Date.now();
    const res = await post(h, "/v1/chat/completions", { ...CHAT, stream: true }, AbortSignal.timeout(5_000));
    expect(res.status).toBe(200);
    const evs = events(await res.text());
    expect(Date.now() - started).toBeLessThan(1_500);
    expect(evs.at(-1)).toBe("[DONE]");
    const err = evs.at(-2) as OpenAIError;
    expect(err.error.code).toBe("upstream_timeout");
    expect(err.error.message).toMatch(/no data for 200 ms/);
    expect((await h.ollama.waitForAbort(1_000)).path).toBe("/api/chat");
  });

  it("a non-streaming answer that takes longer than the timeout is not cut while the upstream keeps producing", async () => {
    h.ollama.enqueue({ content: ["a ", "b ", "c ", "d ", "e ", "f "], chunkDelayMs: 100 });
    const res = await post(h, "/v1/chat/completions", CHAT);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { choices: { message: { content: string } }[] };
    expect(body.choices[0]!.message.content).toBe("a b c d e f ");
  });
});

describe("graceful shutdown", () => {
  it("close() ends open streams cleanly within SHUTDOWN_GRACE_MS + 2 s", async () => {
    const h = await startGateway({ env: { SHUTDOWN_GRACE_MS: "500" } });
    try {
      // One stream that finishes inside the grace period, one that would run for 5 s.
      h.ollama.enqueue(
        { content: ["s1 ", "s2 ", "s3 "], chunkDelayMs: 60 },
        { content: Array.from({ length: 50 }, (_, i) => `l${i} `), chunkDelayMs: 100 },
      );
      const short = await post(h, "/v1/chat/completions", { ...CHAT, stream: true }, AbortSignal.timeout(5_000));
      const long = await post(h, "/v1/chat/completions", { ...CHAT, stream: true }, AbortSignal.timeout(5_000));
      expect(short.status).toBe(200);
      expect(long.status).toBe(200);
      const texts = Promise.all([short.text(), long.text()]);
      const started = Date.now();
      await h.gate.close();
      const took = Date.now() - started;
      expect(took).toBeLessThan(500 + 2_000);
      const [shortText, longText] = await texts;
      // The short one completed normally.
      const s = events(shortText);
      expect(s.at(-1)).toBe("[DONE]");
      expect((s.at(-2) as { choices: { finish_reason: string }[] }).choices[0]!.finish_reason).toBe("stop");
      // The long one got an error event, then [DONE].
      const l = events(longText);
      expect(l.at(-1)).toBe("[DONE]");
      const err = l.at(-2) as OpenAIError;
      expect(err.error.message).toMatch(/shutting down/);
      expect(err.error.type).toBe("api_error");
      // The upstream request of the cut stream was cancelled.
      expect((await h.ollama.waitForAbort(1_000)).path).toBe("/api/chat");
      // New connections are refused after close.
      await expect(fetch(`${h.url}/healthz`, { signal: AbortSignal.timeout(1_000) })).rejects.toThrow();
    } finally {
      await h.close();
    }
  });
});

describe("UpstreamCall (unit)", () => {
  const up = { name: "ollama", describe: "ollama at http://127.0.0.1:9" };

  it("the first-byte timer aborts a call that never answers, classified as upstream_timeout", async () => {
    const call = new UpstreamCall(new AbortController().signal, 100);
    await expect.poll(() => call.signal.aborted).toBe(true);
    const err = upstreamFailure(up, new Error("This operation was aborted"), call.signal);
    expect([err.kind, err.code]).toEqual(["deadline_exceeded", "upstream_timeout"]);
    expect(err.message).toContain(up.describe);
    call.finish();
  });

  it("after the first byte the timer measures silence: progress() keeps a slow but steady call alive", async () => {
    const call = new UpstreamCall(new AbortController().signal, 150);
    call.answered();
    for (let i = 0; i < 6; i++) {
      await new Promise((r) => setTimeout(r, 60));
      call.progress();
    }
    expect(call.signal.aborted).toBe(false);
    await expect.poll(() => call.signal.aborted, { timeout: 1_000 }).toBe(true);
    const err = upstreamFailure(up, new Error("aborted"), call.signal);
    expect([err.kind, err.code]).toEqual(["deadline_exceeded", "upstream_timeout"]);
    expect(err.message).toMatch(/no data for 150 ms/);
    call.finish();
  });

  it("finish() aborts an unfinished call but leaves a completed one alone", () => {
    const open = new UpstreamCall(new AbortController().signal, 5_000);
    open.finish();
    expect(open.signal.aborted).toBe(true);
    const done = new UpstreamCall(new AbortController().signal, 5_000);
    done.complete();
    done.finish();
    expect(done.signal.aborted).toBe(false);
  });

  it("the caller going away aborts the call with the caller's reason, classified as canceled", () => {
    const caller = new AbortController();
    const call = new UpstreamCall(caller.signal, 5_000);
    caller.abort(new Error("client went away"));
    expect(call.signal.aborted).toBe(true);
    expect((call.signal.reason as Error).message).toBe("client went away");
    expect(upstreamFailure(up, new Error("aborted"), call.signal).kind).toBe("canceled");
    call.finish();
  });
});
