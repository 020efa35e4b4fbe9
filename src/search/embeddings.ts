/**
 * Embeddings through Ollama's `POST /api/embed` ({model, input: string[]} -> {embeddings: number[][]},
 * L2-normalised; ../shared/notes/storage-search.md §3). Plain fetch rather than the `ollama` client: it gives
 * per-request timeouts and lets failures be classified (connection refused vs model missing vs HTTP error).
 *
 * - Batching: `batchSize` inputs per request (default 32), at most `concurrency` requests in flight
 *   (default 2: Ollama serialises an embedding model's requests unless OLLAMA_NUM_PARALLEL is raised, so
 *   more only queues there while one in flight leaves it idle between batches). Output order = input order.
 * - nomic-embed-text was trained with task prefixes and retrieves worse without them: documents get
 *   "search_document: ", queries "search_query: " (huggingface.co/nomic-ai/nomic-embed-text-v1.5). Other
 *   models get none unless `prefixes` says otherwise.
 * - Failures are a value, not an exception: `{status: "unavailable", reason, message}` lets search fall back
 *   to lexical-only ranking and say why. Only the caller's own abort throws.
 * - Dimensions are discovered from the first answer (or `probe()`), and every later vector must match.
 */

export interface EmbedderOptions {
  /** Ollama base URL, e.g. http://127.0.0.1:11434 (the UPSTREAM setting). */
  baseUrl: string;
  /** EMBED_MODEL; default "nomic-embed-text". */
  model?: string;
  /** Inputs per /api/embed request (default 32). */
  batchSize?: number;
  /** Requests in flight (default 2). */
  concurrency?: number;
  /** Per-request timeout (default 120 000 ms: the first request may load the model). */
  timeoutMs?: number;
  /** Task prefixes; default: nomic-embed-text's for nomic-embed-text models, none otherwise. */
  prefixes?: { document: string; query: string } | false;
  /** Passed as `keep_alive` (Ollama's default is "5m"). */
  keepAlive?: string;
  fetch?: typeof fetch;
}

export type UnavailableReason = "unreachable" | "timeout" | "model_not_found" | "upstream_error";

export interface EmbedUnavailable {
  status: "unavailable";
  reason: UnavailableReason;
  /** Says what failed and what to do, for logs and for the "lexical only" note in search responses. */
  message: string;
}

export type EmbedResult =
  { status: "ok"; vectors: Float32Array[]; dimensions: number; model: string } | EmbedUnavailable;

export type ProbeResult = { status: "ok"; dimensions: number; model: string } | EmbedUnavailable;

export const DEFAULT_EMBED_MODEL = "nomic-embed-text";

const NOMIC_PREFIXES = { document: "search_document: ", query: "search_query: " };

/** Unavailable, as an exception inside the batch loop only. */
class Unavailable extends Error {
  constructor(readonly result: EmbedUnavailable) {
    super(result.message);
  }
}

export class OllamaEmbedder {
  readonly model: string;
  private readonly baseUrl: string;
  private readonly batchSize: number;
  private readonly concurrency: number;
  private readonly timeoutMs: number;
  private readonly prefixes: { document: string; query: string } | undefined;
  private readonly keepAlive: string | undefined;
  private readonly fetchImpl: typeof fetch;
  private dims: number | undefined;

  constructor(options: EmbedderOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.model = options.model || DEFAULT_EMBED_MODEL;
    this.batchSize = Math.max(1, options.batchSize ?? 32);
    this.concurrency = Math.max(1, options.concurrency ?? 2);
    this.timeoutMs = options.timeoutMs ?? 120_000;
    this.prefixes =
      options.prefixes === false
        ? undefined
        : (options.prefixes ?? (isNomicText(this.model) ? NOMIC_PREFIXES : undefined));
    this.keepAlive = options.keepAlive;
    this.fetchImpl = options.fetch ?? fetch;
  }

  /** Known once any request has succeeded. */
  get dimensions(): number | undefined {
    return this.dims;
  }

  /** Discovers the dimension count (one tiny request the first time), or says why it cannot. */
  async probe(signal?: AbortSignal): Promise<ProbeResult> {
    if (this.dims !== undefined) return { status: "ok", dimensions: this.dims, model: this.model };
    const r = await this.embed(["dimension probe"], "", signal);
    return r.status === "ok" ? { status: "ok", dimensions: r.dimensions, model: this.model } : r;
  }

  /** Chunk texts for indexing. */
  embedDocuments(texts: readonly string[], signal?: AbortSignal): Promise<EmbedResult> {
    return this.embed(texts, this.prefixes?.document ?? "", signal);
  }

  /** A search query. */
  async embedQuery(text: string, signal?: AbortSignal): Promise<EmbedResult> {
    return this.embed([text], this.prefixes?.query ?? "", signal);
  }

  private async embed(texts: readonly string[], prefix: string, signal?: AbortSignal): Promise<EmbedResult> {
    const inputs = texts.map((t) => prefix + t);
    const vectors = new Array<Float32Array>(inputs.length);
    const batches: number[] = [];
    for (let i = 0; i < inputs.length; i += this.batchSize) batches.push(i);
    let next = 0;
    let failed: EmbedUnavailable | undefined;
    const worker = async (): Promise<void> => {
      while (!failed && next < batches.length) {
        const start = batches[next++]!;
        try {
          const out = await this.request(inputs.slice(start, start + this.batchSize), signal);
          out.forEach((v, j) => (vectors[start + j] = v));
        } catch (err) {
          if (err instanceof Unavailable) failed ??= err.result;
          else throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, batches.length) }, worker));
    if (failed) return failed;
    return { status: "ok", vectors, dimensions: this.dims ?? 0, model: this.model };
  }

  private async request(input: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    const timeout = AbortSignal.timeout(this.timeoutMs);
    const where = `Ollama at ${this.baseUrl}`;
    let res: Response;
    try {
      res = await this.fetchImpl(`${this.baseUrl}/api/embed`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          model: this.model,
          input,
          ...(this.keepAlive ? { keep_alive: this.keepAlive } : {}),
        }),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (err) {
      if (signal?.aborted) throw signal.reason;
      if (timeout.aborted) {
        throw unavailable("timeout", `${where} did not answer /api/embed within ${this.timeoutMs} ms`);
      }
      throw unavailable("unreachable", `${where} is unreachable (${describeFetchError(err)}): vector search is off`);
    }
    const text = await res.text().catch(() => "");
    if (!res.ok) {
      const message = errorText(text) || `HTTP ${res.status}`;
      if (res.status === 404 && /model .*not found/i.test(message)) {
        throw unavailable(
          "model_not_found",
          `embedding model ${this.model} is not on ${where} (${message}): run "ollama pull ${this.model}" ` +
            `or set EMBED_MODEL`,
        );
      }
      throw unavailable("upstream_error", `${where} refused /api/embed for ${this.model}: ${message}`);
    }
    let embeddings: unknown;
    try {
      embeddings = (JSON.parse(text) as { embeddings?: unknown }).embeddings;
    } catch {
      embeddings = undefined;
    }
    if (!Array.isArray(embeddings) || embeddings.length !== input.length) {
      throw unavailable("upstream_error", `${where} answered /api/embed with ${input.length} inputs unexpectedly`);
    }
    return embeddings.map((e: unknown) => {
      if (!Array.isArray(e) || e.length === 0) throw unavailable("upstream_error", `${where} sent an empty embedding`);
      this.dims ??= e.length;
      if (e.length !== this.dims) {
        throw unavailable(
          "upstream_error",
          `${where} sent a ${e.length}-dimensional embedding for ${this.model}, earlier ones had ${this.dims}`,
        );
      }
      return Float32Array.from(e as number[]);
    });
  }
}

function unavailable(reason: UnavailableReason, message: string): Unavailable {
  return new Unavailable({ status: "unavailable", reason, message });
}

/** "nomic-embed-text", "nomic-embed-text:v1.5", "library/nomic-embed-text:latest". */
function isNomicText(model: string): boolean {
  return /(^|\/)nomic-embed-text(:|$)/.test(model);
}

function errorText(body: string): string {
  try {
    const parsed = JSON.parse(body) as { error?: unknown };
    if (typeof parsed.error === "string") return parsed.error;
  } catch {
    // not JSON: use the text itself
  }
  return body.trim().slice(0, 300);
}

function describeFetchError(err: unknown): string {
  const cause = (err as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (cause && typeof cause.code === "string") return cause.code;
  if (cause && typeof cause.message === "string") return cause.message;
  return err instanceof Error ? err.message : String(err);
}
