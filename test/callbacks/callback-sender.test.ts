import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import {
  CallbackSender,
  signCallback,
  validateCallbackUrl,
  verifyCallbackSignature,
} from "../../src/callbacks/callback-sender.js";
import { GatewayError } from "../../src/errors/gateway-error.js";
import type { CallbackAttempt } from "../../src/jobs/types.js";
import { VERSION } from "../../src/version.js";

const SECRET = "test-secret";

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  method: string;
  url: string;
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;

const servers: http.Server[] = [];
const senders: CallbackSender[] = [];

afterEach(async () => {
  for (const s of senders.splice(0)) s.close();
  await Promise.all(
    servers.splice(0).map(
      (srv) =>
        new Promise<void>((resolve) => {
          srv.closeAllConnections();
          srv.close(() => resolve());
        }),
    ),
  );
});

/** A receiver on 127.0.0.1 (port 0); `handle` answers the n-th request (1-based). */
async function receiver(handle: Handler): Promise<{ url: string; received: Received[] }> {
  const received: Received[] = [];
  const srv = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      received.push({
        headers: req.headers,
        body: Buffer.concat(chunks).toString("utf8"),
        method: req.method ?? "",
        url: req.url ?? "",
      });
      handle(req, res, received.length);
    });
  });
  servers.push(srv);
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  const { port } = srv.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/hooks/job?token=abc`, received };
}

function sender(o: Partial<ConstructorParameters<typeof CallbackSender>[0]> = {}): CallbackSender {
  const s = new CallbackSender({ secret: SECRET, backoffMs: [20, 20, 20], timeoutMs: 2000, ...o });
  senders.push(s);
  return s;
}

function collect(): { attempts: CallbackAttempt[]; onAttempt: (a: CallbackAttempt) => void } {
  const attempts: CallbackAttempt[] = [];
  return { attempts, onAttempt: (a) => void attempts.push(a) };
}

describe("CallbackSender.deliver", () => {
  it("delivers on the first 200 with a signed Standard-Webhooks request", async () => {
    const r = await receiver((_req, res) => res.writeHead(200).end("ok"));
    const { attempts, onAttempt } = collect();
    const before = Math.floor(Date.now() / 1000);
    const ok = await sender().deliver(r.url, "job.completed", { id: "job-1", status: "succeeded" }, onAttempt);

    expect(ok).toBe(true);
    expect(r.received).toHaveLength(1);
    const got = r.received[0]!;
    expect(got.method).toBe("POST");
    expect(got.url).toBe("/hooks/job?token=abc");
    expect(got.headers["content-type"]).toBe("application/json");
    expect(got.headers["user-agent"]).toBe(`agentgate/${VERSION}`);
    const id = got.headers["webhook-id"] as string;
    const ts = got.headers["webhook-timestamp"] as string;
    expect(id).toMatch(/^msg_[0-9A-Za-z]{24}$/);
    expect(Number(ts)).toBeGreaterThanOrEqual(before);
    expect(got.headers["webhook-signature"]).toBe(signCallback(SECRET, id, Number(ts), got.body));
    expect(JSON.parse(got.body)).toEqual({
      event: "job.completed",
      data: { id: "job-1", status: "succeeded" },
      id,
      timestamp: Number(ts),
    });

    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({
      attempt: 1,
      event: "job.completed",
      httpStatus: 200,
      error: "",
      delivered: true,
    });
    expect(attempts[0]!.attemptedAt).toBeInstanceOf(Date);
    expect(attempts[0]!.durationMs).toBeGreaterThanOrEqual(0);
    expect(attempts[0]!.nextAttemptAt).toBeUndefined();

    // Verification, as a receiver would do it.
    expect(verifyCallbackSignature(SECRET, got.headers, got.body)).toBe(true);
    expect(verifyCallbackSignature(SECRET, new Headers(got.headers as Record<string, string>), got.body)).toBe(true);
    expect(verifyCallbackSignature(SECRET, got.headers, Buffer.from(got.body))).toBe(true);
    expect(verifyCallbackSignature("wrong-secret", got.headers, got.body)).toBe(false);
    expect(verifyCallbackSignature(SECRET, got.headers, got.body.replace("succeeded", "failed"))).toBe(false);
    expect(verifyCallbackSignature(SECRET, { ...got.headers, "webhook-id": "msg_other" }, got.body)).toBe(false);
    expect(verifyCallbackSignature(SECRET, { ...got.headers, "webhook-signature": undefined }, got.body)).toBe(false);
  });

  it("rejects stale or future timestamps even with a valid signature", () => {
    const body = '{"event":"x"}';
    const at = (ts: number) => ({
      "webhook-id": "msg_1",
      "webhook-timestamp": String(ts),
      "webhook-signature": signCallback(SECRET, "msg_1", ts, body),
    });
    const now = Math.floor(Date.now() / 1000);
    expect(verifyCallbackSignature(SECRET, at(now), body)).toBe(true);
    expect(verifyCallbackSignature(SECRET, at(now - 600), body)).toBe(false);
    expect(verifyCallbackSignature(SECRET, at(now + 600), body)).toBe(false);
    expect(verifyCallbackSignature(SECRET, at(now - 600), body, 3600)).toBe(true);
    // Key rotation: any listed v1 signature may match.
    const h = at(now);
    expect(
      verifyCallbackSignature(SECRET, { ...h, "webhook-signature": `v1,AAAA ${h["webhook-signature"]}` }, body),
    ).toBe(true);
  });

  it("signs like Standard Webhooks libraries (whsec_ secrets are base64)", () => {
    // The Standard Webhooks specification's reference vector.
    expect(
      signCallback(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        1614265330,
        '{"test": 2432232314}',
      ),
    ).toBe("v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
  });

  it("retries a 500 and a dropped connection, then delivers on 204", async () => {
    const r = await receiver((req, res, n) => {
      if (n === 1) res.writeHead(500).end("database is down");
      else if (n === 2) req.socket.destroy();
      else res.writeHead(204).end();
    });
    const { attempts, onAttempt } = collect();
    const ok = await sender().deliver(r.url, "job.failed", { id: "job-2" }, onAttempt);

    expect(ok).toBe(true);
    expect(attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
    expect(attempts.map((a) => a.httpStatus)).toEqual([500, 0, 204]);
    expect(attempts.map((a) => a.delivered)).toEqual([false, false, true]);
    expect(attempts[0]!.error).toContain("HTTP 500");
    expect(attempts[0]!.error).toContain("database is down");
    expect(attempts[1]!.error).not.toBe("");
    expect(attempts[2]!.error).toBe("");
    expect(attempts[0]!.nextAttemptAt).toBeInstanceOf(Date);
    expect(attempts[1]!.nextAttemptAt).toBeInstanceOf(Date);
    expect(attempts[2]!.nextAttemptAt).toBeUndefined();
    // One delivery id across retries (receivers deduplicate on it); each attempt signed afresh.
    const ids = new Set(r.received.map((x) => x.headers["webhook-id"]));
    expect(ids.size).toBe(1);
    for (const x of r.received) expect(verifyCallbackSignature(SECRET, x.headers, x.body)).toBe(true);
  });

  it("resolves false when the attempts are exhausted", async () => {
    const r = await receiver((_req, res) => res.writeHead(503).end());
    const { attempts, onAttempt } = collect();
    const ok = await sender({ attempts: 3 }).deliver(r.url, "job.completed", {}, onAttempt);
    expect(ok).toBe(false);
    expect(r.received).toHaveLength(3);
    expect(attempts.map((a) => a.httpStatus)).toEqual([503, 503, 503]);
    expect(attempts.map((a) => a.nextAttemptAt !== undefined)).toEqual([true, true, false]);
  });

  it("stops at once on 410 Gone", async () => {
    const r = await receiver((_req, res) => res.writeHead(410).end());
    const { attempts, onAttempt } = collect();
    const ok = await sender().deliver(r.url, "job.completed", {}, onAttempt);
    expect(ok).toBe(false);
    expect(r.received).toHaveLength(1);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ httpStatus: 410, delivered: false });
    expect(attempts[0]!.nextAttemptAt).toBeUndefined();
  });

  it("counts a receiver that never answers as a failed attempt", async () => {
    const r = await receiver(() => {
      /* never answers */
    });
    const { attempts, onAttempt } = collect();
    const started = Date.now();
    const ok = await sender({ attempts: 2, timeoutMs: 200 }).deliver(r.url, "job.completed", {}, onAttempt);
    expect(ok).toBe(false);
    expect(Date.now() - started).toBeLessThan(3000);
    expect(attempts).toHaveLength(2);
    for (const a of attempts) {
      expect(a.httpStatus).toBe(0);
      expect(a.error).toMatch(/timed out after 200 ms/);
      expect(a.durationMs).toBeGreaterThanOrEqual(150);
    }
  });

  it("does not follow redirects", async () => {
    const target = await receiver((_req, res) => res.writeHead(200).end());
    const r = await receiver((_req, res) => res.writeHead(302, { location: target.url }).end());
    const { attempts, onAttempt } = collect();
    const ok = await sender({ attempts: 1 }).deliver(r.url, "job.completed", {}, onAttempt);
    expect(ok).toBe(false);
    expect(target.received).toHaveLength(0);
    expect(attempts[0]!.httpStatus).toBe(302);
    expect(attempts[0]!.error).toContain("redirects are not followed");
  });

  it("reads and discards a large response body", async () => {
    const r = await receiver((_req, res) => res.writeHead(200).end(Buffer.alloc(1024 * 1024, 120)));
    const { attempts, onAttempt } = collect();
    expect(await sender().deliver(r.url, "job.completed", {}, onAttempt)).toBe(true);
    expect(attempts).toHaveLength(1);
  });

  it("stops retrying when the signal aborts during the backoff", async () => {
    const r = await receiver((_req, res) => res.writeHead(500).end());
    const ac = new AbortController();
    const attempts: CallbackAttempt[] = [];
    const started = Date.now();
    const ok = await sender({ backoffMs: [60_000] }).deliver(
      r.url,
      "job.completed",
      {},
      (a) => {
        attempts.push(a);
        setTimeout(() => ac.abort(), 20);
      },
      ac.signal,
    );
    expect(ok).toBe(false);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(attempts).toHaveLength(1);
    expect(r.received).toHaveLength(1);
  });

  it("stops an attempt in flight when the signal aborts, and sends nothing when already aborted", async () => {
    const r = await receiver(() => {
      /* never answers */
    });
    const ac = new AbortController();
    const { attempts, onAttempt } = collect();
    setTimeout(() => ac.abort(), 50);
    const started = Date.now();
    const ok = await sender({ timeoutMs: 60_000 }).deliver(r.url, "job.completed", {}, onAttempt, ac.signal);
    expect(ok).toBe(false);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ httpStatus: 0, error: "aborted", delivered: false });
    expect(attempts[0]!.nextAttemptAt).toBeUndefined();

    const again = collect();
    expect(await sender().deliver(r.url, "job.completed", {}, again.onAttempt, ac.signal)).toBe(false);
    expect(again.attempts).toHaveLength(0);
  });

  it("close() stops pending deliveries", async () => {
    const r = await receiver((_req, res) => res.writeHead(500).end());
    const s = sender({ backoffMs: [60_000] });
    const { attempts, onAttempt } = collect();
    const pending = s.deliver(r.url, "job.completed", {}, onAttempt);
    await new Promise((resolve) => setTimeout(resolve, 100));
    s.close();
    expect(await pending).toBe(false);
    expect(attempts).toHaveLength(1);
  });

  it("never throws: bad URLs, unserialisable or oversized payloads, failing onAttempt, refused connections", async () => {
    const { attempts, onAttempt } = collect();
    const s = sender({ attempts: 2, maxBodyBytes: 1000 });
    expect(await s.deliver("ftp://example.com/x", "e", {}, onAttempt)).toBe(false);
    expect(attempts.pop()!.error).toMatch(/http or https/);
    expect(await s.deliver("http://127.0.0.1:1/x", "e", { n: 1n }, onAttempt)).toBe(false);
    expect(attempts.pop()!.error).toMatch(/JSON/);
    expect(await s.deliver("http://127.0.0.1:1/x", "e", "x".repeat(2000), onAttempt)).toBe(false);
    expect(attempts.pop()!.error).toMatch(/limit/);
    expect(attempts).toHaveLength(0);

    // Port 1 on loopback: connection refused, twice.
    expect(await s.deliver("http://127.0.0.1:1/x", "e", {}, onAttempt)).toBe(false);
    expect(attempts).toHaveLength(2);
    expect(attempts[0]!.error).toMatch(/ECONNREFUSED/);

    const r = await receiver((_req, res) => res.writeHead(200).end());
    const throwing = () => {
      throw new Error("db closed");
    };
    expect(await s.deliver(r.url, "e", {}, throwing)).toBe(true);
    expect(await s.deliver(r.url, "e", {}, () => Promise.reject(new Error("db closed")))).toBe(true);
  });
});

describe("validateCallbackUrl", () => {
  const rejects = (url: string, pattern: RegExp) => {
    let caught: unknown;
    try {
      validateCallbackUrl(url);
    } catch (err) {
      caught = err;
    }
    expect(caught, url).toBeInstanceOf(GatewayError);
    const g = caught as GatewayError;
    expect(g.kind).toBe("invalid_argument");
    expect(g.param).toBe("callback_url");
    expect(g.message).toMatch(pattern);
  };

  it("rejects non-http(s) schemes, credentials, overlong and unparsable URLs", () => {
    rejects("ftp://example.com/hook", /http or https/);
    rejects("file:///etc/passwd", /http or https/);
    rejects("javascript:alert(1)", /http or https/);
    rejects("https://user:pass@example.com/hook", /credentials/);
    rejects("https://user@example.com/hook", /credentials/);
    rejects(`https://example.com/${"a".repeat(2048)}`, /2048/);
    rejects("not a url", /valid/);
    rejects("/relative/path", /valid/);
    rejects("", /empty/);
  });

  it("accepts http(s), including loopback", () => {
    expect(validateCallbackUrl("https://hooks.example.com/agentgate?x=1").hostname).toBe("hooks.example.com");
    expect(validateCallbackUrl("http://127.0.0.1:8080/cb").port).toBe("8080");
    expect(validateCallbackUrl("http://[::1]:8080/cb").hostname).toBe("[::1]");
    expect(validateCallbackUrl("http://localhost/cb").protocol).toBe("http:");
  });
});
