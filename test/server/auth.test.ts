// AUTH_TOKEN: every route and RPC but /healthz needs the token (Bearer or X-AppHub-Proxy-Token),
// compared in constant time; the token never reaches the logs; RATE_LIMIT_RPM limits per token.
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

vi.mock("node:crypto", async (importOriginal) => {
  const mod = await importOriginal<typeof import("node:crypto")>();
  const timingSafeEqual = vi.fn(mod.timingSafeEqual);
  return { ...mod, default: { ...mod, timingSafeEqual }, timingSafeEqual };
});

import { timingSafeEqual } from "node:crypto";
import { createAgentgateClients, Role } from "../../clients/index.js";
import { GatewayError } from "../../src/errors/gateway-error.js";
import { nodeHeaders, presentedToken, TokenAuth } from "../../src/server/auth.js";
import { startGateway, type GatewayHarness } from "../support/gateway-harness.js";

const TOKEN = "auth-suite-s3cret-token-XYZ";
const OTHER = "auth-suite-s3cret-token-XYQ"; // same length, one character apart

type OpenAIError = { error: { message: string; type: string; param: string | null; code: string | null } };

async function codeOf(p: Promise<unknown>): Promise<Code> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err).code;
  }
  throw new Error("the call succeeded");
}

describe("TokenAuth (unit)", () => {
  const headers = (h: Record<string, string>) => nodeHeaders(h);

  it("accepts the token as Bearer (any case, surrounding spaces) and as X-AppHub-Proxy-Token", () => {
    const auth = new TokenAuth(TOKEN);
    expect(auth.enabled).toBe(true);
    expect(() => auth.check(headers({ authorization: `Bearer ${TOKEN}` }))).not.toThrow();
    expect(() => auth.check(headers({ authorization: `bearer   ${TOKEN} ` }))).not.toThrow();
    expect(() => auth.check(headers({ "x-apphub-proxy-token": TOKEN }))).not.toThrow();
  });

  it("compares with timingSafeEqual on equal-length digests, for equal, unequal and different-length tokens", () => {
    const auth = new TokenAuth(TOKEN);
    const spy = vi.mocked(timingSafeEqual);
    for (const [given, ok] of [
      [TOKEN, true],
      [OTHER, false],
      ["short", false],
      [`${TOKEN}${"x".repeat(500)}`, false],
    ] as const) {
      spy.mockClear();
      const check = () => auth.check(headers({ authorization: `Bearer ${given}` }));
      if (ok) expect(check).not.toThrow();
      else expect(check).toThrow(GatewayError);
      expect(spy).toHaveBeenCalledTimes(1);
      const [a, b] = spy.mock.calls[0]!;
      expect((a as Buffer).length).toBe(32);
      expect((b as Buffer).length).toBe(32);
    }
  });

  it("rejects missing, empty and malformed credentials as unauthenticated", () => {
    const auth = new TokenAuth(TOKEN);
    const kinds = (
      [
        {},
        { authorization: "Bearer " },
        { authorization: "Bearer" },
        { authorization: TOKEN },
        { authorization: `Basic ${TOKEN}` },
        { authorization: `Bearer ${TOKEN} extra` },
        { "x-apphub-proxy-token": "" },
        { "x-apphub-proxy-token": OTHER },
      ] as Record<string, string>[]
    ).map((h) => {
      try {
        auth.check(headers(h));
        return "accepted";
      } catch (err) {
        return (err as GatewayError).kind;
      }
    });
    expect(kinds).toEqual(Array(8).fill("unauthenticated"));
  });

  it("prefers a valid Authorization over X-AppHub-Proxy-Token, and falls back to it for non-Bearer schemes", () => {
    expect(presentedToken(headers({ authorization: `Bearer a1`, "x-apphub-proxy-token": "b2" }))).toBe("a1");
    expect(presentedToken(headers({ authorization: `Basic a1`, "x-apphub-proxy-token": "b2" }))).toBe("b2");
  });

  it("is off without a token", () => {
    const auth = new TokenAuth(undefined);
    expect(auth.enabled).toBe(false);
    expect(() => auth.check(headers({}))).not.toThrow();
  });
});

/** Routes over the job domain (dreamed endpoints queue jobs too): answering them with 200 would mean running Codex. */
const RUNS_CODEX = /^\/(v1\/codex\/|completion$|sessions|triggers|endpoints)/;

describe("with AUTH_TOKEN set", () => {
  let h: GatewayHarness;
  let restRoutes: { method: string; path: string; body?: unknown }[];

  beforeAll(async () => {
    h = await startGateway({ env: { AUTH_TOKEN: TOKEN, LOG_LEVEL: "trace" } });
    // Every route /openapi.json documents, plus /openapi.json itself: new routes are covered too.
    const doc = (await (
      await fetch(`${h.url}/openapi.json`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    const bodies: Record<string, unknown> = {
      "/v1/chat/completions": { model: "qwen3:8b", messages: [{ role: "user", content: "hi" }] },
      "/v1/completions": { model: "qwen3:8b", prompt: "hi" },
      "/v1/embeddings": { model: "nomic-embed-text", input: "hi" },
      "/v1/responses": { model: "qwen3:8b", input: "hi" },
    };
    // Routes about one agent need one that exists: a program that has already ended.
    const agent = await h.gate.agents.start({ argv: ["true"], sandbox: "none" });
    restRoutes = [{ method: "GET", path: "/openapi.json" }];
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const method of Object.keys(ops)) {
        const concrete = path.replace("{*}", "qwen3:8b").replace("{id}", agent.id).replace("{jobId}", "job_none");
        restRoutes.push({ method: method.toUpperCase(), path: concrete, body: bodies[path] });
      }
    }
  });

  afterAll(async () => {
    await h?.close();
  });

  const call = (r: { method: string; path: string; body?: unknown }, headers: Record<string, string> = {}) =>
    fetch(`${h.url}${r.path}`, {
      method: r.method,
      headers: { ...(r.body ? { "content-type": "application/json" } : {}), ...headers },
      body: r.body ? JSON.stringify(r.body) : undefined,
      signal: AbortSignal.timeout(5_000),
    });

  it("covers every documented route", () => {
    const paths = restRoutes.map((r) => `${r.method} ${r.path}`);
    for (const p of [
      "GET /openapi.json",
      "GET /metrics",
      "POST /v1/chat/completions",
      "POST /v1/completions",
      "GET /v1/models",
      "GET /v1/models/qwen3:8b",
      "POST /v1/embeddings",
      "POST /v1/codex/jobs",
      "GET /v1/codex/jobs/job_none",
      "POST /completion",
      "GET /sessions",
      "POST /triggers",
    ]) {
      expect(paths).toContain(p);
    }
  });

  it("every route but /healthz answers 401 with an OpenAI error and WWW-Authenticate without a token", async () => {
    for (const r of restRoutes.filter((x) => x.path !== "/healthz")) {
      const variants: Record<string, string>[] = [
        {},
        { authorization: `Bearer ${OTHER}` },
        { authorization: "Bearer " },
        { "x-apphub-proxy-token": OTHER },
      ];
      for (const headers of variants) {
        const res = await call(r, headers);
        const label = `${r.method} ${r.path} ${JSON.stringify(headers)}`;
        expect(res.status, label).toBe(401);
        expect(res.headers.get("www-authenticate"), label).toBe('Bearer realm="agentgate"');
        const body = (await res.json()) as OpenAIError;
        expect(body.error.type, label).toBe("authentication_error");
        expect(body.error.code, label).toMatch(/^(missing_token|invalid_api_key)$/);
        expect(body.error.param, label).toBeNull();
      }
    }
    expect(h.ollama.requests.filter((r) => r.path !== "/api/version")).toHaveLength(0);
  });

  it("every route answers with the token as Bearer and as X-AppHub-Proxy-Token", async () => {
    for (const r of restRoutes) {
      const variants: Record<string, string>[] = [
        { authorization: `Bearer ${TOKEN}` },
        { "x-apphub-proxy-token": TOKEN },
      ];
      for (const headers of variants) {
        const res = await call(r, headers);
        const label = `${r.method} ${r.path}`;
        const listing =
          r.method === "GET" && (r.path === "/sessions" || r.path === "/triggers" || r.path === "/endpoints");
        if (RUNS_CODEX.test(r.path) && !listing) {
          // Codex job routes: with no body or an unknown id they answer 4xx (never 401/403); their
          // success paths have their own suites (test/rest/codex-proxy-jobs, gateway-*).
          expect(res.status, label).toBeGreaterThanOrEqual(400);
          expect(res.status, label).toBeLessThan(500);
          expect([401, 403], label).not.toContain(res.status);
        } else {
          expect(res.status, label).toBe(200);
        }
        await res.arrayBuffer();
      }
    }
  });

  it("/healthz needs no token", async () => {
    const res = await fetch(`${h.url}/healthz`);
    expect(res.status).toBe(200);
    expect(((await res.json()) as { status: string }).status).toBe("ok");
  });

  for (const [label, opts] of [
    ["Connect over HTTP/1.1", { httpVersion: "1.1" as const }],
    ["Connect over h2c", { httpVersion: "2" as const }],
    ["gRPC over h2c", { protocol: "grpc" as const }],
    ["gRPC-Web over HTTP/1.1", { protocol: "grpc-web" as const, httpVersion: "1.1" as const }],
  ] as const) {
    it(`RPC without or with a wrong token is unauthenticated (${label})`, async () => {
      const msg = { model: "qwen3:8b", messages: [{ role: Role.USER, content: "hi" }] };
      const none = createAgentgateClients({ baseUrl: h.url, ...opts });
      const wrong = createAgentgateClients({ baseUrl: h.url, token: OTHER, ...opts });
      const right = createAgentgateClients({ baseUrl: h.url, token: TOKEN, ...opts });
      expect(await codeOf(none.completion.chat(msg))).toBe(Code.Unauthenticated);
      expect(await codeOf(wrong.completion.chat(msg))).toBe(Code.Unauthenticated);
      expect(await codeOf(none.completion.listModels({}))).toBe(Code.Unauthenticated);
      expect(
        await codeOf(
          (async () => {
            for await (const _ of wrong.completion.chatStream(msg));
          })(),
        ),
      ).toBe(Code.Unauthenticated);
      expect(await codeOf(none.health.check({}))).toBe(Code.Unauthenticated);
      expect(await codeOf(none.jobs.listJobs({}))).toBe(Code.Unauthenticated);
      const ok = await right.completion.chat(msg);
      expect(ok.message?.content).toContain("hi");
    });
  }

  it("an unknown method under a service's path needs the token too (no method discovery)", async () => {
    const res = await fetch(`${h.url}/agentgate.v1.CompletionService/NoSuchMethod`, {
      method: "POST",
      headers: { "content-type": "application/json", "connect-protocol-version": "1" },
      body: "{}",
    });
    expect(res.status).toBe(401);
    const authed = await fetch(`${h.url}/agentgate.v1.CompletionService/NoSuchMethod`, {
      method: "POST",
      headers: {
        "content-type": "application/json",
        "connect-protocol-version": "1",
        authorization: `Bearer ${TOKEN}`,
      },
      body: "{}",
    });
    expect(authed.status).toBe(404);
  });

  it("an RPC with X-AppHub-Proxy-Token is accepted", async () => {
    const c = createAgentgateClients({
      baseUrl: h.url,
      httpVersion: "1.1",
      interceptors: [(next) => (req) => (req.header.set("x-apphub-proxy-token", TOKEN), next(req))],
    });
    const res = await c.completion.listModels({});
    expect(res.models.length).toBeGreaterThan(0);
  });

  it("the token never appears in the logs, however it is sent", async () => {
    const enc = encodeURIComponent(TOKEN);
    const attempts: [string, Record<string, string>][] = [
      [`/v1/models?token=${enc}`, {}],
      [`/v1/models?api_key=${enc}`, {}],
      [`/v1/models?access_token=${enc}`, {}],
      [`/v1/models?authorization=Bearer%20${enc}`, {}],
      [`/v1/models?x-apphub-proxy-token=${enc}`, {}],
      [`/v1/models?${enc}`, {}],
      [`/v1/models?a=1&token=${enc}#frag`, {}],
      [`/healthz?token=${enc}`, {}],
      [`/agentgate.v1.CompletionService/ListModels?connect=v1&encoding=json&message=%7B%7D&token=${enc}`, {}],
      ["/v1/models", { authorization: TOKEN }],
      ["/v1/models", { authorization: `Basic ${TOKEN}` }],
      ["/v1/models", { authorization: `Bearer ${TOKEN} ${TOKEN}` }],
      ["/v1/models", { authorization: `Bearer ${TOKEN}x` }],
      ["/v1/models", { "x-apphub-proxy-token": `${TOKEN} ` }],
      ["/v1/models", { cookie: `token=${TOKEN}` }],
      ["/v1/models", { authorization: `Bearer ${TOKEN}` }],
      ["/v1/models", { "x-apphub-proxy-token": TOKEN }],
    ];
    const before = h.logs.length;
    for (const [path, headers] of attempts) {
      const res = await fetch(`${h.url}${path}`, { headers });
      await res.arrayBuffer();
    }
    const rpc = createAgentgateClients({ baseUrl: h.url, token: TOKEN, protocol: "grpc" });
    await rpc.completion.listModels({});
    await codeOf(
      createAgentgateClients({ baseUrl: h.url, token: `${TOKEN}-wrong`, httpVersion: "1.1" }).completion.listModels({}),
    );
    await expect.poll(() => h.logs.length - before).toBeGreaterThanOrEqual(attempts.length + 2);
    const text = JSON.stringify(h.logs);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(enc);
    expect(text).not.toContain(Buffer.from(TOKEN).toString("base64"));
    // The request lines are there, with the query values redacted.
    const urls = h.logs
      .slice(before)
      .map((l) => l.url)
      .filter(Boolean) as string[];
    expect(urls).toContain("/v1/models?token=[Redacted]");
  });
});

describe("RATE_LIMIT_RPM", () => {
  let h: GatewayHarness;

  beforeAll(async () => {
    h = await startGateway({ env: { AUTH_TOKEN: TOKEN, RATE_LIMIT_RPM: "3" } });
  });

  afterAll(async () => {
    await h?.close();
  });

  it("the 4th REST request in a minute is 429 rate_limit_exceeded; /healthz and bad tokens do not count", async () => {
    const get = (headers: Record<string, string>) => fetch(`${h.url}/v1/models`, { headers });
    for (let i = 0; i < 5; i++) {
      expect((await get({ authorization: `Bearer ${OTHER}` })).status).toBe(401);
      expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
    }
    for (let i = 0; i < 3; i++)
      expect((await get({ authorization: `Bearer ${TOKEN}` })).status, `request ${i + 1}`).toBe(200);
    const res = await get({ "x-apphub-proxy-token": TOKEN });
    expect(res.status).toBe(429);
    const body = (await res.json()) as OpenAIError;
    expect(body.error.type).toBe("rate_limit_error");
    expect(body.error.code).toBe("rate_limit_exceeded");
    expect(body.error.message).toMatch(/3 requests per minute/);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
    // Prometheus scrapes need the token but do not spend its budget.
    expect((await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    const limited = await h.gate.metrics.registry.getSingleMetricAsString("agentgate_rate_limited_total");
    expect(limited).toMatch(/^agentgate_rate_limited_total 1$/m);
  });

  it("RPC calls share the token's bucket and get resource_exhausted (fresh gateway: 4th call)", async () => {
    const fresh = await startGateway({ env: { AUTH_TOKEN: TOKEN, RATE_LIMIT_RPM: "3" }, ollama: h.ollama });
    try {
      const c = createAgentgateClients({ baseUrl: fresh.url, token: TOKEN, protocol: "grpc" });
      for (let i = 0; i < 3; i++) await c.completion.listModels({});
      expect(await codeOf(c.completion.listModels({}))).toBe(Code.ResourceExhausted);
      const c11 = createAgentgateClients({ baseUrl: fresh.url, token: TOKEN, httpVersion: "1.1" });
      expect(
        await codeOf(c11.completion.chat({ model: "qwen3:8b", messages: [{ role: Role.USER, content: "hi" }] })),
      ).toBe(Code.ResourceExhausted);
      // REST shares the bucket.
      expect((await fetch(`${fresh.url}/v1/models`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(
        429,
      );
    } finally {
      await fresh.close();
    }
  });
});
