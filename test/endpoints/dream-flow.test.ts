/**
 * Dreamed endpoints end to end through a real gateway: DreamEndpoint / POST /endpoints with a fake
 * `codex` (test/doubles/fake-codex.mjs) that writes a known operation, handler and examples, the
 * Ollama double's embeddings for the semantic cache, pgvector (PGlite), real bwrap for every handler
 * run, a callback receiver on loopback, and invocation at /dream/....
 */
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { Code, ConnectError } from "@connectrpc/connect";
import { Validator } from "@seriousme/openapi-schema-validator";
import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { EndpointStatus, EndpointFailureKind, type Endpoint } from "../../gen/agentgate/v1/endpoint_service_pb.js";
import { createAgentgateClients, type AgentgateClients } from "../../clients/index.js";
import { verifyCallbackSignature } from "../../src/callbacks/callback-sender.js";
import { fakeCodexInvocations, writeFakeCodexScript } from "../doubles/fake-codex-files.js";
import { startGateway, type GatewayHarness } from "../support/gateway-harness.js";
import { restCaller, settle as settleEndpoint } from "./endpoint-clients.js";
import { designTurn, GREETING_EXAMPLES, GREETING_HANDLER, GREETING_OPERATION, TRUNCATE_OPERATION } from "./fixtures.js";

const FAKE = fileURLToPath(new URL("../doubles/fake-codex.mjs", import.meta.url));
const TOKEN = "endpoint-suite-token-1234";
const SECRET = "endpoint-callback-secret";

let h: GatewayHarness;
let ag: AgentgateClients;
let dir: string;
let logFile: string;
let scriptFile: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "dream-flow-"));
  // The sandbox uid must traverse the data directory's parents.
  fs.chmodSync(dir, 0o711);
  logFile = path.join(dir, "invocations.jsonl");
  scriptFile = path.join(dir, "script.json");
  writeFakeCodexScript(scriptFile, designTurn());
  vi.stubEnv("CODEX_HOME", path.join(dir, "codex-home"));
  vi.stubEnv("FAKE_CODEX_LOG", logFile);
  vi.stubEnv("FAKE_CODEX_SCRIPT", scriptFile);
  h = await startGateway({
    env: {
      CODEX_BIN: FAKE,
      DATA_DIR: path.join(dir, "data"),
      AUTH_TOKEN: TOKEN,
      CALLBACK_SECRET: SECRET,
      ENDPOINT_SIMILARITY: "0.8",
      ENDPOINT_HANDLER_TIMEOUT_MS: "3000",
    },
  });
  ag = createAgentgateClients({ baseUrl: h.url, token: TOKEN });
}, 60_000);

afterAll(async () => {
  await h?.close();
  vi.unstubAllEnvs();
  fs.rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => writeFakeCodexScript(scriptFile, designTurn()));

const script = (turn: Record<string, unknown>) => writeFakeCodexScript(scriptFile, turn);
const execCount = () => fakeCodexInvocations(logFile).length;

const call = restCaller(() => h.url, TOKEN);
const settle = (id: string) => settleEndpoint(ag, id);

const TRUNCATE = {
  method: "POST",
  path: "/text/truncate",
  description: "Truncate a text to at most width characters and report the length of the result",
};

describe("the dream life cycle", () => {
  let id: string;

  it("dreams a new endpoint: DREAMING -> VALIDATING -> READY, one job", async () => {
    const before = execCount();
    const res = await call("POST", "/endpoints", TRUNCATE);
    expect(res.status).toBe(202);
    expect(res.body.status).toBe("ENDPOINT_STATUS_DREAMING");
    expect(res.body.cache_hit).toBe(false);
    expect(res.body.invoke_path).toBe("/dream/text/truncate");
    id = res.body.id;
    expect(id).toMatch(/^ept_/);
    const { statuses, endpoint } = await settle(id);
    expect(statuses.at(-1)).toBe(EndpointStatus.READY);
    expect(statuses).toContain(EndpointStatus.VALIDATING);
    expect(endpoint.version).toBe(1);
    expect(endpoint.handler?.runtime).toBe("node");
    expect(endpoint.handler?.source).toContain("readFileSync(0");
    expect(endpoint.examples).toHaveLength(2);
    expect(endpoint.versions.map((v) => v.status)).toEqual([EndpointStatus.READY]);
    expect(endpoint.expiresAt).toBeDefined(); // the default TTL
    expect(execCount()).toBe(before + 1);
    // The job was asked for the three files and ran with the endpoint's labels.
    const job = (await ag.jobs.getJob({ jobId: endpoint.jobId })).job!;
    expect(job.spec!.labels["agentgate.endpoint_id"]).toBe(id);
    const prompt = fakeCodexInvocations(logFile).at(-1)!.prompt;
    expect(prompt).toContain("output/operation.json");
    expect(prompt).toContain("POST /text/truncate");
  });

  it("answers a near-duplicate description from the cache, with no second job", async () => {
    const before = execCount();
    const { endpoint } = await ag.endpoints.dreamEndpoint({
      ...TRUNCATE,
      description: "Truncate the text to at most width characters and report the length of the result",
    });
    expect(endpoint!.id).toBe(id);
    expect(endpoint!.cacheHit).toBe(true);
    expect(endpoint!.similarity).toBeGreaterThanOrEqual(0.8);
    expect(endpoint!.similarity).toBeLessThan(1);
    expect(endpoint!.status).toBe(EndpointStatus.READY);
    expect(execCount()).toBe(before);
    // POST /endpoints answers a hit with 200.
    const rest = await call("POST", "/endpoints", TRUNCATE);
    expect(rest.status).toBe(200);
    expect(rest.body.cache_hit).toBe(true);
    expect(execCount()).toBe(before);
  });

  it("refuses a different description for the same route unless forced", async () => {
    const before = execCount();
    const err = await ag.endpoints
      .dreamEndpoint({ ...TRUNCATE, description: "Translate a paragraph into French poetry" })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConnectError);
    expect((err as ConnectError).code).toBe(Code.AlreadyExists);
    expect((err as ConnectError).rawMessage).toContain(id);
    const rest = await call("POST", "/endpoints", {
      ...TRUNCATE,
      description: "Translate a paragraph into French poetry",
    });
    expect(rest.status).toBe(409);
    expect(rest.body.error.code).toBe("endpoint_route_taken");
    expect(execCount()).toBe(before);
  });

  it("force re-dreams the route as a new version", async () => {
    const before = execCount();
    const { endpoint } = await ag.endpoints.dreamEndpoint({ ...TRUNCATE, force: true });
    expect(endpoint!.id).toBe(id);
    expect(endpoint!.cacheHit).toBe(false);
    expect(endpoint!.status).toBe(EndpointStatus.DREAMING);
    const settled = await settle(id);
    expect(settled.endpoint.status).toBe(EndpointStatus.READY);
    expect(settled.endpoint.version).toBe(2);
    expect(settled.endpoint.versions.map((v) => v.version)).toEqual([2, 1]);
    expect(execCount()).toBe(before + 1);
  });

  it("serves it at /dream/...: the handler's validated answer, 400 for a bad body, 404 for unknown paths", async () => {
    const ok = await call("POST", "/dream/text/truncate", { text: "abcdefgh", width: 3 });
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ text: "abc", length: 3 });
    expect(ok.headers.get("agentgate-endpoint-id")).toBe(id);
    expect(ok.headers.get("agentgate-endpoint-version")).toBe("2");
    expect(ok.headers.get("agentgate-endpoint-stale")).toBeNull();

    const bad = await call("POST", "/dream/text/truncate", { text: "abc", width: "three" });
    expect(bad.status).toBe(400);
    expect(bad.body.error.type).toBe("invalid_request_error");
    expect(bad.body.error.message).toMatch(/width/);
    const missing = await call("POST", "/dream/text/truncate");
    expect(missing.status).toBe(400);
    const unknown = await call("POST", "/dream/text/reverse", { text: "abc" });
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe("endpoint_not_found");
    const wrongMethod = await call("GET", "/dream/text/truncate");
    expect(wrongMethod.status).toBe(404);
    const unauth = await fetch(`${h.url}/dream/text/truncate`, { method: "POST", body: "{}" });
    expect(unauth.status).toBe(401);
  });

  it("documents every served endpoint in a valid OpenAPI 3.1 document", async () => {
    const doc = await call("GET", "/dream/openapi.json");
    expect(doc.status).toBe(200);
    expect(doc.body.openapi).toBe("3.1.0");
    expect(doc.body.paths["/text/truncate"].post.requestBody).toEqual(TRUNCATE_OPERATION.requestBody);
    const result = await new Validator().validate(doc.body);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it("a different description on another path is a new dream; ListEndpoints ranks by similarity", async () => {
    script(
      designTurn({
        operation: GREETING_OPERATION,
        handler: GREETING_HANDLER,
        handlerFile: "handler.py",
        examples: GREETING_EXAMPLES,
      }),
    );
    const before = execCount();
    const { endpoint } = await ag.endpoints.dreamEndpoint({
      method: "GET",
      path: "/greetings/{name}",
      description: "Greet a person by name, repeated a number of times",
      labels: { team: "greeters" },
    });
    expect(endpoint!.cacheHit).toBe(false);
    expect(endpoint!.id).not.toBe(id);
    const settled = await settle(endpoint!.id);
    expect(settled.endpoint.status).toBe(EndpointStatus.READY);
    expect(settled.endpoint.handler?.runtime).toBe("python3");
    expect(execCount()).toBe(before + 1);

    const greet = await call("GET", "/dream/greetings/ada%20lovelace?times=2");
    expect(greet.status).toBe(200);
    expect(greet.body).toEqual({ greeting: "hello ada lovelace hello ada lovelace" });
    const tooMany = await call("GET", "/dream/greetings/ada?times=9");
    expect(tooMany.status).toBe(400);
    expect(tooMany.body.error.message).toMatch(/times/);

    const ranked = await ag.endpoints.listEndpoints({ query: "greet someone by their name" });
    expect(ranked.endpoints[0]!.id).toBe(endpoint!.id);
    expect(ranked.endpoints[0]!.similarity).toBeGreaterThan(ranked.endpoints[1]?.similarity ?? 0);
    expect(ranked.endpoints[0]!.handler?.source).toBe(""); // lists leave the source out
    const labelled = await call("GET", "/endpoints?label=team:greeters");
    expect(labelled.body.data.map((e: { id: string }) => e.id)).toEqual([endpoint!.id]);
    const rest = await call("GET", `/endpoints?q=${encodeURIComponent("truncate a text to a width")}&limit=1`);
    expect(rest.body.data[0].id).toBe(id);
    expect(rest.body.has_more).toBe(true);
  });

  it("deletes an endpoint: gone from GET, the list and /dream", async () => {
    const { endpoint } = await ag.endpoints.dreamEndpoint({
      method: "GET",
      path: "/greetings/{who}",
      description: "Greet a person by name, repeated a number of times",
    });
    expect(endpoint!.cacheHit).toBe(true); // same route key, the parameter's name does not matter
    await ag.endpoints.deleteEndpoint({ endpointId: endpoint!.id });
    const err = await ag.endpoints.getEndpoint({ endpointId: endpoint!.id }).catch((e: unknown) => e);
    expect((err as ConnectError).code).toBe(Code.NotFound);
    expect((await call("GET", "/dream/greetings/ada")).status).toBe(404);
    expect((await call("GET", `/endpoints/${endpoint!.id}`)).status).toBe(404);
    const ranked = await ag.endpoints.listEndpoints({ query: "greet a person" });
    expect(ranked.endpoints.map((e) => e.id)).not.toContain(endpoint!.id);
  });
});

describe("expiry", () => {
  it("an expired endpoint is served stale and refreshed by the next matching request", async () => {
    const dreamed = await ag.endpoints.dreamEndpoint({
      method: "POST",
      path: "/short/text",
      description: "Shorten a text to a given width",
      ttl: { seconds: 1n, nanos: 0 },
    });
    const id = dreamed.endpoint!.id;
    expect((await settle(id)).endpoint.status).toBe(EndpointStatus.READY);
    await new Promise((r) => setTimeout(r, 1200));
    await h.gate.endpoints.catalog.sweep();
    expect((await ag.endpoints.getEndpoint({ endpointId: id })).endpoint!.status).toBe(EndpointStatus.EXPIRED);
    const stale = await call("POST", "/dream/short/text", { text: "abcdef", width: 2 });
    expect(stale.status).toBe(200);
    expect(stale.headers.get("agentgate-endpoint-stale")).toBe("true");

    const before = execCount();
    // A slow design, so the refresh is observed while it runs.
    script({ ...designTurn(), delayMs: 150 });
    const again = await ag.endpoints.dreamEndpoint({
      method: "POST",
      path: "/short/text",
      description: "Shorten a text to a given width",
    });
    expect(again.endpoint!.cacheHit).toBe(true);
    expect(again.endpoint!.status).toBe(EndpointStatus.STALE);
    expect(again.endpoint!.version).toBe(1); // still serving the old version
    const during = await call("POST", "/dream/short/text", { text: "abcdef", width: 2 });
    expect(during.status).toBe(200);
    const settled = await settle(id);
    expect(settled.endpoint.status).toBe(EndpointStatus.READY);
    expect(settled.endpoint.version).toBe(2);
    expect(execCount()).toBe(before + 1);
    const fresh = await call("POST", "/dream/short/text", { text: "abcdef", width: 2 });
    expect(fresh.headers.get("agentgate-endpoint-stale")).toBeNull();
    expect(fresh.headers.get("agentgate-endpoint-version")).toBe("2");
  });
});

describe("refresh ahead (ENDPOINT_REFRESH_AHEAD_SECONDS)", () => {
  let ahead: GatewayHarness;
  let aheadClients: AgentgateClients;
  beforeAll(async () => {
    ahead = await startGateway({
      env: {
        CODEX_BIN: FAKE,
        DATA_DIR: path.join(dir, "data-ahead"),
        AUTH_TOKEN: TOKEN,
        ENDPOINT_REFRESH_AHEAD_SECONDS: "3600",
      },
    });
    aheadClients = createAgentgateClients({ baseUrl: ahead.url, token: TOKEN });
  }, 60_000);
  afterAll(() => ahead?.close());

  it("the sweep re-dreams an endpoint about to expire without waiting for a request", async () => {
    const { endpoint } = await aheadClients.endpoints.dreamEndpoint({
      ...TRUNCATE,
      ttl: { seconds: 7200n, nanos: 0 },
    });
    const id = endpoint!.id;
    const watch = async () => {
      let last: Endpoint | undefined;
      for await (const f of aheadClients.endpoints.watchEndpoint({ endpointId: id, untilSettled: true }))
        last = f.endpoint;
      return last!;
    };
    expect((await watch()).version).toBe(1);
    // Fresh for two hours, but inside the one-hour window once an hour has passed: move expiry closer.
    await ahead.gate.db.query("UPDATE endpoints SET expires_at = now() + interval '30 minutes' WHERE id = $1", [id]);
    const before = execCount();
    await ahead.gate.endpoints.catalog.sweep();
    const during = (await aheadClients.endpoints.getEndpoint({ endpointId: id })).endpoint!;
    expect([EndpointStatus.STALE, EndpointStatus.READY]).toContain(during.status);
    const after = await watch();
    expect(after.status).toBe(EndpointStatus.READY);
    expect(after.version).toBe(2);
    expect(execCount()).toBe(before + 1);
    expect(after.expiresAt!.seconds).toBeGreaterThan(BigInt(Math.floor(Date.now() / 1000) + 7000));
  });
});

describe("callbacks", () => {
  it("POSTs every status change, signed, and retries through a receiver that fails twice", async () => {
    const received: { event: string; status: string; valid: boolean }[] = [];
    let requests = 0;
    const receiver = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        requests++;
        if (requests <= 2) {
          res.writeHead(500).end("not yet");
          return;
        }
        const body = Buffer.concat(chunks).toString("utf8");
        const parsed = JSON.parse(body) as { event: string; data: { status: string } };
        received.push({
          event: parsed.event,
          status: parsed.data.status,
          valid: verifyCallbackSignature(SECRET, req.headers, body),
        });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => receiver.listen(0, "127.0.0.1", r));
    const port = (receiver.address() as net.AddressInfo).port;
    try {
      const { endpoint } = await ag.endpoints.dreamEndpoint({
        method: "POST",
        path: "/callback/truncate",
        description: "Truncate text for the callback test",
        callbackUrl: `http://127.0.0.1:${port}/hook`,
      });
      await settle(endpoint!.id);
      await vi.waitFor(() => expect(received.map((r) => r.event)).toContain("endpoint.ready"), {
        timeout: 20_000,
        interval: 100,
      });
      expect(received.map((r) => r.event)).toEqual(["endpoint.dreaming", "endpoint.validating", "endpoint.ready"]);
      expect(received.map((r) => r.status)).toEqual([
        "ENDPOINT_STATUS_DREAMING",
        "ENDPOINT_STATUS_VALIDATING",
        "ENDPOINT_STATUS_READY",
      ]);
      expect(received.every((r) => r.valid)).toBe(true);
      const rec = (await ag.endpoints.getEndpoint({ endpointId: endpoint!.id })).endpoint!;
      const attempts = rec.callbackAttempts;
      expect(attempts.filter((a) => !a.delivered).map((a) => a.httpStatus)).toEqual([500, 500]);
      expect(attempts.filter((a) => a.delivered)).toHaveLength(3);
    } finally {
      receiver.close();
    }
  }, 40_000);
});

describe("designs that fail validation end FAILED with reasons, and nothing escapes the sandbox", () => {
  async function dreamFailing(pathName: string, turn: Record<string, unknown>) {
    script(turn);
    const { endpoint } = await ag.endpoints.dreamEndpoint({
      method: "POST",
      path: `/failing/${pathName}`,
      description: `A failing design: ${pathName}`,
    });
    const settled = await settle(endpoint!.id);
    expect(settled.endpoint.status).toBe(EndpointStatus.FAILED);
    expect((await call("POST", `/dream/failing/${pathName}`, { text: "a", width: 1 })).status).toBe(404);
    return settled.endpoint;
  }

  it("a handler whose output differs from its examples", async () => {
    const e = await dreamFailing("mismatch", designTurn({ handler: TRUNCATE_WRONG }));
    expect(e.failureReasons.map((f) => f.kind)).toContain(EndpointFailureKind.EXAMPLE_MISMATCH);
    expect(e.failureReasons[0]!.exampleIndex).toBe(0);
    expect(e.failureReasons[0]!.message).toMatch(/expected .*hello/);
  });

  it("a handler that writes something that is not JSON", async () => {
    const e = await dreamFailing("garbage", designTurn({ handler: 'process.stdout.write("not json {");' }));
    expect(e.failureReasons.map((f) => f.kind)).toEqual([
      EndpointFailureKind.INVALID_JSON,
      EndpointFailureKind.INVALID_JSON,
    ]);
  });

  it("a handler that hangs is killed at the timeout", async () => {
    const t0 = Date.now();
    const e = await dreamFailing("hang", designTurn({ handler: "setInterval(() => {}, 1000);" }));
    expect(e.failureReasons.map((f) => f.kind)).toContain(EndpointFailureKind.TIMEOUT);
    expect(Date.now() - t0).toBeLessThan(20_000);
  }, 30_000);

  it("a handler that tries the network reaches nothing", async () => {
    let connections = 0;
    const server = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    const port = (server.address() as net.AddressInfo).port;
    try {
      const handler = `const s = require("net").connect(${port}, "127.0.0.1");
s.on("connect", () => { process.stdout.write(JSON.stringify({ text: "leaked", length: 6 })); process.exit(0); });
s.on("error", (e) => { console.error(e.message); process.exit(3); });`;
      const e = await dreamFailing("network", designTurn({ handler }));
      expect(e.failureReasons[0]!.kind).toBe(EndpointFailureKind.SANDBOX_VIOLATION);
      expect(e.failureReasons[0]!.message).toMatch(/network/);
      expect(connections).toBe(0);
    } finally {
      server.close();
    }
  });

  it("a handler that writes outside its directory changes nothing on the host", async () => {
    const target = path.join(dir, "escaped.txt");
    const handler = `require("fs").writeFileSync(${JSON.stringify(target)}, "x");
process.stdout.write(JSON.stringify({ text: "hello", length: 5 }));`;
    const e = await dreamFailing("escape", designTurn({ handler }));
    // The host path does not exist inside the sandbox (ENOENT): a handler error, and nothing written.
    expect([EndpointFailureKind.SANDBOX_VIOLATION, EndpointFailureKind.HANDLER_ERROR]).toContain(
      e.failureReasons[0]!.kind,
    );
    expect(e.failureReasons[0]!.message).toMatch(/ENOENT|EROFS|EACCES/);
    expect(fs.existsSync(target)).toBe(false);
  });

  it("missing files, invalid OpenAPI and a failed job say so; the next attempt gets the reasons", async () => {
    const missing = await dreamFailing("missing", designTurn({ omit: ["examples.json"] }));
    expect(missing.failureReasons.map((f) => f.kind)).toEqual([EndpointFailureKind.MISSING_OUTPUT]);
    expect(missing.failureReasons[0]!.message).toContain("examples.json");

    const invalid = await dreamFailing("invalid", designTurn({ operation: { responses: "none" } }));
    expect(invalid.failureReasons.map((f) => f.kind)).toContain(EndpointFailureKind.INVALID_OPENAPI);

    const crashed = await dreamFailing("crashed", { fail: "the model went away" });
    expect(crashed.failureReasons.map((f) => f.kind)).toEqual([EndpointFailureKind.JOB_FAILED]);

    // The next DreamEndpoint of a FAILED endpoint is the next attempt, with the reasons as context.
    script(designTurn());
    const retry = await ag.endpoints.dreamEndpoint({
      method: "POST",
      path: "/failing/invalid",
      description: "A failing design: invalid",
    });
    expect(retry.endpoint!.status).toBe(EndpointStatus.DREAMING);
    const settled = await settle(retry.endpoint!.id);
    expect(settled.endpoint.status).toBe(EndpointStatus.READY);
    expect(settled.endpoint.versions.map((v) => v.status)).toEqual([EndpointStatus.READY, EndpointStatus.FAILED]);
    const last = fakeCodexInvocations(logFile).at(-1)!;
    expect(last.prompt).toContain("previous-attempt.json");
    expect(last.prompt).toMatch(/invalid_openapi/);
  });
});

describe("bad requests", () => {
  it.each([
    [{ method: "FETCH", path: "/x", description: "d" }, /method/],
    [{ method: "GET", path: "x", description: "d" }, /path/],
    [{ method: "GET", path: "/a/../b", description: "d" }, /path/],
    [{ method: "GET", path: "/openapi.json", description: "d" }, /reserved/],
    [{ method: "GET", path: "/x", description: "" }, /description/],
    [{ method: "POST", path: "/x", description: "d", request_schema: { type: 12 } }, /request_schema/],
    [{ method: "POST", path: "/x", description: "d", callback_url: "ftp://example.com" }, /callback_url/],
    [{ method: "POST", path: "/x/{id}", description: "d", examples: [{ path_params: { other: "1" } }] }, /path_params/],
  ])("POST /endpoints %j -> 400", async (body, message) => {
    const res = await call("POST", "/endpoints", body);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(message);
  });

  it("unknown fields and a non-object body are 400s; unknown ids 404s; a bad page token invalid_argument", async () => {
    expect((await call("POST", "/endpoints", { method: "GET", path: "/x", description: "d", bogus: 1 })).status).toBe(
      400,
    );
    expect((await call("POST", "/endpoints", [1, 2])).status).toBe(400);
    expect((await call("GET", "/endpoints/ept_nope")).status).toBe(404);
    expect((await call("DELETE", "/endpoints/ept_nope")).status).toBe(404);
    expect((await call("GET", "/endpoints?status=sleeping")).status).toBe(400);
    const err = await ag.endpoints.listEndpoints({ pageToken: "garbage" }).catch((e: unknown) => e);
    expect((err as ConnectError).code).toBe(Code.InvalidArgument);
    const watch = (async () => {
      for await (const _ of ag.endpoints.watchEndpoint({ endpointId: "ept_nope" }));
    })();
    await expect(watch).rejects.toMatchObject({ code: Code.NotFound });
  });
});

const TRUNCATE_WRONG = `const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify({ text: input.body.text.toUpperCase(), length: 0 }));
`;
