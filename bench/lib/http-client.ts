/**
 * The plain node:http client every REST and NDJSON measurement uses (direct to the
 * double, through the pass-through proxy, through agentgate), so the client's own cost
 * is the same for each. One keep-alive Agent per target.
 */
import http from "node:http";

export interface JsonPostTarget {
  /** Sends the request and resolves once the whole body is in. Rejects on a non-2xx status. */
  post(): Promise<Buffer>;
  /**
   * Streams the request; resolves with the time to the first chunk that carries generated
   * text (`"content":"<non-empty>`, the same test for Ollama NDJSON and OpenAI SSE) and the
   * time to the end of the stream, both in ms from the call.
   */
  stream(): Promise<{ ttfcMs: number; totalMs: number }>;
  close(): void;
}

/** Matches the first generated text in an NDJSON line or an SSE chat chunk (not the empty role chunk). */
const CONTENT = /"content":"[^"]/;

export function jsonPostTarget(
  baseUrl: string,
  path: string,
  body: unknown,
  streamBody: unknown,
  maxSockets = 64,
): JsonPostTarget {
  const url = new URL(path, baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  const payload = Buffer.from(JSON.stringify(body));
  const streamPayload = Buffer.from(JSON.stringify(streamBody));
  const options = (len: number): http.RequestOptions => ({
    host: url.hostname,
    port: url.port,
    path: url.pathname,
    method: "POST",
    agent,
    headers: { "content-type": "application/json", "content-length": len, accept: "*/*" },
  });

  return {
    post() {
      return new Promise<Buffer>((resolve, reject) => {
        const req = http.request(options(payload.length), (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", reject);
          res.on("end", () => {
            const buf = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
            const status = res.statusCode ?? 0;
            if (status < 200 || status >= 300)
              reject(new Error(`${url.href} answered ${status}: ${buf.toString("utf8").slice(0, 300)}`));
            else resolve(buf);
          });
        });
        req.on("error", reject);
        req.end(payload);
      });
    },
    stream() {
      return new Promise((resolve, reject) => {
        const t0 = performance.now();
        let ttfc = Number.NaN;
        let text = "";
        const req = http.request(options(streamPayload.length), (res) => {
          res.setEncoding("utf8");
          res.on("data", (c: string) => {
            if (Number.isNaN(ttfc)) {
              text += c;
              if (CONTENT.test(text)) ttfc = performance.now() - t0;
            }
          });
          res.on("error", reject);
          res.on("end", () => {
            const totalMs = performance.now() - t0;
            const status = res.statusCode ?? 0;
            if (status < 200 || status >= 300)
              reject(new Error(`${url.href} answered ${status}: ${text.slice(0, 300)}`));
            else if (Number.isNaN(ttfc))
              reject(new Error(`${url.href}: stream carried no content: ${text.slice(0, 300)}`));
            else resolve({ ttfcMs: ttfc, totalMs });
          });
        });
        req.on("error", reject);
        req.end(streamPayload);
      });
    },
    close() {
      agent.destroy();
    },
  };
}
