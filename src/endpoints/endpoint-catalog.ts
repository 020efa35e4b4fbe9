/**
 * The endpoint domain (EndpointService and the REST routes are thin layers over it): the semantic
 * cache, dreaming jobs, validation, expiry, status events and callbacks. docs/endpoints.md has the
 * life cycle; the rules that matter here:
 * - One endpoint per route (method + path template, parameter names ignored). A description at
 *   least ENDPOINT_SIMILARITY similar to the route's endpoint is a cache hit; a dissimilar one is
 *   refused (already_exists) unless `force`, which re-dreams the route with the new description.
 * - Every dream is a new version; the served version stays served until another one is READY.
 * - Every status change notifies watchers at once (this replica) or within a second (others), and
 *   POSTs the record to the callback URL, one delivery at a time per endpoint so receivers see the
 *   statuses in order.
 */
import { EventEmitter } from "node:events";
import type { Logger } from "pino";
import type { CallbackSender } from "../callbacks/callback-sender.js";
import { GatewayError } from "../errors/gateway-error.js";
import type { JobManager } from "../jobs/job-manager.js";
import { FINAL_STATUSES, type JobRecord } from "../jobs/types.js";
import { newId } from "../util/ids.js";
import { dreamContextFiles, renderDreamPrompt, type DreamContext } from "./dream-instructions.js";
import { isUniqueViolation, type DreamInputs, type EndpointStore } from "./endpoint-store.js";
import type { EndpointValidator } from "./endpoint-validator.js";
import type { EndpointVectors } from "./endpoint-vectors.js";
import type { SchemaValidator } from "./openapi-check.js";
import {
  DREAMING_STATUSES,
  SETTLED_STATUSES,
  type DreamRequest,
  type EndpointRecord,
  type ListEndpointsQuery,
} from "./types.js";
import { notFound, validateDreamRequest } from "./validate.js";

export const ENDPOINT_ID_LABEL = "agentgate.endpoint_id";
export const ENDPOINT_VERSION_LABEL = "agentgate.endpoint_version";

/** A VALIDATING version untouched this long was abandoned (its replica stopped): validate again. */
const VALIDATING_STALE_MS = 10 * 60_000;
/** The recovery sweep leaves versions younger than this to the replica handling them. */
const RECOVERY_AFTER_MS = 60_000;
const WATCH_POLL_MS = 1000;
const DEFAULT_PAGE = 50;
const MAX_PAGE = 500;
/** ListEndpoints with a query ranks at most this many of the most similar endpoints. */
const MAX_RANKED = 1000;
/** Similar endpoints given to a dreaming job as context, and how similar they must be. */
const SIMILAR_CONTEXT = 3;
const SIMILAR_MIN = 0.3;

export interface EndpointCatalogOptions {
  store: EndpointStore;
  vectors: EndpointVectors;
  jobs: JobManager;
  validator: EndpointValidator;
  schemas: SchemaValidator;
  callbacks?: CallbackSender;
  /** The record as callbacks send it (the REST/JSON form). */
  publicJson: (e: EndpointRecord) => unknown;
  /** ENDPOINT_SIMILARITY. */
  similarityThreshold: number;
  /** ENDPOINT_TTL_SECONDS in ms; 0: never expires. */
  defaultTtlMs: number;
  /** ENDPOINT_REFRESH_AHEAD_SECONDS in ms; 0: expired endpoints wait for the next request. */
  refreshAheadMs: number;
  handlerTimeoutMs: number;
  /** How often expiry, recovery and embedding backfill run (default 30 s; 0: only when sweep() is called). */
  sweepMs?: number;
  /** The server's shutdown: open watches end with its reason (an `unavailable` error). */
  shutdown?: AbortSignal;
  logger?: Logger;
}

export class EndpointCatalog {
  private readonly changes = new EventEmitter();
  private readonly deliveries = new Map<string, Promise<void>>();
  private readonly shutdown = new AbortController();
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;
  private readonly validations = new Set<Promise<void>>();
  private readonly unsubscribe: () => void;

  constructor(private readonly o: EndpointCatalogOptions) {
    this.changes.setMaxListeners(0);
    this.unsubscribe = o.jobs.onJobFinished((job) => this.jobFinished(job));
    const every = o.sweepMs ?? 30_000;
    if (every > 0) {
      this.sweepTimer = setInterval(() => void this.sweep(), every);
      this.sweepTimer.unref();
    }
  }

  // --- DreamEndpoint -----------------------------------------------------------------------------

  async dream(r: DreamRequest): Promise<EndpointRecord> {
    const { method, template } = validateDreamRequest(r, this.o.schemas);
    if (r.requestId) {
      const id = await this.o.store.idByRequestId(r.requestId);
      if (id) return this.get(id);
    }
    const inputs: DreamInputs = {
      description: r.description.trim(),
      requestSchema: r.requestSchema,
      responseSchema: r.responseSchema,
      requestedExamples: r.examples,
      callbackUrl: r.callbackUrl,
      ttlMs: r.ttlMs ?? this.o.defaultTtlMs,
      model: r.model,
      labels: r.labels,
    };
    const embedding = await this.o.vectors.embed(inputs.description, "document");
    if (!embedding.ok)
      this.o.logger?.warn(
        { reason: embedding.reason },
        "dreamed endpoints: no embedding; matching descriptions exactly",
      );
    const vector = embedding.ok ? embedding.vector : undefined;

    for (let attempt = 0; ; attempt++) {
      const existingId = await this.o.store.idByRoute(method, template.key);
      if (!existingId) {
        const id = newId("ept_");
        try {
          await this.o.store.create({
            id,
            method,
            path: template.template,
            pathKey: template.key,
            requestId: r.requestId,
            ...inputs,
          });
        } catch (err) {
          // Another call took the route (or the request id) first: answer as if it had come first.
          if (isUniqueViolation(err) && attempt < 2) {
            if (r.requestId) {
              const byRequest = await this.o.store.idByRequestId(r.requestId);
              if (byRequest) return this.get(byRequest);
            }
            continue;
          }
          throw err;
        }
        if (embedding.ok)
          await this.storeVector({ id, method, pathKey: template.key }, embedding.vector, embedding.model);
        await this.submitDream(id, 1, vector);
        return this.get(id);
      }

      // With its versions: a plain cache hit answers with this read (bench/endpoints: one read less).
      const rec = await this.o.store.get(existingId, { versions: true });
      if (!rec) continue; // deleted in between
      const similarity = await this.similarity(rec, inputs.description, vector);
      if (r.force) {
        if (DREAMING_STATUSES.has(rec.status))
          throw new GatewayError(
            "failed_precondition",
            `endpoint ${rec.id} (${rec.method} ${rec.path}) is being dreamed already (job ${rec.jobId || "starting"}); ` +
              "wait for it (WatchEndpoint) before forcing another dream",
            { code: "dream_in_progress" },
          );
        const v = await this.o.store.startVersion(rec.id, rec.latestVersion, "dreaming", r.requestId, inputs);
        if (v === undefined) continue; // a concurrent re-dream won; look again
        if (embedding.ok) await this.storeVector(rec, embedding.vector, embedding.model);
        await this.submitDream(rec.id, v, vector);
        return { ...(await this.get(rec.id)), similarity };
      }
      if (similarity < this.o.similarityThreshold)
        throw new GatewayError(
          "already_exists",
          `${rec.method} ${rec.path} is already dreamed as ${rec.id} ("${clip(rec.description)}"), and this description ` +
            `is not similar enough to be the same endpoint (similarity ${similarity.toFixed(3)}, the threshold is ` +
            `${this.o.similarityThreshold}). Re-dream it with force, delete it, or choose another path.`,
          { code: "endpoint_route_taken" },
        );

      // A cache hit. FAILED endpoints try again; expired ones are refreshed while the old version serves.
      if (rec.status === "failed") {
        const v = await this.o.store.startVersion(rec.id, rec.latestVersion, "dreaming", r.requestId);
        if (v !== undefined) {
          await this.submitDream(rec.id, v, vector);
          return { ...(await this.get(rec.id)), similarity };
        }
        continue;
      }
      if (isExpired(rec) && !DREAMING_STATUSES.has(rec.status) && (await this.o.store.markStale(rec.id))) {
        const v = await this.o.store.startVersion(rec.id, rec.latestVersion, "stale", r.requestId);
        if (v !== undefined) await this.submitDream(rec.id, v, vector);
        return { ...(await this.get(rec.id)), cacheHit: true, similarity };
      }
      return { ...rec, cacheHit: true, similarity };
    }
  }

  /** Similarity of a description to the route's endpoint: from the vector store, else exact text. */
  private async similarity(rec: EndpointRecord, description: string, vector?: Float32Array): Promise<number> {
    if (vector) {
      const hit = await this.o.vectors.onRoute(vector, rec.method, rec.pathKey);
      if (hit && hit.id === rec.id) return hit.similarity;
    }
    return normalise(rec.description) === normalise(description) ? 1 : 0;
  }

  private async storeVector(
    e: { id: string; method: string; pathKey: string },
    vector: Float32Array,
    model: string,
  ): Promise<void> {
    try {
      await this.o.vectors.upsert(e, vector);
      await this.o.store.setEmbeddingModel(e.id, model);
    } catch (err) {
      this.o.logger?.warn({ err, endpoint: e.id }, "storing an endpoint's embedding failed; the sweep retries");
    }
  }

  /** Renders the instructions and submits the dreaming job of a version (idempotent per version). */
  private async submitDream(id: string, version: number, vector?: Float32Array): Promise<void> {
    const rec = await this.o.store.get(id, { versions: true });
    if (!rec) return;
    try {
      const previous = rec.versions.find((v) => v.version < version && v.status === "failed");
      const context: DreamContext = {
        endpoint: rec,
        handlerTimeoutMs: this.o.handlerTimeoutMs,
        similar: await this.similarEndpoints(rec, vector),
        previous,
      };
      const job = await this.o.jobs.submit(
        {
          prompt: renderDreamPrompt(context),
          contextFiles: dreamContextFiles(context),
          model: rec.model || undefined,
          sandboxPolicy: "workspace-write",
          collectOutputFiles: true,
          labels: { [ENDPOINT_ID_LABEL]: id, [ENDPOINT_VERSION_LABEL]: String(version) },
        },
        { requestId: `endpoint:${id}:v${version}` },
      );
      await this.o.store.setJob(id, version, job.id);
      // The job may have ended before its id was stored (jobFinished then found nothing to claim).
      if (FINAL_STATUSES.has(job.status)) this.track(this.validateVersion(id, version, job));
    } catch (err) {
      this.o.logger?.warn({ err, endpoint: id, version }, "submitting a dreaming job failed");
      await this.o.store.claimVersion(id, version, 0);
      await this.o.store.completeVersion(id, version, {
        status: "failed",
        examples: [],
        failures: [
          { kind: "job_failed", message: `the dreaming job could not be submitted: ${(err as Error).message}` },
        ],
      });
    }
    await this.statusChanged(id);
  }

  private async similarEndpoints(rec: EndpointRecord, vector?: Float32Array): Promise<DreamContext["similar"]> {
    if (!vector) return [];
    const hits = await this.o.vectors.nearest(vector, SIMILAR_CONTEXT + 1).catch(() => []);
    const out: DreamContext["similar"] = [];
    for (const h of hits) {
      if (h.id === rec.id || h.similarity < SIMILAR_MIN || out.length >= SIMILAR_CONTEXT) continue;
      const other = await this.o.store.get(h.id, { versions: false });
      const served = other?.versions.find((v) => v.version === other.servedVersion);
      if (other && served) out.push({ endpoint: other, version: served, similarity: h.similarity });
    }
    return out;
  }

  // --- validation --------------------------------------------------------------------------------

  private jobFinished(job: JobRecord): void {
    const id = job.spec.labels?.[ENDPOINT_ID_LABEL];
    const version = Number(job.spec.labels?.[ENDPOINT_VERSION_LABEL]);
    if (!id || !Number.isInteger(version)) return;
    this.track(this.validateVersion(id, version, job));
  }

  private track(p: Promise<void>): void {
    const tracked = p.catch((err: unknown) => this.o.logger?.error({ err }, "validating a dreamed endpoint failed"));
    this.validations.add(tracked);
    void tracked.finally(() => this.validations.delete(tracked));
  }

  private async validateVersion(id: string, version: number, job: JobRecord): Promise<void> {
    if (!(await this.o.store.claimVersion(id, version, VALIDATING_STALE_MS))) return;
    await this.statusChanged(id);
    const rec = await this.o.store.get(id, { versions: false });
    if (!rec) return;
    // onJobFinished hands over the record as it was stored, with the collected files.
    const full = job.outputFiles !== undefined || job.status !== "succeeded" ? job : await this.o.jobs.get(job.id);
    const result = await this.o.validator.validate(rec, full, this.shutdown.signal);
    if (this.shutdown.signal.aborted) return; // left VALIDATING: the next start's sweep validates again
    if (await this.o.store.completeVersion(id, version, result)) {
      this.o.logger?.info(
        {
          endpoint: id,
          version,
          status: result.status,
          failures: result.status === "failed" ? result.failures.length : 0,
        },
        "dreamed endpoint validated",
      );
      await this.statusChanged(id);
    }
  }

  // --- reads ---------------------------------------------------------------------------------------

  async get(id: string): Promise<EndpointRecord> {
    if (!id) throw new GatewayError("invalid_argument", "endpoint_id is required", { param: "endpoint_id" });
    const rec = await this.o.store.get(id, { versions: true });
    if (!rec) throw notFound(id);
    return rec;
  }

  async list(q: ListEndpointsQuery): Promise<{ endpoints: EndpointRecord[]; nextPageToken: string }> {
    const pageSize = q.pageSize === 0 ? DEFAULT_PAGE : Math.min(q.pageSize, MAX_PAGE);
    const filters = { statuses: q.statuses, method: q.method.toUpperCase(), labels: q.labels };
    if (q.minSimilarity < 0 || q.minSimilarity > 1)
      throw new GatewayError("invalid_argument", "min_similarity must be between 0 and 1", { param: "min_similarity" });
    if (!q.query.trim()) {
      const page = await this.o.store.list({ ...filters, pageSize, pageToken: q.pageToken });
      return { endpoints: await this.o.store.attachShownVersions(page.items), nextPageToken: page.nextPageToken };
    }
    const offset = decodeOffset(q.pageToken);
    const embedding = await this.o.vectors.embed(q.query, "query");
    if (!embedding.ok)
      throw new GatewayError("unavailable", `cannot rank endpoints by similarity: ${embedding.reason}`, {
        code: "embeddings_unavailable",
      });
    const hits = (await this.o.vectors.nearest(embedding.vector, MAX_RANKED, filters.method || undefined)).filter(
      (h) => h.similarity >= q.minSimilarity,
    );
    const similarity = new Map(hits.map((h) => [h.id, h.similarity]));
    const records = await this.o.store.filterIds([...similarity.keys()], filters);
    const ranked = records
      .map((e) => ({ ...e, similarity: similarity.get(e.id) ?? 0 }))
      .sort((a, b) => b.similarity - a.similarity || a.id.localeCompare(b.id));
    const page = await this.o.store.attachShownVersions(ranked.slice(offset, offset + pageSize));
    return { endpoints: page, nextPageToken: offset + pageSize < ranked.length ? encodeOffset(offset + pageSize) : "" };
  }

  /** The record now, then after every status change; ends when deleted (or settled, if asked). */
  async *watch(id: string, untilSettled: boolean, caller: AbortSignal): AsyncGenerator<EndpointRecord> {
    const server = this.o.shutdown;
    const signal = server ? AbortSignal.any([caller, server]) : caller;
    let rec = await this.get(id);
    let key = watchKey(rec);
    yield rec;
    while (!(untilSettled && SETTLED_STATUSES.has(rec.status))) {
      await this.nextChange(id, signal);
      if (server?.aborted) throw server.reason;
      if (signal.aborted) return;
      const now = await this.o.store.get(id, { versions: true });
      if (!now) return;
      rec = now;
      if (watchKey(rec) === key) continue;
      key = watchKey(rec);
      yield rec;
    }
  }

  private nextChange(id: string, signal: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.changes.off(id, done);
        signal.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, WATCH_POLL_MS);
      this.changes.on(id, done);
      signal.addEventListener("abort", done, { once: true });
    });
  }

  // --- DeleteEndpoint --------------------------------------------------------------------------------

  async delete(id: string): Promise<void> {
    if (!id) throw new GatewayError("invalid_argument", "endpoint_id is required", { param: "endpoint_id" });
    const rec = await this.o.store.delete(id);
    if (!rec) throw notFound(id);
    await this.o.vectors
      .delete(id)
      .catch((err: unknown) => this.o.logger?.warn({ err, endpoint: id }, "deleting an endpoint's vector failed"));
    if (rec.jobId && DREAMING_STATUSES.has(rec.status))
      await this.o.jobs.cancel(rec.jobId, `endpoint ${id} was deleted`).catch(() => undefined);
    this.changes.emit(id);
  }

  // --- status events and callbacks -----------------------------------------------------------------------

  private async statusChanged(id: string): Promise<void> {
    this.changes.emit(id);
    const rec = await this.o.store.get(id, { versions: false });
    if (!rec?.callbackUrl || !this.o.callbacks) return;
    const callbacks = this.o.callbacks;
    const event = `endpoint.${rec.status}`;
    const payload = this.o.publicJson(rec);
    // One delivery at a time per endpoint: a receiver sees DREAMING before READY even across retries.
    const previous = this.deliveries.get(id) ?? Promise.resolve();
    const next = previous.then(async () => {
      await callbacks.deliver(
        rec.callbackUrl,
        event,
        payload,
        (a) => this.o.store.appendCallbackAttempt(id, a).catch(() => undefined),
        this.shutdown.signal,
      );
    });
    this.deliveries.set(id, next);
    void next.finally(() => {
      if (this.deliveries.get(id) === next) this.deliveries.delete(id);
    });
  }

  // --- the sweep: expiry, refresh ahead, recovery, embedding backfill ---------------------------------------

  sweep(): Promise<void> {
    this.sweeping ??= this.runSweep().finally(() => (this.sweeping = undefined));
    return this.sweeping;
  }

  private async runSweep(): Promise<void> {
    try {
      const refresh = this.o.refreshAheadMs > 0;
      for (const id of await this.o.store.expireDue(this.o.refreshAheadMs, refresh)) {
        if (refresh) {
          const rec = await this.o.store.get(id, { versions: false });
          const v = rec && (await this.o.store.startVersion(id, rec.latestVersion, "stale", ""));
          if (v) {
            await this.submitDream(id, v);
            continue;
          }
        }
        await this.statusChanged(id);
      }
      for (const open of await this.o.store.openVersions(RECOVERY_AFTER_MS)) {
        if (!open.jobId) await this.submitDream(open.id, open.version);
        else if (open.jobFinal)
          this.track(this.validateVersion(open.id, open.version, await this.o.jobs.get(open.jobId)));
      }
      await this.backfillEmbeddings();
    } catch (err) {
      if (!this.shutdown.signal.aborted) this.o.logger?.warn({ err }, "the dreamed-endpoint sweep failed");
    }
  }

  private async backfillEmbeddings(): Promise<void> {
    const probe = await this.o.vectors.embed("probe", "document");
    if (!probe.ok) return;
    for (const e of await this.o.store.unembedded(probe.model, 50)) {
      const emb = await this.o.vectors.embed(e.description, "document");
      if (!emb.ok) return;
      await this.storeVector(e, emb.vector, emb.model);
    }
  }

  async close(): Promise<void> {
    clearInterval(this.sweepTimer);
    this.unsubscribe();
    this.shutdown.abort();
    await Promise.allSettled([...this.validations, this.sweeping, ...this.deliveries.values()]);
  }
}

function isExpired(rec: EndpointRecord, now = Date.now()): boolean {
  return rec.status === "expired" || (rec.expiresAt !== undefined && rec.expiresAt.getTime() <= now);
}

/** Whether a served endpoint should be marked stale in an answer. */
export function isStale(rec: EndpointRecord): boolean {
  return rec.status === "stale" || isExpired(rec);
}

const normalise = (s: string): string => s.trim().toLowerCase().replace(/\s+/g, " ");
const clip = (s: string, n = 80): string => (s.length > n ? `${s.slice(0, n)}...` : s);
const watchKey = (e: EndpointRecord): string => `${e.status}/${e.latestVersion}/${e.servedVersion}/${e.jobId}`;

function encodeOffset(offset: number): string {
  return Buffer.from(JSON.stringify({ o: offset })).toString("base64url");
}

function decodeOffset(token: string): number {
  if (!token) return 0;
  try {
    const v = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as { o?: unknown };
    if (typeof v.o === "number" && Number.isInteger(v.o) && v.o >= 0) return v.o;
  } catch {
    // fall through
  }
  throw new GatewayError("invalid_argument", "page_token is not a token this server issued", { param: "page_token" });
}
