// Retrieval-augmented chat end to end: a real gateway with SEARCH_ROOTS at a small tree (indexed, with
// the Ollama double's embeddings), asked through the official `openai` SDK (/v1/chat/completions with
// the `retrieval` extension and `context/<model>` ids) and through CompletionService over Connect and
// gRPC. Checks what reaches the model (the context system message, after the client's), that every
// citation's text is the file's real lines, the token budget, and the recorded artifacts.
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ArtifactStatus,
  createAgentgateClients,
  RetrievalSource,
  Role,
  type AgentgateClients,
} from "../../clients/index.js";
import { startGateway, type GatewayHarness } from "../support/gateway-harness.js";
import { untilIdle } from "../support/index-wait.js";

const INVOICE_TS = `/** Billing: invoice totals with tax. */
export interface LineItem {
  description: string;
  quantity: number;
  unitPrice: number;
}

/** Sums the line items and applies the tax rate. */
export function computeInvoiceTotal(items: LineItem[], taxRate: number): number {
  const subtotal = items.reduce((sum, item) => sum + item.quantity * item.unitPrice, 0);
  return Math.round(subtotal * (1 + taxRate) * 100) / 100;
}
`;

const CHECKOUT_TS = `import { computeInvoiceTotal, type LineItem } from "./invoice";

/** Charges a cart: the invoice total with the regional tax. */
export function checkoutCart(cart: LineItem[], region: string): number {
  const taxRate = region === "EU" ? 0.2 : 0.07;
  return computeInvoiceTotal(cart, taxRate);
}
`;

const GEOMETRY_PY = `import math


class Circle:
    """A circle with a radius."""

    def __init__(self, radius):
        self.radius = radius

    def area(self):
        return math.pi * self.radius ** 2
`;

interface WireCitation {
  label: string;
  root: string;
  path: string;
  start_line: number;
  end_line: number;
  sources: string[];
  score: number;
  symbol: string;
  text: string;
}
interface WireRetrieval {
  citations: WireCitation[];
  tokens_injected: number;
  artifact_id: string;
  notices: string[];
}

let tmp: string;
let root: string;
let h: GatewayHarness;
let openai: OpenAI;
let ag: AgentgateClients;
let grpc: AgentgateClients;

/** The file's lines start..end (1-based, inclusive) as they are on disk. */
function linesOf(rel: string, start: number, end: number): string {
  return fs
    .readFileSync(path.join(root, rel), "utf8")
    .split("\n")
    .slice(start - 1, end)
    .join("\n");
}

function expectRealLines(c: { path: string; startLine: number; endLine: number; text: string; label: string }) {
  expect(c.startLine).toBeGreaterThanOrEqual(1);
  expect(c.endLine).toBeGreaterThanOrEqual(c.startLine);
  expect(c.text).toBe(linesOf(c.path, c.startLine, c.endLine));
  expect(c.label).toBe(`${c.path}:${c.startLine}-${c.endLine}`);
}

const fromWire = (c: WireCitation) => ({ ...c, startLine: c.start_line, endLine: c.end_line });

/** The messages of the last /api/chat request the Ollama double received. */
function lastUpstreamChat(): { model: string; messages: { role: string; content: string }[] } {
  const req = h.ollama.requests.filter((r) => r.path === "/api/chat").at(-1);
  if (!req) throw new Error("the double received no chat");
  return req.body as { model: string; messages: { role: string; content: string }[] };
}

/** Adds agentgate's `retrieval` extension field to an SDK request. */
function withRetrieval<T extends object>(params: T, retrieval: Record<string, unknown>): T {
  return { ...params, retrieval };
}

async function connectError(p: Promise<unknown>): Promise<ConnectError> {
  try {
    await p;
  } catch (err) {
    return ConnectError.from(err);
  }
  throw new Error("expected the call to fail");
}

beforeAll(async () => {
  tmp = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), "agentgate-rag-")));
  root = path.join(tmp, "shop");
  const w = (rel: string, content: string) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), content);
  };
  w(".gitignore", "dist/\n");
  w("src/billing/invoice.ts", INVOICE_TS);
  w("src/billing/checkout.ts", CHECKOUT_TS);
  w("py/geometry.py", GEOMETRY_PY);
  w("dist/bundle.js", "function computeInvoiceTotal() { return 0; }\n");
  h = await startGateway({ env: { DATA_DIR: path.join(tmp, "data"), SEARCH_ROOTS: root, SEARCH_WATCH: "true" } });
  openai = new OpenAI({ baseURL: `${h.url}/v1`, apiKey: "x", maxRetries: 0, timeout: 20_000 });
  ag = createAgentgateClients({ baseUrl: h.url, httpVersion: "1.1" });
  grpc = createAgentgateClients({ baseUrl: h.url, protocol: "grpc" });
  await untilIdle(ag);
}, 60_000);

afterAll(async () => {
  await h?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe("/v1/chat/completions with retrieval", () => {
  it("cites real lines from every source, after the client's system message, and records the exchange", async () => {
    const completion = await openai.chat.completions.create(
      withRetrieval(
        {
          model: "qwen3:8b",
          messages: [
            { role: "system", content: "Answer briefly." },
            { role: "user", content: "How does computeInvoiceTotal apply the tax rate?" },
          ],
        },
        {},
      ),
    );
    const ctx = (completion as unknown as { retrieval_context: WireRetrieval }).retrieval_context;
    expect(completion.model).toBe("qwen3:8b");
    expect(ctx.citations.length).toBeGreaterThan(0);
    for (const c of ctx.citations) expectRealLines(fromWire(c));
    // The declaration itself is cited, found by all three sources, and ranked first.
    const decl = ctx.citations[0]!;
    expect(decl.path).toBe("src/billing/invoice.ts");
    expect(decl.start_line).toBeLessThanOrEqual(9);
    expect(decl.end_line).toBeGreaterThanOrEqual(12);
    expect(decl.sources).toEqual(["search", "symbols", "grep"]);
    // The declaration the question names labels the range, not the first one in it.
    expect(decl.symbol).toBe("computeInvoiceTotal");
    // Ignored files are never cited.
    expect(ctx.citations.some((c) => c.path.startsWith("dist/"))).toBe(false);
    expect(ctx.tokens_injected).toBeGreaterThan(0);
    expect(ctx.artifact_id).toMatch(/^art-/);

    const sent = lastUpstreamChat();
    expect(sent.model).toBe("qwen3:8b");
    expect(sent.messages.map((m) => m.role)).toEqual(["system", "system", "user"]);
    expect(sent.messages[0]!.content).toBe("Answer briefly.");
    for (const c of ctx.citations) expect(sent.messages[1]!.content).toContain(`${c.label}`);
    expect(sent.messages[1]!.content).toContain(linesOf("src/billing/invoice.ts", 10, 11));

    const { artifact } = await ag.completion.getArtifact({ id: ctx.artifact_id });
    expect(artifact!.status).toBe(ArtifactStatus.COMPLETED);
    expect(artifact!.completionId).toBe(completion.id);
    expect(artifact!.model).toBe("qwen3:8b");
    expect(artifact!.backend).toBe("ollama");
    expect(artifact!.query).toBe("How does computeInvoiceTotal apply the tax rate?");
    expect(artifact!.messages.map((m) => m.content)).toEqual([
      "Answer briefly.",
      "How does computeInvoiceTotal apply the tax rate?",
    ]);
    expect(artifact!.contextPrompt).toBe(sent.messages[1]!.content);
    expect(artifact!.answer!.content).toBe(completion.choices[0]!.message.content);
    expect(artifact!.citations.map((c) => c.label)).toEqual(ctx.citations.map((c) => c.label));
    expect(artifact!.citations[0]!.text).toBe(ctx.citations[0]!.text);
    expect(artifact!.usage!.totalTokens).toBe(completion.usage!.total_tokens);
  });

  it("turns retrieval on for context/<model> ids and echoes the id", async () => {
    const completion = await openai.chat.completions.create({
      model: "context/qwen3:8b",
      messages: [{ role: "user", content: "What does checkoutCart charge?" }],
    });
    const ctx = (completion as unknown as { retrieval_context: WireRetrieval }).retrieval_context;
    expect(completion.model).toBe("context/qwen3:8b");
    expect(lastUpstreamChat().model).toBe("qwen3:8b");
    expect(ctx.citations.map((c) => c.path)).toContain("src/billing/checkout.ts");
    for (const c of ctx.citations) expectRealLines(fromWire(c));
  });

  it("fits the token budget and the citation cap", async () => {
    const completion = await openai.chat.completions.create(
      withRetrieval(
        {
          model: "qwen3:8b",
          messages: [{ role: "user", content: "computeInvoiceTotal checkoutCart LineItem Circle area" }],
        },
        { max_context_tokens: 160, max_citations: 2, skip_artifact: true },
      ),
    );
    const ctx = (completion as unknown as { retrieval_context: WireRetrieval }).retrieval_context;
    expect(ctx.citations.length).toBeGreaterThan(0);
    expect(ctx.citations.length).toBeLessThanOrEqual(2);
    expect(ctx.tokens_injected).toBeLessThanOrEqual(160);
    expect(lastUpstreamChat().messages[0]!.content.length).toBeLessThanOrEqual(160 * 4);
    for (const c of ctx.citations) expectRealLines(fromWire(c));
    expect(ctx.artifact_id).toBe("");
  });

  it("streams the citations on the first chunk and records the streamed answer", async () => {
    const stream = await openai.chat.completions.create(
      withRetrieval(
        {
          model: "qwen3:8b",
          stream: true,
          messages: [{ role: "user", content: "Where is the Circle area computed?" }],
        },
        { sources: ["symbols"] },
      ),
    );
    const chunks: Record<string, unknown>[] = [];
    let text = "";
    for await (const chunk of stream) {
      chunks.push(chunk as unknown as Record<string, unknown>);
      text += chunk.choices[0]?.delta.content ?? "";
    }
    const ctx = chunks[0]!.retrieval_context as WireRetrieval;
    expect(chunks.slice(1).every((c) => c.retrieval_context === undefined)).toBe(true);
    expect(ctx.citations.map((c) => [c.path, c.start_line, c.end_line, c.sources])).toEqual([
      ["py/geometry.py", 4, 11, ["symbols"]],
    ]);
    expect(ctx.citations[0]!.symbol).toBe("Circle");
    expect(text.length).toBeGreaterThan(0);
    const { artifact } = await ag.completion.getArtifact({ id: ctx.artifact_id });
    expect(artifact!.status).toBe(ArtifactStatus.COMPLETED);
    expect(artifact!.answer!.content).toBe(text);
  });

  it("records a stream the client abandons as canceled, with the answer so far", async () => {
    h.ollama.enqueue({ content: ["first ", "second ", "third"], chunkDelayMs: 300 });
    const ac = new AbortController();
    const stream = await openai.chat.completions.create(
      { model: "context/qwen3:8b", stream: true, messages: [{ role: "user", content: "computeInvoiceTotal" }] },
      { signal: ac.signal },
    );
    let artifactId = "";
    try {
      for await (const chunk of stream) {
        const ctx = (chunk as unknown as { retrieval_context?: WireRetrieval }).retrieval_context;
        if (ctx) artifactId = ctx.artifact_id;
        if (chunk.choices[0]?.delta.content) ac.abort();
      }
    } catch {
      // the abort
    }
    expect(artifactId).not.toBe("");
    const deadline = Date.now() + 10_000;
    let got: Awaited<ReturnType<typeof ag.completion.getArtifact>> | undefined;
    while (Date.now() < deadline) {
      got = await ag.completion.getArtifact({ id: artifactId }).catch(() => undefined);
      if (got) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(got!.artifact!.status).toBe(ArtifactStatus.CANCELED);
    expect(got!.artifact!.answer!.content.startsWith("first")).toBe(true);
    expect(got!.artifact!.answer!.content).not.toContain("third");
  });

  it("rejects bad retrieval options with OpenAI errors", async () => {
    const ask = (retrieval: unknown) =>
      openai.chat.completions.create({
        model: "qwen3:8b",
        messages: [{ role: "user", content: "computeInvoiceTotal" }],
        retrieval,
      } as OpenAI.ChatCompletionCreateParamsNonStreaming & { retrieval: unknown });
    for (const [retrieval, param] of [
      [{ root: "nope" }, "retrieval.root"],
      [{ sources: ["web"] }, undefined],
      [{ max_context_tokens: 1_000_000 }, undefined],
      [{ path_globs: ["[z-a]"] }, "retrieval.path_globs[0]"],
    ] as const) {
      const err = (await ask(retrieval).catch((e: unknown) => e)) as InstanceType<typeof OpenAI.APIError>;
      expect(err).toBeInstanceOf(OpenAI.BadRequestError);
      expect(err.type).toBe("invalid_request_error");
      if (param) expect(err.param).toBe(param);
    }
  });

  it("records a failed exchange when the model fails", async () => {
    h.ollama.enqueue({ httpError: { status: 500, message: "model crashed" } });
    const err = await openai.chat.completions
      .create({ model: "context/qwen3:8b", messages: [{ role: "user", content: "computeInvoiceTotal?" }] })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.APIError);
    const { artifacts } = await ag.completion.listArtifacts({ model: "context/qwen3:8b", pageSize: 1 });
    expect(artifacts[0]!.status).toBe(ArtifactStatus.FAILED);
    expect(artifacts[0]!.error).toContain("model crashed");
  });
});

describe("CompletionService with retrieval", () => {
  it("Chat returns the citations and GetArtifact the exchange (gRPC)", async () => {
    const r = await grpc.completion.chat({
      model: "qwen3:8b",
      messages: [{ role: Role.USER, content: "What is LineItem?" }],
      retrieval: { sources: [RetrievalSource.SYMBOLS, RetrievalSource.GREP] },
    });
    const cited = r.retrieval!.citations;
    expect(cited.length).toBeGreaterThan(0);
    for (const c of cited) expectRealLines(c);
    expect(cited[0]!.path).toBe("src/billing/invoice.ts");
    expect(cited[0]!.startLine).toBe(1);
    expect(cited.every((c) => c.sources.every((s) => s !== RetrievalSource.SEARCH))).toBe(true);
    const { artifact } = await grpc.completion.getArtifact({ id: r.retrieval!.artifactId });
    expect(artifact!.completionId).toBe(r.id);
  });

  it("ChatStream puts the citations on the first frame only", async () => {
    const frames = [];
    for await (const f of ag.completion.chatStream({
      model: "context/qwen3:8b",
      messages: [{ role: Role.USER, content: "computeInvoiceTotal" }],
    }))
      frames.push(f);
    expect(frames[0]!.retrieval!.citations.length).toBeGreaterThan(0);
    expect(frames.slice(1).every((f) => f.retrieval === undefined)).toBe(true);
    expect(frames.at(-1)!.usage).toBeDefined();
    expect(frames[0]!.model).toBe("context/qwen3:8b");
  });

  it("ListArtifacts pages newest first without the bulky fields", async () => {
    const first = await ag.completion.listArtifacts({ pageSize: 2 });
    expect(first.artifacts).toHaveLength(2);
    expect(first.nextPageToken).not.toBe("");
    const second = await ag.completion.listArtifacts({ pageSize: 2, pageToken: first.nextPageToken });
    const all = [...first.artifacts, ...second.artifacts];
    expect(new Set(all.map((a) => a.id)).size).toBe(all.length);
    const times = all.map((a) => Number(a.created!.seconds) * 1e9 + a.created!.nanos);
    expect([...times].sort((a, b) => b - a)).toEqual(times);
    for (const a of all) {
      expect(a.messages).toEqual([]);
      expect(a.contextPrompt).toBe("");
      expect(a.citations.every((c) => c.text === "")).toBe(true);
    }
  });

  it("answers not_found, invalid_argument and bad page tokens with Connect codes", async () => {
    expect((await connectError(ag.completion.getArtifact({ id: "art-missing" }))).code).toBe(Code.NotFound);
    expect((await connectError(ag.completion.getArtifact({ id: "" }))).code).toBe(Code.InvalidArgument);
    expect((await connectError(ag.completion.listArtifacts({ pageToken: "garbage" }))).code).toBe(Code.InvalidArgument);
    const bad = await connectError(
      ag.completion.chat({
        model: "qwen3:8b",
        messages: [{ role: Role.USER, content: "x" }],
        retrieval: { sources: [99 as RetrievalSource] },
      }),
    );
    expect(bad.code).toBe(Code.InvalidArgument);
  });
});
