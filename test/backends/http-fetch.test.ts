import http from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createHttpFetch } from "../../src/backends/http-fetch.js";

describe("createHttpFetch (node:http fetch for upstream calls)", () => {
  let server: http.Server;
  let base: string;
  let closedEarly = 0;
  const f = createHttpFetch();

  beforeAll(async () => {
    server = http.createServer((req, res) => {
      if (req.url === "/slow") {
        res.write("first\n");
        const t = setTimeout(() => res.end("last\n"), 500);
        res.on("close", () => {
          if (!res.writableFinished) closedEarly++;
          clearTimeout(t);
        });
        return;
      }
      let body = "";
      req.on("data", (c: Buffer) => (body += c.toString()));
      req.on("end", () => {
        res.setHeader("content-type", "application/json");
        res.end(JSON.stringify({ method: req.method, body, port: req.socket.remotePort }));
      });
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    f.destroy();
    await new Promise((r) => server.close(r));
  });

  it("posts a body and reads JSON, reusing one keep-alive connection", async () => {
    const a = await f(`${base}/x`, {
      method: "POST",
      body: '{"a":1}',
      headers: { "content-type": "application/json" },
    });
    expect(a.ok).toBe(true);
    expect(a.headers.get("Content-Type")).toBe("application/json");
    const ja = (await a.json()) as { body: string; port: number; method: string };
    const jb = (await (await f(`${base}/y`)).json()) as { port: number };
    expect(ja).toMatchObject({ method: "POST", body: '{"a":1}' });
    expect(jb.port).toBe(ja.port);
  });

  it("an abort after the body is complete is harmless and the socket stays usable", async () => {
    const ac = new AbortController();
    const res = await f(`${base}/z`, { signal: ac.signal });
    const reader = res.body.getReader();
    while (!(await reader.read()).done);
    ac.abort();
    await new Promise((r) => setTimeout(r, 20));
    expect((await f(`${base}/again`)).status).toBe(200);
  });

  it("an abort mid-body ends the read with the abort reason and closes the upstream request", async () => {
    const ac = new AbortController();
    const res = await f(`${base}/slow`, { signal: ac.signal });
    const reader = res.body.getReader();
    expect(Buffer.from((await reader.read()).value!).toString()).toBe("first\n");
    ac.abort(new Error("caller left"));
    await expect(reader.read()).rejects.toThrow("caller left");
    await expect.poll(() => closedEarly).toBe(1);
  });

  it("an abort before the answer rejects the call", async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(f(`${base}/never`, { signal: ac.signal })).rejects.toThrow(/abort/i);
  });

  it("a refused connection rejects with the network error code", async () => {
    await expect(f("http://127.0.0.1:1/")).rejects.toMatchObject({ code: "ECONNREFUSED" });
  });
});
