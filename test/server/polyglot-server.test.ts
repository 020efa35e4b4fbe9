// Unit tests of the one-port HTTP/1.1 + h2c server (src/server/polyglot-server.ts): preface
// sniffing under byte-by-byte delivery, hostile peers while sniffing, the close helpers Fastify
// calls, the explicit timeouts on the inner HTTP/1 server and 'upgrade' forwarding.
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";
import Fastify from "fastify";
import { afterEach, describe, expect, it } from "vitest";
import {
  createPolyglotServer,
  defaultTimeouts,
  type PolyglotServer,
  type PolyglotTimeouts,
  type RequestHandler,
} from "../../src/server/polyglot-server.js";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `promise`, or a rejection after `ms` (so a hanging close fails fast instead of at the test timeout). */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([
    promise,
    sleep(ms).then(() => Promise.reject(new Error(`${what} did not finish within ${ms} ms`))),
  ]);
}

/** Answers every request with its HTTP version, method and URL as JSON. */
const handled: string[] = [];
const echoHandler: RequestHandler = (req, res) => {
  handled.push(`${req.httpVersion} ${req.method} ${req.url}`);
  const delay = Number(new URL(req.url ?? "/", "http://x").searchParams.get("delay") ?? 0);
  const reply = () => {
    const body = JSON.stringify({ httpVersion: req.httpVersion, method: req.method, url: req.url });
    (res as http.ServerResponse).writeHead(200, {
      "content-type": "application/json",
      "content-length": Buffer.byteLength(body),
    });
    res.end(body);
  };
  if (delay > 0) setTimeout(reply, delay);
  else reply();
};

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  handled.length = 0;
  for (const fn of cleanups.splice(0).reverse()) await fn();
});

/** A listening polyglot server; closed (forcefully) after the test. */
async function start(
  timeouts?: Partial<PolyglotTimeouts>,
  handler: RequestHandler = echoHandler,
): Promise<{ server: PolyglotServer; port: number }> {
  const server = createPolyglotServer(handler, timeouts);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        if (!server.listening) return resolve();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { server, port: (server.address() as net.AddressInfo).port };
}

/** Connects a raw TCP socket; destroyed after the test. */
async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect(port, "127.0.0.1");
  await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
  cleanups.push(() => socket.destroy());
  return socket;
}

/** Writes `data` one byte per `delayMs`. */
async function dribble(socket: net.Socket, data: Buffer | string, delayMs = 3): Promise<void> {
  const bytes = Buffer.isBuffer(data) ? data : Buffer.from(data, "latin1");
  for (let i = 0; i < bytes.length; i++) {
    socket.write(bytes.subarray(i, i + 1));
    await sleep(delayMs);
  }
}

/**
 * A TCP proxy in front of `port` that forwards what clients send one byte at a time (with a pause
 * between bytes), and what the server answers unchanged: real clients then dribble their first bytes.
 */
async function dribblingProxy(port: number): Promise<number> {
  const proxy = net.createServer((client) => {
    const upstream = net.connect(port, "127.0.0.1");
    let chain = Promise.resolve();
    client.on("data", (chunk: Buffer) => {
      chain = chain.then(async () => {
        for (let i = 0; i < chunk.length; i++) {
          if (upstream.destroyed) return;
          upstream.write(chunk.subarray(i, i + 1));
          await sleep(1);
        }
      });
    });
    client.on("end", () => void chain.then(() => upstream.end()));
    upstream.pipe(client);
    client.on("error", () => upstream.destroy());
    upstream.on("error", () => client.destroy());
    client.on("close", () => upstream.destroy());
    upstream.on("close", () => client.destroy());
  });
  await new Promise<void>((resolve) => proxy.listen(0, "127.0.0.1", resolve));
  cleanups.push(() => new Promise<void>((resolve) => proxy.close(() => resolve())));
  return (proxy.address() as net.AddressInfo).port;
}

function h1Get(
  port: number,
  path: string,
  agent?: http.Agent,
  headers: http.OutgoingHttpHeaders = {},
): Promise<{ status: number; body: string; socket: net.Socket }> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: "127.0.0.1", port, path, agent, headers }, (res) => {
      const socket = res.socket; // a keep-alive agent detaches it once the response ends
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode!, body, socket }));
    });
    req.on("error", reject);
  });
}

function h2Get(session: http2.ClientHttp2Session, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":path": path });
    let status = 0;
    let body = "";
    stream.setEncoding("utf8");
    stream.on("response", (h) => (status = Number(h[":status"])));
    stream.on("data", (d: string) => (body += d));
    stream.on("end", () => resolve({ status, body }));
    stream.on("error", reject);
  });
}

function h2Connect(port: number): http2.ClientHttp2Session {
  const session = http2.connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  cleanups.push(() => session.destroy());
  return session;
}

/** Resolves with the ms until `emitter` emits `event`, rejects after `timeoutMs`. */
function timeUntil(emitter: NodeJS.EventEmitter, event: string, timeoutMs: number): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no '${event}' within ${timeoutMs} ms`)), timeoutMs);
    emitter.once(event, () => {
      clearTimeout(timer);
      resolve(performance.now() - started);
    });
  });
}

describe("protocol sniffing", () => {
  it("answers an HTTP/2 preface dribbled one byte at a time with the server's SETTINGS frame", async () => {
    const { port } = await start();
    const socket = await connect(port);
    const received: Buffer[] = [];
    socket.on("data", (d: Buffer) => received.push(d));
    await dribble(socket, PREFACE.subarray(0, PREFACE.length - 1));
    await sleep(30);
    // Still a prefix of the preface: the server must neither answer nor give up.
    expect(Buffer.concat(received).length).toBe(0);
    expect(socket.destroyed).toBe(false);
    socket.write(PREFACE.subarray(PREFACE.length - 1));
    await expect.poll(() => Buffer.concat(received).length, { timeout: 2_000 }).toBeGreaterThanOrEqual(9);
    const frame = Buffer.concat(received);
    // RFC 9113 §4.1 frame header: length(3) type(1) flags(1) stream id(4); §3.4: the server's
    // connection preface is a SETTINGS frame (type 0x4) on stream 0, not an ACK.
    expect(frame[3]).toBe(0x4);
    expect(frame[4]! & 0x1).toBe(0);
    expect(frame.readUInt32BE(5) & 0x7fffffff).toBe(0);
    expect(frame.subarray(0, 8).toString("latin1")).not.toMatch(/^HTTP\//);
  });

  it("serves a complete h2c request whose every byte arrives separately", async () => {
    const { port } = await start();
    const session = h2Connect(await dribblingProxy(port));
    const res = await h2Get(session, "/h2-dribbled");
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ httpVersion: "2.0", method: "GET", url: "/h2-dribbled" });
  });

  it("serves an HTTP/1.1 request dribbled byte by byte (raw socket and through a proxy)", async () => {
    const { port } = await start();
    const socket = await connect(port);
    let raw = "";
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => (raw += d));
    const ended = timeUntil(socket, "end", 5_000);
    // "PO" shares its first byte with the preface: the sniffer must wait, then hand over both bytes.
    await dribble(socket, "POST /dribbled HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    await ended;
    expect(raw).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4))).toEqual({
      httpVersion: "1.1",
      method: "POST",
      url: "/dribbled",
    });

    const res = await h1Get(await dribblingProxy(port), "/h1-proxied", new http.Agent({ keepAlive: false }));
    expect(JSON.parse(res.body)).toEqual({ httpVersion: "1.1", method: "GET", url: "/h1-proxied" });
  });

  it("answers malformed HTTP/1.1 with 400 and oversized headers with 431", async () => {
    const { port } = await start();
    for (const [request, status] of [
      ["GARBAGE\r\n\r\n", 400],
      [`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`, 431],
    ] as const) {
      const socket = await connect(port);
      let raw = "";
      socket.setEncoding("latin1");
      socket.on("data", (d: string) => (raw += d));
      const closed = timeUntil(socket, "close", 3_000);
      socket.write(request);
      await closed;
      expect(raw).toMatch(new RegExp(`^HTTP/1\\.1 ${status} `));
    }
    expect(handled).toEqual([]);
  });

  it("survives peers that reset mid-sniff, and keeps serving", async () => {
    const { server, port } = await start();
    const uncaught: unknown[] = [];
    const onUncaught = (err: unknown) => uncaught.push(err);
    process.on("uncaughtException", onUncaught);
    cleanups.push(() => process.off("uncaughtException", onUncaught));
    const serverSockets: net.Socket[] = [];
    server.on("connection", (s: net.Socket) => serverSockets.push(s));
    for (const prefix of ["P", "PRI * HTTP/2.0\r\n"]) {
      const socket = await connect(port);
      socket.write(prefix);
      await expect.poll(() => serverSockets.length).toBeGreaterThan(0);
      await sleep(20); // let the server read the bytes and start sniffing
      socket.resetAndDestroy();
      const serverSide = serverSockets.shift()!;
      await expect.poll(() => serverSide.destroyed, { timeout: 2_000 }).toBe(true);
    }
    await sleep(20);
    expect(uncaught).toEqual([]);
    // The server still answers both protocols.
    expect((await h1Get(port, "/after-reset")).status).toBe(200);
    expect((await h2Get(h2Connect(port), "/after-reset")).status).toBe(200);
    expect(handled).toEqual(["1.1 GET /after-reset", "2.0 GET /after-reset"]);
  });

  it("closes a connection that sends nothing, or stalls inside the preface, after the sniff timeout", async () => {
    const { port } = await start({ sniffTimeoutMs: 150 });
    const silent = await connect(port);
    const stalled = await connect(port);
    stalled.write(PREFACE.subarray(0, 10));
    silent.resume();
    stalled.resume();
    const [silentMs, stalledMs] = await Promise.all([
      timeUntil(silent, "close", 3_000),
      timeUntil(stalled, "close", 3_000),
    ]);
    expect(silentMs).toBeGreaterThanOrEqual(100);
    expect(silentMs).toBeLessThan(1_500);
    expect(stalledMs).toBeLessThan(1_500);
    expect(handled).toEqual([]);
  });

  it("does not apply the sniff timeout once the connection is handed over", async () => {
    const { port } = await start({ sniffTimeoutMs: 100 });
    const agent = new http.Agent({ keepAlive: true });
    cleanups.push(() => agent.destroy());
    const session = h2Connect(port);
    const first = await h1Get(port, "/one", agent);
    expect((await h2Get(session, "/one")).status).toBe(200);
    await sleep(300);
    const second = await h1Get(port, "/two", agent);
    expect(second.socket).toBe(first.socket); // same keep-alive connection, still open
    expect((await h2Get(session, "/two")).status).toBe(200);
    expect(session.closed).toBe(false);
  });
});

describe("close", () => {
  /** A keep-alive HTTP/1.1 connection and an HTTP/2 session, both idle after one request each. */
  async function idleClients(port: number) {
    const agent = new http.Agent({ keepAlive: true });
    cleanups.push(() => agent.destroy());
    const { socket } = await h1Get(port, "/warm", agent);
    const session = h2Connect(port);
    await h2Get(session, "/warm");
    expect(socket.destroyed).toBe(false);
    return { agent, socket, session };
  }

  it("completes quickly with idle keep-alive and HTTP/2 clients (Fastify's close sequence)", async () => {
    const { server, port } = await start();
    const { socket, session } = await idleClients(port);
    expect(server.http2SessionCount).toBe(1);
    const socketClosed = timeUntil(socket, "close", 2_000);
    const sessionClosed = timeUntil(session, "close", 2_000);
    const started = performance.now();
    // fastify.js onClose with forceCloseConnections "idle" + serverFactory, then closeHttp2Sessions.
    server.closeIdleConnections();
    server.closeHttp2Sessions();
    await within(
      new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve()))),
      2_000,
      "close",
    );
    expect(performance.now() - started).toBeLessThan(500);
    await Promise.all([socketClosed, sessionClosed]);
    // The server side of the session may close a tick after the client side (Node 24).
    await expect.poll(() => server.http2SessionCount).toBe(0);
  });

  it("lets an in-flight HTTP/1.1 keep-alive request finish, then closes its connection", async () => {
    const { server, port } = await start();
    const agent = new http.Agent({ keepAlive: true });
    cleanups.push(() => agent.destroy());
    await h1Get(port, "/warm", agent);
    const inflight = h1Get(port, "/slow?delay=150", agent);
    await expect.poll(() => handled.length).toBe(2);
    const started = performance.now();
    server.closeIdleConnections();
    server.closeHttp2Sessions();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    const res = await inflight;
    expect(res.status).toBe(200);
    await within(closed, 2_000, "close");
    expect(performance.now() - started).toBeLessThan(500);
  });

  it("closes a real Fastify app (serverFactory, forceCloseConnections idle) with idle clients in < 500 ms", async () => {
    const app = Fastify({
      serverFactory: (handler) => createPolyglotServer(handler as RequestHandler) as unknown as http.Server,
      forceCloseConnections: "idle",
    });
    app.get("/warm", async (req) => ({ httpVersion: req.raw.httpVersion }));
    await app.listen({ host: "127.0.0.1", port: 0 });
    cleanups.push(() => app.close());
    const port = (app.server.address() as net.AddressInfo).port;
    const { socket, session } = await idleClients(port);
    const started = performance.now();
    await within(app.close(), 2_000, "app.close()");
    expect(performance.now() - started).toBeLessThan(500);
    await timeUntil(session, "close", 1_000).catch(() => expect(session.closed).toBe(true));
    expect(socket.destroyed || socket.readableEnded).toBe(true);
  });
});

describe("timeouts", () => {
  it("sets keep-alive, request and headers timeouts explicitly on the inner HTTP/1 server", async () => {
    const defaults = createPolyglotServer(echoHandler);
    expect(defaults.h1.keepAliveTimeout).toBe(72_000);
    expect(defaults.h1.requestTimeout).toBe(300_000);
    expect(defaults.h1.headersTimeout).toBe(60_000);
    expect(defaultTimeouts).toMatchObject({
      keepAliveTimeoutMs: 72_000,
      requestTimeoutMs: 300_000,
      headersTimeoutMs: 60_000,
    });

    const custom = createPolyglotServer(echoHandler, {
      keepAliveTimeoutMs: 1_234,
      requestTimeoutMs: 20_000,
      headersTimeoutMs: 5_000,
    });
    expect([custom.h1.keepAliveTimeout, custom.h1.requestTimeout, custom.h1.headersTimeout]).toEqual([
      1_234, 20_000, 5_000,
    ]);
    // Node requires headersTimeout <= requestTimeout.
    const clamped = createPolyglotServer(echoHandler, { requestTimeoutMs: 2_000, headersTimeoutMs: 5_000 });
    expect(clamped.h1.headersTimeout).toBe(2_000);
  });

  it("applies the keep-alive timeout (not Node's 5 s default) to idle HTTP/1.1 connections", async () => {
    const { port } = await start({ keepAliveTimeoutMs: 300 });
    // A raw socket: Node's Agent would itself drop the connection on the server's `Keep-Alive: timeout=0` hint.
    const socket = await connect(port);
    let raw = "";
    socket.setEncoding("latin1");
    socket.on("data", (d: string) => (raw += d));
    socket.write("GET /ka HTTP/1.1\r\nHost: x\r\n\r\n");
    await expect.poll(() => raw).toContain("/ka");
    const ms = await timeUntil(socket, "end", 4_000);
    expect(raw).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(ms).toBeGreaterThanOrEqual(200);
    // Node may add up to 1 s of keepAliveTimeoutBuffer; its default would be 5 s and more.
    expect(ms).toBeLessThan(3_000);
  });

  it("leaves socket timeouts to the inner server once sniffing is done", async () => {
    const { server, port } = await start({ sniffTimeoutMs: 5_000 });
    // An inner-server socket timeout that is handled (not fatal) must not trip a leftover sniff handler.
    const timedOut: unknown[] = [];
    server.h1.setTimeout(100, (socket: net.Socket) => timedOut.push(socket));
    const res = await h1Get(port, "/slow?delay=400", new http.Agent({ keepAlive: false }));
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ url: "/slow?delay=400" });
    expect(timedOut.length).toBeGreaterThan(0);
  });

  it("closes an HTTP/2 session that stays idle for http2SessionIdleMs", async () => {
    const { port } = await start({ http2SessionIdleMs: 200 });
    const session = h2Connect(port);
    await h2Get(session, "/idle");
    const ms = await timeUntil(session, "close", 4_000);
    expect(ms).toBeLessThan(2_000);
  });
});

describe("upgrade", () => {
  it("forwards 'upgrade' requests to the outer server's listeners", async () => {
    const { server, port } = await start();
    const seen: { url?: string; upgrade?: string; head: number }[] = [];
    server.on("upgrade", (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
      seen.push({ url: req.url, upgrade: req.headers.upgrade, head: head.length });
      socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\n\r\n");
      socket.pipe(socket);
    });
    const echoed = await new Promise<string>((resolve, reject) => {
      const req = http.request({
        host: "127.0.0.1",
        port,
        path: "/ws",
        headers: { Connection: "Upgrade", Upgrade: "echo" },
      });
      req.on("upgrade", (res, socket: net.Socket) => {
        expect(res.statusCode).toBe(101);
        socket.once("data", (d: Buffer) => {
          resolve(d.toString());
          socket.destroy();
        });
        socket.write("ping");
      });
      req.on("response", (res) => reject(new Error(`answered ${res.statusCode} instead of upgrading`)));
      req.on("error", reject);
      req.end();
    });
    expect(echoed).toBe("ping");
    expect(seen).toEqual([{ url: "/ws", upgrade: "echo", head: 0 }]);
    expect(handled).toEqual([]);
  });

  it("answers Upgrade requests over HTTP/1.1 when nobody handles upgrades (curl --http2 sends Upgrade: h2c)", async () => {
    const { server, port } = await start();
    const upgradeHeaders = {
      Connection: "Upgrade, HTTP2-Settings",
      Upgrade: "h2c",
      "HTTP2-Settings": "AAMAAABkAAQCAAAAAAIAAAAA",
    };
    const res = await h1Get(port, "/h2c-upgrade", undefined, upgradeHeaders);
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ httpVersion: "1.1", url: "/h2c-upgrade" });

    // A listener added and removed again restores the plain answer.
    const listener = (_req: http.IncomingMessage, socket: net.Socket) => socket.destroy();
    server.on("upgrade", listener);
    await expect(h1Get(port, "/claimed", undefined, upgradeHeaders)).rejects.toThrow();
    server.off("upgrade", listener);
    expect((await h1Get(port, "/released", undefined, upgradeHeaders)).status).toBe(200);
  });
});
