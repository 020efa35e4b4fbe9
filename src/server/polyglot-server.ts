/**
 * One cleartext port for HTTP/1.1 and HTTP/2 (h2c prior knowledge).
 *
 * Node cannot serve both on one cleartext socket (`allowHTTP1` needs TLS), so a
 * plain `net.Server` reads the first bytes of each connection, compares them with
 * the HTTP/2 connection preface, and hands the socket to an inner `http` or
 * `http2` server. The four pitfalls from notes/connect-transport.md §2 are handled
 * here: sniffing errors and timeouts, close helpers Fastify looks for, explicit
 * timeouts (Fastify ignores its own with `serverFactory`), and connection tracking
 * on the never-listening inner HTTP/1 server.
 */
import http from "node:http";
import http2 from "node:http2";
import net from "node:net";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export type RequestHandler = (
  req: http.IncomingMessage | http2.Http2ServerRequest,
  res: http.ServerResponse | http2.Http2ServerResponse,
) => void;

export interface PolyglotTimeouts {
  /** How long a connection may take to send its first bytes. */
  sniffTimeoutMs: number;
  /** Idle time before an HTTP/1.1 keep-alive connection is closed. */
  keepAliveTimeoutMs: number;
  /** Time to receive a whole HTTP/1.1 request (not the response: streams may run long). */
  requestTimeoutMs: number;
  /** Time to receive HTTP/1.1 request headers. */
  headersTimeoutMs: number;
  /** Idle time before an HTTP/2 session with no open streams is closed. */
  http2SessionIdleMs: number;
}

export const defaultTimeouts: PolyglotTimeouts = {
  sniffTimeoutMs: 10_000,
  keepAliveTimeoutMs: 72_000,
  requestTimeoutMs: 300_000,
  headersTimeoutMs: 60_000,
  http2SessionIdleMs: 300_000,
};

/** True while `bytes` could still be the start of the HTTP/2 preface. */
function couldBePreface(bytes: Buffer): boolean {
  const n = Math.min(bytes.length, PREFACE.length);
  return bytes.subarray(0, n).equals(PREFACE.subarray(0, n));
}

export class PolyglotServer extends net.Server {
  readonly h1: http.Server;
  readonly h2: http2.Http2Server;
  private readonly sessions = new Set<http2.ServerHttp2Session>();
  /** Every accepted socket, whichever inner server owns it (or none yet, while sniffing). */
  private readonly sockets = new Set<net.Socket>();
  private readonly timeouts: PolyglotTimeouts;
  private closing = false;

  constructor(handler: RequestHandler, timeouts: Partial<PolyglotTimeouts> = {}) {
    super();
    this.timeouts = { ...defaultTimeouts, ...timeouts };
    this.h1 = http.createServer(handler as http.RequestListener);
    this.h1.keepAliveTimeout = this.timeouts.keepAliveTimeoutMs;
    this.h1.requestTimeout = this.timeouts.requestTimeoutMs;
    this.h1.headersTimeout = Math.min(this.timeouts.headersTimeoutMs, this.timeouts.requestTimeoutMs || Infinity);
    this.h2 = http2.createServer(
      {},
      handler as (req: http2.Http2ServerRequest, res: http2.Http2ServerResponse) => void,
    );
    this.h2.on("session", (session) => this.trackSession(session));
    // WebSocket upgrades arrive on the inner HTTP/1 server; Fastify plugins listen on this one.
    // Node hands a request to 'upgrade' only while the server has 'upgrade' listeners, and answers
    // it as a plain request otherwise (e.g. curl --http2's `Upgrade: h2c`), so the inner server
    // listens only while the outer one does.
    const forwardUpgrade = (req: http.IncomingMessage, socket: net.Socket, head: Buffer) =>
      this.emit("upgrade", req, socket, head);
    this.on("newListener", (event: string | symbol) => {
      if (event === "upgrade" && this.h1.listenerCount("upgrade") === 0) this.h1.on("upgrade", forwardUpgrade);
    });
    this.on("removeListener", (event: string | symbol) => {
      if (event === "upgrade" && this.listenerCount("upgrade") === 0) this.h1.off("upgrade", forwardUpgrade);
    });
    this.h1.on("clientError", (err: NodeJS.ErrnoException, socket: net.Socket) => {
      if (socket.writable && err.code !== "ECONNRESET") {
        // The statuses Node's own default handler uses.
        const status =
          err.code === "HPE_HEADER_OVERFLOW"
            ? "431 Request Header Fields Too Large"
            : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
              ? "408 Request Timeout"
              : "400 Bad Request";
        socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      } else {
        socket.destroy();
      }
    });
    // While closing, a keep-alive connection whose last response just ended is idle:
    // close it now instead of waiting for the keep-alive timeout.
    this.h1.on("request", (_req: http.IncomingMessage, res: http.ServerResponse) => {
      res.once("finish", () => {
        if (this.closing) setImmediate(() => this.h1.closeIdleConnections());
      });
    });
    this.on("connection", (socket: net.Socket) => this.sniff(socket));
    // Node starts HTTP/1 connection tracking (header/request timeouts, closeIdleConnections)
    // only on 'listening', which the inner server never sees on its own.
    this.on("listening", () => this.h1.emit("listening"));
    this.on("close", () => {
      this.h1.close();
      this.h2.close();
    });
  }

  private sniff(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.once("close", () => this.sockets.delete(socket));
    // Small writes (SSE events, RPC frames) must not wait for Nagle + delayed ACK (~40 ms).
    socket.setNoDelay(true);
    let received = Buffer.alloc(0);
    // A peer that resets mid-sniff must not crash the process.
    const onError = () => socket.destroy();
    const onTimeout = () => socket.destroy();
    socket.on("error", onError);
    socket.setTimeout(this.timeouts.sniffTimeoutMs);
    socket.once("timeout", onTimeout);
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const isH2 = received.length >= PREFACE.length && couldBePreface(received);
      if (!isH2 && couldBePreface(received)) return; // keep reading: still a prefix of the preface
      socket.removeListener("data", onData);
      socket.removeListener("error", onError);
      // Drop the sniff timer and its listener: the inner servers' own socket timeouts must not destroy it.
      socket.removeListener("timeout", onTimeout);
      socket.setTimeout(0);
      socket.pause();
      socket.unshift(received);
      // http2 drains the already-buffered bytes itself; http reads them as 'data'
      // events, which an explicitly paused socket never emits.
      (isH2 ? this.h2 : this.h1).emit("connection", socket);
      if (!isH2) socket.resume();
      // Node 24 ends an HTTP/2 session's socket half-way and waits for the peer's FIN; a peer that
      // never sends one would hold close() open. Once our side is done, the connection is too.
      else socket.once("finish", () => setTimeout(() => socket.destroy(), 250).unref());
      // The inner servers attach their own error handling; keep a no-op guard for the gap.
      socket.on("error", () => {});
    };
    socket.on("data", onData);
  }

  private trackSession(session: http2.ServerHttp2Session): void {
    this.sessions.add(session);
    let openStreams = 0;
    session.on("stream", (stream) => {
      openStreams++;
      stream.once("close", () => openStreams--);
    });
    session.setTimeout(this.timeouts.http2SessionIdleMs, () => {
      if (openStreams === 0) session.close();
    });
    session.on("error", () => {});
    session.once("close", () => this.sessions.delete(session));
  }

  override close(callback?: (err?: Error) => void): this {
    this.closing = true;
    return super.close(callback);
  }

  // The three methods Fastify's close looks for (pitfall 2).
  closeIdleConnections(): void {
    this.h1.closeIdleConnections();
  }

  closeAllConnections(): void {
    this.h1.closeAllConnections();
    for (const session of this.sessions) session.destroy();
    // Whatever the inner servers do not track (sockets still sniffing, and on some Node versions
    // sockets whose HTTP/2 session already went) must not hold close() open.
    for (const socket of this.sockets) socket.destroy();
  }

  closeHttp2Sessions(): void {
    for (const session of this.sessions) session.close();
  }

  get http2SessionCount(): number {
    return this.sessions.size;
  }
}

export function createPolyglotServer(handler: RequestHandler, timeouts?: Partial<PolyglotTimeouts>): PolyglotServer {
  return new PolyglotServer(handler, timeouts);
}
