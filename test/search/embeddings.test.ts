import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { OllamaEmbedder } from "../../src/search/embeddings.js";
import { hashEmbedding } from "../doubles/double-server.js";
import { OllamaDouble } from "../doubles/ollama-double.js";

describe("OllamaEmbedder against the Ollama double", () => {
  const ollama = new OllamaDouble();
  beforeAll(() => ollama.listen());
  afterAll(() => ollama.close());
  beforeEach(() => ollama.reset());

  const embedRequests = () =>
    ollama.requests.filter((r) => r.path === "/api/embed").map((r) => r.body as { model: string; input: string[] });

  it("batches documents (32 per request), keeps input order and adds nomic's task prefix", async () => {
    const embedder = new OllamaEmbedder({ baseUrl: ollama.url });
    const texts = Array.from({ length: 70 }, (_, i) => `chunk ${i}`);
    const r = await embedder.embedDocuments(texts);
    expect(r.status).toBe("ok");
    if (r.status !== "ok") return;
    expect(r).toMatchObject({ dimensions: 768, model: "nomic-embed-text" });
    expect(r.vectors).toHaveLength(70);
    const sent = embedRequests();
    expect(sent.map((b) => b.input.length).sort((a, b) => b - a)).toEqual([32, 32, 6]);
    expect(sent.every((b) => b.model === "nomic-embed-text")).toBe(true);
    expect(sent.flatMap((b) => b.input).sort()).toEqual(texts.map((t) => `search_document: ${t}`).sort());
    for (const i of [0, 33, 69]) {
      const want = hashEmbedding(`search_document: chunk ${i}`, 768);
      expect(r.vectors[i]).toBeInstanceOf(Float32Array);
      expect(Array.from(r.vectors[i]!.slice(0, 4))).toEqual(want.slice(0, 4).map(Math.fround));
    }
    expect(embedder.dimensions).toBe(768);
  });

  it("keeps at most `concurrency` requests in flight", async () => {
    let inFlight = 0;
    let peak = 0;
    const counting = (async (...args: Parameters<typeof fetch>) => {
      peak = Math.max(peak, ++inFlight);
      try {
        return await fetch(...args);
      } finally {
        inFlight--;
      }
    }) as typeof fetch;
    const embedder = new OllamaEmbedder({ baseUrl: ollama.url, batchSize: 4, concurrency: 3, fetch: counting });
    const r = await embedder.embedDocuments(Array.from({ length: 40 }, (_, i) => `t${i}`));
    expect(r.status).toBe("ok");
    if (r.status === "ok") expect(r.vectors.every((v) => v instanceof Float32Array)).toBe(true);
    expect(embedRequests()).toHaveLength(10);
    expect(peak).toBe(3);
  });

  it("embeds queries with the query prefix, and none for non-nomic models", async () => {
    const nomic = new OllamaEmbedder({ baseUrl: ollama.url });
    const q = await nomic.embedQuery("where is the parser");
    expect(q.status).toBe("ok");
    if (q.status === "ok")
      expect(Array.from(q.vectors[0]!.slice(0, 3))).toEqual(
        hashEmbedding("search_query: where is the parser", 768).slice(0, 3).map(Math.fround),
      );
    const other = new OllamaEmbedder({ baseUrl: ollama.url, model: "qwen3:8b" });
    const probe = await other.probe();
    expect(probe).toEqual({ status: "ok", dimensions: 4096, model: "qwen3:8b" });
    await other.embedQuery("plain");
    expect(embedRequests().map((b) => b.input)).toEqual([
      ["search_query: where is the parser"],
      ["dimension probe"],
      ["plain"],
    ]);
    const custom = new OllamaEmbedder({ baseUrl: ollama.url, model: "nomic-embed-text", prefixes: false });
    await custom.embedDocuments(["raw"]);
    expect(embedRequests().at(-1)!.input).toEqual(["raw"]);
  });

  it("an empty list needs no request", async () => {
    const r = await new OllamaEmbedder({ baseUrl: ollama.url }).embedDocuments([]);
    expect(r).toMatchObject({ status: "ok", vectors: [] });
    expect(embedRequests()).toEqual([]);
  });

  it("says unavailable (model_not_found) for a model Ollama lacks, naming the fix", async () => {
    const r = await new OllamaEmbedder({ baseUrl: ollama.url, model: "mxbai-embed-large" }).embedDocuments(["x"]);
    expect(r).toMatchObject({ status: "unavailable", reason: "model_not_found" });
    if (r.status === "unavailable") expect(r.message).toContain("ollama pull mxbai-embed-large");
  });

  it("says unavailable (upstream_error) when Ollama answers with an error", async () => {
    const r = await new OllamaEmbedder({ baseUrl: ollama.url, model: "" }).embedDocuments(["x"]);
    expect(r.status).toBe("ok"); // "" means the default model
    // The embed route is not scripted; an unknown route stands in for a failing server.
    const broken = new OllamaEmbedder({ baseUrl: `${ollama.url}/nowhere` });
    expect(await broken.embedDocuments(["x"])).toMatchObject({ status: "unavailable", reason: "upstream_error" });
  });

  it("says unavailable (unreachable) when nothing listens, without throwing", async () => {
    const down = new OllamaDouble();
    await down.listen();
    const url = down.url;
    await down.close();
    const embedder = new OllamaEmbedder({ baseUrl: url });
    const r = await embedder.embedDocuments(["a", "b"]);
    expect(r).toMatchObject({ status: "unavailable", reason: "unreachable" });
    if (r.status === "unavailable") expect(r.message).toContain(url);
    expect(await embedder.probe()).toMatchObject({ status: "unavailable", reason: "unreachable" });
  });

  it("throws only for the caller's own abort", async () => {
    const controller = new AbortController();
    controller.abort(new Error("caller gave up"));
    await expect(new OllamaEmbedder({ baseUrl: ollama.url }).embedQuery("x", controller.signal)).rejects.toThrow(
      "caller gave up",
    );
  });
});
