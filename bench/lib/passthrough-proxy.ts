/**
 * The "what any proxy costs" baseline: a minimal Node reverse proxy. Each request is
 * forwarded with http.request over one keep-alive http.Agent, and the upstream response
 * (JSON or an NDJSON stream) is piped back unchanged. No parsing, validation or logging.
 *
 *   node --import tsx bench/lib/passthrough-proxy.ts <upstream-url>
 *
 * Listens on 127.0.0.1 (ephemeral port), prints its URL as the only stdout line, and
 * serves until SIGTERM/SIGINT.
 */
import http from "node:http";
import type { AddressInfo } from "node:net";

/** Hop-by-hop headers (RFC 9110 §7.6.1) are not forwarded. */
const HOP = new Set(["connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"]);

function endToEnd(headers: http.IncomingHttpHeaders): http.OutgoingHttpHeaders {
  const out: http.OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined && !HOP.has(k)) out[k] = v;
  return out;
}

export function startPassthroughProxy(upstream: string, port = 0): Promise<http.Server & { url: string }> {
  const target = new URL(upstream);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 256 });
  const server = http.createServer((req, res) => {
    const up = http.request(
      {
        host: target.hostname,
        port: target.port,
        method: req.method,
        path: req.url,
        headers: { ...endToEnd(req.headers), host: target.host },
        agent,
      },
      (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, endToEnd(upRes.headers));
        upRes.pipe(res);
      },
    );
    up.on("error", (err) => {
      if (!res.headersSent) res.writeHead(502, { "content-type": "text/plain" }).end(`proxy: ${err.message}`);
      else res.destroy(err);
    });
    // The caller went away: stop the upstream request too.
    res.on("close", () => {
      if (!res.writableFinished) up.destroy();
    });
    req.pipe(up);
  });
  server.keepAliveTimeout = 72_000;
  server.headersTimeout = 75_000;
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, "127.0.0.1", () => {
      const { port: bound } = server.address() as AddressInfo;
      resolve(Object.assign(server, { url: `http://127.0.0.1:${bound}` }));
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const upstream = process.argv[2];
  if (!upstream) {
    console.error("usage: passthrough-proxy.ts <upstream-url>");
    process.exit(2);
  }
  const server = await startPassthroughProxy(upstream);
  console.log(server.url);
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
}
