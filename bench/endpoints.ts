/**
 * bench/endpoints: what dreamed endpoints (src/endpoints/) cost per call once dreamed. See bench/README.md.
 *
 *   npx tsx bench/endpoints.ts [--json out.json] [--quick] [--endpoints N] [--hits N] [--calls N] [--keep]
 *
 * One agentgate built with createAgentgate() in this process (as test/support/gateway-harness.ts does)
 * over PGlite on disk in a temp DATA_DIR (the default embedded database, with pgvector), the Ollama
 * double as its own process for embeddings (`nomic-embed-text`: the double's 768-d bag-of-words
 * hashing vectors), the fake Codex CLI (test/doubles/fake-codex.mjs) for dreams. Clients: connect-node
 * over HTTP/1.1 (clients/index.ts) and a plain keep-alive node:http client for /dream/... .
 *
 * 1. Cache-hit DreamEndpoint latency with N stored endpoints (default 10 000): the endpoints and their
 *    READY version 1 rows are inserted with SQL, their descriptions embedded through the double's
 *    /api/embed (OllamaEmbedder, batches of 32) and upserted into the gateway's collection
 *    (`endpoints_nomic_embed_text`, same point shape as EndpointVectors.upsert) 500 per statement, then
 *    `optimize()` builds the HNSW index (>= 10 000 rows). Then DreamEndpoint with a near-duplicate
 *    description of a random stored endpoint (one word changed: every call must be a cache hit),
 *    interleaved with two baselines on the same gateway: Health.Check (no I/O) and GetEndpoint of one id
 *    (the two reads a hit ends with). Once as the bulk load leaves the database, once after ANALYZE.
 *    Components, timed in this process on the same objects: the embedding call, the route-filtered
 *    vector query (EndpointVectors.onRoute), and the endpoint reads; plus the query plan.
 *    For information: a dissimilar description on a taken route (answered already_exists).
 * 2. Invocation overhead of a trivial node handler (echoes the body), dreamed for real through the fake
 *    codex twice (ENDPOINT_SANDBOX=bwrap, then =none on a second gateway over the same database, so one
 *    gateway serves both): `POST /dream/bench/echo-<driver>` p50/p99, interleaved with the baseline
 *    `node handler.js` spawned directly with the same stdin (no sandbox, no HTTP).
 *
 * Progress goes to stderr; tables to stdout, whose last line is every figure as JSON unless --json.
 */
import { spawn } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { Writable } from "node:stream";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { create, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { createAgentgateClients, EndpointStatus, type AgentgateClients } from "../clients/index.js";
import { DreamEndpointResponseSchema } from "../gen/agentgate/v1/endpoint_service_pb.js";
import { createAgentgate, type Agentgate } from "../src/agentgate.js";
import { pbEndpoint } from "../src/rpc/endpoint-convert.js";
import { loadConfig } from "../src/config/config.js";
import { EndpointStore } from "../src/endpoints/endpoint-store.js";
import { EndpointVectors } from "../src/endpoints/endpoint-vectors.js";
import { sha256, DEFAULT_HANDLER_LIMITS } from "../src/endpoints/handler-runner.js";
import { createLogger } from "../src/observability/logger.js";
import { OllamaEmbedder } from "../src/search/embeddings.js";
import { collectionName, VectorTargetProvider } from "../src/search/index/vector-target.js";
import { PgvectorStore } from "../src/search/vectors/pgvector-store.js";
import { openDatabase, type Database } from "../src/storage/database.js";
import { newId } from "../src/util/ids.js";
import { writeFakeCodexScript } from "../test/doubles/fake-codex-files.js";
import { jsonPostTarget } from "./lib/http-client.js";
import { childEnv, spawnChild, withTimeout, type Child } from "./lib/processes.js";
import { round3, roundSummary, signedMs, summarize, table, type Summary } from "./lib/stats.js";

const ROOT = path.resolve(import.meta.dirname, "..");
const FAKE = fileURLToPath(new URL("../test/doubles/fake-codex.mjs", import.meta.url));
const EMBED_MODEL = "nomic-embed-text";

const { values: args } = parseArgs({
  options: {
    json: { type: "string" },
    quick: { type: "boolean", default: false },
    endpoints: { type: "string" },
    hits: { type: "string" },
    calls: { type: "string" },
    keep: { type: "boolean", default: false },
  },
});
const quick = args.quick!;
const int = (v: string | undefined, def: number) => (v === undefined ? def : Math.max(1, Number.parseInt(v, 10)));
const ENDPOINTS = int(args.endpoints, quick ? 2_000 : 10_000);
const HITS = int(args.hits, quick ? 60 : 300);
const HITS_ANALYZED = Math.max(20, Math.round(HITS / 2));
const CALLS = int(args.calls, quick ? 40 : 200);
const WARMUP = quick ? 5 : 15;
const COMPONENT_SAMPLES = quick ? 40 : 150;
const REFUSED = quick ? 5 : 20;

const log = (s = "") => process.stderr.write(`${s}\n`);
const out = (s = "") => process.stdout.write(`${s}\n`);
const load = () => os.loadavg().map((x) => Math.round(x * 100) / 100);
const f = (x: number, d = 2) => (Number.isNaN(x) ? "-" : x.toFixed(d));

// --- descriptions: deterministic, ~18 words, distinct enough that routes do not collide in meaning ---

const VERBS = ["Return", "Compute", "List", "Summarise", "Validate", "Convert", "Rank", "Merge", "Split", "Count"];
const ADJ = ["weekly", "normalised", "top", "pending", "archived", "visible", "signed", "sorted", "unique", "recent"];
const NOUNS = [
  "invoices",
  "orders",
  "shipments",
  "tickets",
  "sensors",
  "readings",
  "users",
  "sessions",
  "payments",
  "refunds",
  "coupons",
  "parcels",
  "flights",
  "bookings",
  "recipes",
  "playlists",
  "tracks",
  "albums",
  "reviews",
  "comments",
  "articles",
  "authors",
  "repositories",
  "commits",
  "builds",
  "deployments",
  "alerts",
  "metrics",
  "dashboards",
  "reports",
  "warehouses",
  "suppliers",
  "products",
  "categories",
  "carts",
  "wishlists",
  "courses",
  "lessons",
  "students",
  "grades",
];
const TAILS = [
  "country",
  "currency",
  "timezone",
  "status",
  "owner",
  "region",
  "priority",
  "language",
  "vendor",
  "team",
];
const pick = <T>(xs: readonly T[], i: number): T => xs[i % xs.length]!;

interface Seeded {
  id: string;
  method: "GET" | "POST";
  path: string;
  description: string;
}

function seeded(i: number): Seeded {
  const n1 = pick(NOUNS, i);
  const n2 = pick(NOUNS, Math.floor(i / NOUNS.length) + 7);
  const adj = pick(ADJ, Math.floor(i / 3));
  const verb = pick(VERBS, Math.floor(i / 7));
  const tail = pick(TAILS, Math.floor(i / 11));
  const tail2 = pick(TAILS, Math.floor(i / 13) + 3);
  return {
    id: newId("ept_"),
    method: i % 2 ? "POST" : "GET",
    path: `/bench/r${i}/${n1}`,
    description:
      `${verb} the ${adj} ${n1} of one of the ${n2} grouped by ${tail} and filtered by ${tail2}, ` +
      `with totals for batch number ${i} and its page cursor`,
  };
}

/** The same request in other words: one word swapped (bag-of-words similarity ~0.95, over the 0.9 threshold). */
const nearDuplicate = (d: string): string => d.replace(/^(\w+) the /, (_m, v: string) => `${v} all the `);

/** The echo handler takes and gives the same object. */
const ECHO_SCHEMA = {
  type: "object",
  required: ["message", "n"],
  properties: { message: { type: "string" }, n: { type: "integer" } },
};

const ECHO_OPERATION = {
  summary: "Echo the body",
  requestBody: {
    required: true,
    content: {
      "application/json": {
        schema: ECHO_SCHEMA,
      },
    },
  },
  responses: {
    "200": {
      description: "The same object",
      content: {
        "application/json": {
          schema: ECHO_SCHEMA,
        },
      },
    },
  },
};
const ECHO_HANDLER = `const input = JSON.parse(require("fs").readFileSync(0, "utf8"));
process.stdout.write(JSON.stringify(input.body));
`;
const ECHO_BODY = { message: "hello from bench/endpoints", n: 42 };

// --- setup ---

async function populate(
  db: Database,
  vectors: VectorTargetProvider,
  n: number,
): Promise<{ rows: Seeded[]; insertS: number; embedS: number; upsertS: number; optimizeS: number; hnsw: boolean }> {
  const rows = Array.from({ length: n }, (_, i) => seeded(i));
  const handler = {
    runtime: "node",
    entrypoint: "handler.js",
    source: ECHO_HANDLER,
    sha256: sha256(ECHO_HANDLER),
    timeoutMs: 10_000,
    limits: DEFAULT_HANDLER_LIMITS,
    sandbox: "bwrap",
  };
  let t = performance.now();
  for (let i = 0; i < rows.length; i += 1000) {
    const b = rows.slice(i, i + 1000);
    await db.transaction(async (tx) => {
      await tx.query(
        `INSERT INTO endpoints (id, method, path, path_key, description, status, served_version, latest_version,
            model, ttl_ms, expires_at, embedding_model, created_at, updated_at)
         SELECT id, method, path, path, description, 'ready', 1, 1, '', 604800000, now() + interval '7 days', $5, now(), now()
           FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS t(id, method, path, description)`,
        [b.map((r) => r.id), b.map((r) => r.method), b.map((r) => r.path), b.map((r) => r.description), EMBED_MODEL],
      );
      await tx.query(
        `INSERT INTO endpoint_versions (endpoint_id, version, status, description, operation, handler, examples,
            created_at, updated_at, completed_at)
         SELECT id, 1, 'ready', description, $3::jsonb, $4::jsonb, '[]'::jsonb, now(), now(), now()
           FROM unnest($1::text[], $2::text[]) AS t(id, description)`,
        [b.map((r) => r.id), b.map((r) => r.description), JSON.stringify(ECHO_OPERATION), JSON.stringify(handler)],
      );
    });
  }
  const insertS = (performance.now() - t) / 1000;
  log(`  inserted ${n} endpoints + versions in ${f(insertS, 1)} s`);
  const target = await vectors.get();
  if (!target) throw new Error(`no vector target: ${vectors.unavailableReason}`);
  t = performance.now();
  const emb = await target.embedder.embedDocuments(rows.map((r) => r.description));
  if (emb.status !== "ok") throw new Error(`embedding failed: ${emb.message}`);
  const embedS = (performance.now() - t) / 1000;
  log(`  embedded ${n} descriptions through the double in ${f(embedS, 1)} s`);
  t = performance.now();
  // The point shape of EndpointVectors.upsert: root = method, path = path key without its leading "/".
  await target.collection.upsert(
    rows.map((r, i) => ({
      id: r.id,
      vector: emb.vectors[i]!,
      root: r.method,
      path: r.path.replace(/^\/+/, ""),
      payload: { path_key: r.path },
    })),
  );
  const upsertS = (performance.now() - t) / 1000;
  log(`  upserted ${n} vectors in ${f(upsertS, 1)} s (load ${load().join(" ")})`);
  t = performance.now();
  await target.collection.optimize();
  const optimizeS = (performance.now() - t) / 1000;
  const idx = await db.query("SELECT 1 FROM pg_indexes WHERE indexname = $1", [
    `vec_${collectionName(EMBED_MODEL, "endpoints")}_hnsw`,
  ]);
  const hnsw = idx.rows.length > 0;
  log(`  optimize(): ${f(optimizeS, 1)} s, HNSW index ${hnsw ? "built" : "not built (below 10 000 rows)"}`);
  return { rows, insertS, embedS, upsertS, optimizeS, hnsw };
}

function gatewayConfig(dataDir: string, upstream: string, sandbox: "bwrap" | "none", searchRoot: string) {
  return loadConfig({
    BIND: "127.0.0.1:0",
    UPSTREAM: upstream,
    DATA_DIR: dataDir,
    LOG_LEVEL: "warn",
    SHUTDOWN_GRACE_MS: "500",
    SEARCH_WATCH: "false",
    SEARCH_ROOTS: searchRoot,
    CODEX_BIN: FAKE,
    ENDPOINT_SANDBOX: sandbox,
  });
}

const stderrSink = new Writable({
  write(chunk: Buffer, _enc, done) {
    process.stderr.write(chunk);
    done();
  },
});

async function dreamEcho(ag: AgentgateClients, driver: string): Promise<{ id: string; ms: number }> {
  const t = performance.now();
  const { endpoint } = await ag.endpoints.dreamEndpoint({
    method: "POST",
    path: `/bench/echo-${driver}`,
    description: `Echo the JSON request body back unchanged, for measuring the ${driver} sandbox overhead`,
  });
  let last = endpoint!;
  for await (const frame of ag.endpoints.watchEndpoint(
    { endpointId: endpoint!.id, untilSettled: true },
    { signal: AbortSignal.timeout(60_000) },
  ))
    last = frame.endpoint!;
  if (last.status !== EndpointStatus.READY)
    throw new Error(
      `echo endpoint (${driver}) did not become READY: ${EndpointStatus[last.status]} ${JSON.stringify(last.failureReasons)}`,
    );
  return { id: last.id, ms: performance.now() - t };
}

// --- 1. cache hits ---

interface CacheFigures {
  state: string;
  calls: number;
  healthMs: Summary;
  getEndpointMs: Summary;
  cacheHitMs: Summary;
  ratioP50VsGet: number;
  ratioP50VsHealth: number;
  components: Record<string, Summary>;
  plan: string[];
}

async function cacheHits(
  state: string,
  n: number,
  ag: AgentgateClients,
  rows: Seeded[],
  store: EndpointStore,
  ev: EndpointVectors,
  db: Database,
  table_: string,
  gate: Agentgate,
): Promise<CacheFigures> {
  const fixedId = rows[0]!.id;
  let seed = state === "as loaded" ? 1 : 2;
  const rnd = () => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed / 2 ** 32;
  };
  const sample = () => rows[Math.floor(rnd() * rows.length)]!;
  const health: number[] = [];
  const get: number[] = [];
  const hit: number[] = [];
  let similarityMin = 1;
  for (let i = 0; i < n + WARMUP; i++) {
    const r = sample();
    const order = i % 3;
    for (let k = 0; k < 3; k++) {
      const which = (order + k) % 3;
      const t = performance.now();
      if (which === 0) {
        await ag.health.check({});
        if (i >= WARMUP) health.push(performance.now() - t);
      } else if (which === 1) {
        await ag.endpoints.getEndpoint({ endpointId: fixedId });
        if (i >= WARMUP) get.push(performance.now() - t);
      } else {
        const { endpoint } = await ag.endpoints.dreamEndpoint({
          method: r.method,
          path: r.path,
          description: nearDuplicate(r.description),
        });
        const ms = performance.now() - t;
        if (!endpoint?.cacheHit || endpoint.id !== r.id)
          throw new Error(`not a cache hit for ${r.id} (${r.method} ${r.path}): similarity ${endpoint?.similarity}`);
        similarityMin = Math.min(similarityMin, endpoint.similarity);
        if (i >= WARMUP) hit.push(ms);
      }
    }
    if ((i + 1) % 100 === 0) log(`  ${state}: ${i + 1}/${n + WARMUP} rounds`);
  }
  log(`  ${state}: every DreamEndpoint was a cache hit (lowest similarity ${similarityMin.toFixed(3)})`);

  // Components of the same lookups, in this process, on the same database.
  const comp: Record<string, number[]> = {
    "catalog.dream(), hit, no RPC": [],
    "catalog.get(), no RPC": [],
    "pbEndpoint() + toBinary() of the answer": [],
    "embed (double /api/embed)": [],
    "onRoute vector query": [],
    "  same SQL without the SET LOCAL transaction": [],
    idByRoute: [],
    "get(versions: false)": [],
    "get(versions: true)": [],
  };
  for (let i = 0; i < COMPONENT_SAMPLES; i++) {
    const r = sample();
    let t = performance.now();
    const rec = await gate.endpoints.catalog.dream({
      method: r.method,
      path: r.path,
      description: nearDuplicate(r.description),
      examples: [],
      callbackUrl: "",
      force: false,
      model: "",
      labels: {},
      requestId: "",
    });
    comp["catalog.dream(), hit, no RPC"]!.push(performance.now() - t);
    if (!rec.cacheHit) throw new Error(`catalog.dream: not a hit for ${r.id}`);
    t = performance.now();
    toBinary(DreamEndpointResponseSchema, create(DreamEndpointResponseSchema, { endpoint: pbEndpoint(rec, true) }));
    comp["pbEndpoint() + toBinary() of the answer"]!.push(performance.now() - t);
    t = performance.now();
    await gate.endpoints.catalog.get(rows[0]!.id);
    comp["catalog.get(), no RPC"]!.push(performance.now() - t);
    t = performance.now();
    const e = await ev.embed(nearDuplicate(r.description), "document");
    comp["embed (double /api/embed)"]!.push(performance.now() - t);
    if (!e.ok) throw new Error(e.reason);
    t = performance.now();
    const h = await ev.onRoute(e.vector, r.method, r.path);
    comp["onRoute vector query"]!.push(performance.now() - t);
    if (h?.id !== r.id) throw new Error(`onRoute missed ${r.id}`);
    t = performance.now();
    await db.query(routeSql(table_), routeParams(e.vector, r));
    comp["  same SQL without the SET LOCAL transaction"]!.push(performance.now() - t);
    t = performance.now();
    await store.idByRoute(r.method, r.path);
    comp.idByRoute!.push(performance.now() - t);
    t = performance.now();
    await store.get(r.id, { versions: false });
    comp["get(versions: false)"]!.push(performance.now() - t);
    t = performance.now();
    await store.get(r.id, { versions: true });
    comp["get(versions: true)"]!.push(performance.now() - t);
  }
  // The plan of the cache lookup's vector query (the SQL of PgvectorCollection.query with root/path filters).
  const r = rows[7]!;
  const e = await ev.embed(nearDuplicate(r.description), "document");
  if (!e.ok) throw new Error(e.reason);
  const plan = await db.transaction(async (tx) => {
    await tx.query("SET LOCAL hnsw.ef_search = 100");
    await tx.query("SET LOCAL hnsw.iterative_scan = strict_order");
    const res = await tx.query<{ "QUERY PLAN": string }>(
      `EXPLAIN (ANALYZE, COSTS OFF) ${routeSql(table_)}`,
      routeParams(e.vector, r),
    );
    return res.rows
      .map((x) => x["QUERY PLAN"].replace(/'\[[^\]]*\]'/g, "'[query vector]'"))
      .filter((l) => !/^\s*(Buffers|Index Searches|Heap Blocks|Sort Method)/.test(l));
  });
  const s = (xs: number[]) => summarize(xs);
  const get50 = s(get).p50;
  const health50 = s(health).p50;
  const hit50 = s(hit).p50;
  return {
    state,
    calls: n,
    healthMs: s(health),
    getEndpointMs: s(get),
    cacheHitMs: s(hit),
    ratioP50VsGet: hit50 / get50,
    ratioP50VsHealth: hit50 / health50,
    components: Object.fromEntries(Object.entries(comp).map(([k, v]) => [k, s(v)])),
    plan,
  };
}

/** The SQL PgvectorCollection.query runs for EndpointVectors.onRoute (limit 5, root and path prefix). */
function routeSql(table_: string): string {
  const q = `$1::vector(768)`;
  return (
    `SELECT id, root, path, payload, 1 - (embedding <=> ${q}) AS score FROM ${table_} ` +
    `WHERE root = $3 AND (path = $4 OR starts_with(path, $5)) ORDER BY embedding <=> ${q} LIMIT $2`
  );
}

function routeParams(v: Float32Array, r: Seeded): unknown[] {
  const lit = `[${Array.from(v, (x) => x.toPrecision(9)).join(",")}]`;
  return [lit, 5, r.method, r.path.slice(1), `${r.path.slice(1)}/`];
}

async function refused(ag: AgentgateClients, rows: Seeded[], ev: EndpointVectors): Promise<Record<string, Summary>> {
  const rpc: number[] = [];
  const query: number[] = [];
  for (let i = 0; i < REFUSED; i++) {
    const r = rows[(i * 7919) % rows.length]!;
    const other = "Translate a paragraph of English prose into French poetry with rhymes";
    const t = performance.now();
    const err = await ag.endpoints
      .dreamEndpoint({ method: r.method, path: r.path, description: other })
      .then(() => undefined)
      .catch((e: unknown) => e);
    rpc.push(performance.now() - t);
    if (!(err instanceof ConnectError) || err.code !== Code.AlreadyExists)
      throw new Error(`expected already_exists for ${r.path}, got ${String(err)}`);
    const e = await ev.embed(other, "document");
    if (!e.ok) throw new Error(e.reason);
    const t2 = performance.now();
    await ev.onRoute(e.vector, r.method, r.path);
    query.push(performance.now() - t2);
  }
  return { rpc: summarize(rpc), onRoute: summarize(query) };
}

// --- 2. invocation ---

interface InvokeFigures {
  calls: number;
  direct: Summary;
  byDriver: Record<string, Summary>;
  dreamMs: Record<string, number>;
}

function spawnDirect(file: string, stdin: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const t = performance.now();
    // The handler's environment (handler-runner.ts): the inherited one can cost far more (NODE_EXTRA_CA_CERTS
    // makes every node start parse that bundle, +45 ms here).
    const c = spawn(process.execPath, [file], {
      cwd: path.dirname(file),
      env: { HOME: "/tmp", PATH: "/usr/bin:/bin" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let outText = "";
    c.stdout.setEncoding("utf8").on("data", (d: string) => (outText += d));
    c.stderr.resume();
    c.once("error", reject);
    c.once("close", (code) => {
      const ms = performance.now() - t;
      if (code !== 0 || JSON.parse(outText).n !== ECHO_BODY.n)
        reject(new Error(`direct handler: exit ${code}, ${outText}`));
      else resolve(ms);
    });
    c.stdin.end(stdin);
  });
}

async function invocations(url: string, tmp: string, dreamMs: Record<string, number>): Promise<InvokeFigures> {
  const drivers = ["bwrap", "none"];
  const targets = Object.fromEntries(
    drivers.map((d) => [d, jsonPostTarget(url, `/dream/bench/echo-${d}`, ECHO_BODY, ECHO_BODY, 4)]),
  );
  const dir = path.join(tmp, "direct");
  mkdirSync(dir);
  const file = path.join(dir, "handler.js");
  writeFileSync(file, ECHO_HANDLER);
  // What the invoker writes to the handler's stdin (HandlerInput), with the headers this client sends.
  const stdin = JSON.stringify({
    method: "POST",
    path: "/bench/echo-none",
    path_params: {},
    query: {},
    headers: {
      "content-type": "application/json",
      "content-length": String(JSON.stringify(ECHO_BODY).length),
      accept: "*/*",
      host: new URL(url).host,
      connection: "keep-alive",
    },
    body: ECHO_BODY,
  });
  const samples: Record<string, number[]> = { direct: [], bwrap: [], none: [] };
  const paths = ["direct", ...drivers];
  for (let i = 0; i < CALLS + WARMUP; i++) {
    for (let k = 0; k < paths.length; k++) {
      const p = paths[(i + k) % paths.length]!;
      let ms: number;
      if (p === "direct") ms = await spawnDirect(file, stdin);
      else {
        const t = performance.now();
        const body = JSON.parse((await targets[p]!.post()).toString("utf8")) as typeof ECHO_BODY;
        ms = performance.now() - t;
        if (body.n !== ECHO_BODY.n) throw new Error(`echo-${p} answered ${JSON.stringify(body)}`);
      }
      if (i >= WARMUP) samples[p]!.push(ms);
    }
    if ((i + 1) % 50 === 0) log(`  invocations: ${i + 1}/${CALLS + WARMUP} rounds (load ${load().join(" ")})`);
  }
  for (const t of Object.values(targets)) t.close();
  return {
    calls: CALLS,
    direct: summarize(samples.direct!),
    byDriver: { bwrap: summarize(samples.bwrap!), none: summarize(samples.none!) },
    dreamMs,
  };
}

// --- main ---

async function main(): Promise<void> {
  const t0 = Date.now();
  const loadAtStart = load();
  log(`bench/endpoints: load average ${loadAtStart.join(" ")} on ${os.cpus().length} cores, Node ${process.version}`);
  if (loadAtStart[0]! > 1)
    log(`warning: load average ${loadAtStart[0]} before the run; other work on this machine will skew the timings`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), "agentgate-bench-endpoints-"));
  chmodSync(tmp, 0o711); // the sandbox uid must traverse DATA_DIR's parents
  const dataDir = path.join(tmp, "data");
  const searchRoot = path.join(tmp, "search-root");
  mkdirSync(searchRoot);
  const scriptFile = path.join(tmp, "script.json");
  writeFakeCodexScript(scriptFile, {
    messages: ["I wrote the operation, the handler and the examples."],
    writeFiles: {
      "output/operation.json": ECHO_OPERATION,
      "output/handler.js": ECHO_HANDLER,
      "output/examples.json": [
        { description: "echo", request_body: { message: "hi", n: 1 }, response_body: { message: "hi", n: 1 } },
      ],
    },
  });
  process.env.FAKE_CODEX_SCRIPT = scriptFile;
  process.env.FAKE_CODEX_LOG = path.join(tmp, "invocations.jsonl");
  process.env.CODEX_HOME = path.join(tmp, "codex-home");

  const results: Record<string, unknown> = {
    setup: {
      node: process.version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      loadAvgAtStart: loadAtStart,
      date: new Date().toISOString(),
      quick,
      endpoints: ENDPOINTS,
      database: "PGlite on disk (temp DATA_DIR), pgvector",
    },
  };
  let ollama: Child | undefined;
  let db: Database | undefined;
  let gate: Agentgate | undefined;
  try {
    ollama = spawnChild("ollama-double", ["--import", "tsx", "test/doubles/ollama-double-main.ts"], {
      cwd: ROOT,
      env: childEnv({}),
    });
    const ollamaUrl = await withTimeout(ollama.firstLine, 30_000, "ollama double");
    db = await openDatabase({ dataDir });
    const target = new VectorTargetProvider({
      embedder: new OllamaEmbedder({ baseUrl: ollamaUrl, model: EMBED_MODEL }),
      store: new PgvectorStore(db),
      collectionPrefix: "endpoints",
    });
    const ev = new EndpointVectors(target);
    const store = new EndpointStore(db);
    const vecTable = `vec_${collectionName(EMBED_MODEL, "endpoints")}`;

    log(`\n[setup] ${ENDPOINTS} endpoints (load ${load().join(" ")})`);
    const pop = await populate(db, target, ENDPOINTS);
    results.populate = {
      endpoints: ENDPOINTS,
      insertSeconds: round3(pop.insertS),
      embedSeconds: round3(pop.embedS),
      upsertSeconds: round3(pop.upsertS),
      optimizeSeconds: round3(pop.optimizeS),
      hnsw: pop.hnsw,
    };

    log(`\n[setup] dreaming the echo endpoints through the fake codex`);
    const dreamMs: Record<string, number> = {};
    let baseUrl = "";
    for (const driver of ["bwrap", "none"] as const) {
      gate = await createAgentgate(gatewayConfig(dataDir, ollamaUrl, driver, searchRoot), {
        logger: createLogger("warn", stderrSink),
        database: db,
      });
      baseUrl = (await gate.listen()).url;
      const d = await dreamEcho(createAgentgateClients({ baseUrl, httpVersion: "1.1" }), driver);
      dreamMs[driver] = round3(d.ms);
      log(`  echo-${driver}: READY in ${f(d.ms, 0)} ms (${d.id})`);
      if (driver === "bwrap") {
        await gate.close();
        gate = undefined;
      }
    }
    const ag = createAgentgateClients({ baseUrl, httpVersion: "1.1" });

    log(`\n[1] cache-hit DreamEndpoint, ${HITS} calls, as loaded (load ${load().join(" ")})`);
    const asLoaded = await cacheHits("as loaded", HITS, ag, pop.rows, store, ev, db, vecTable, gate!);
    log(`\n[1] refused (dissimilar description on a taken route), ${REFUSED} calls`);
    const refusedFig = await refused(ag, pop.rows, ev);
    const ta = performance.now();
    await db.exec(`ANALYZE endpoints; ANALYZE endpoint_versions; ANALYZE ${vecTable};`);
    const analyzeS = (performance.now() - ta) / 1000;
    log(`\n[1] ANALYZE: ${f(analyzeS, 2)} s; ${HITS_ANALYZED} more calls (load ${load().join(" ")})`);
    const analyzed = await cacheHits("after ANALYZE", HITS_ANALYZED, ag, pop.rows, store, ev, db, vecTable, gate!);
    const refusedAnalyzed = await refused(ag, pop.rows, ev);

    log(`\n[2] invocation, ${CALLS} calls per path (load ${load().join(" ")})`);
    const inv = await invocations(baseUrl, tmp, dreamMs);

    // --- report ---
    const row = (name: string, s: Summary) => [name, String(s.n), f(s.p50), f(s.p90), f(s.p99), f(s.max)];
    for (const c of [asLoaded, analyzed]) {
      out(
        `\n## 1. Cache-hit DreamEndpoint, ${ENDPOINTS} endpoints, pgvector on PGlite (${pop.hnsw ? "HNSW" : "exact scan"}), ${c.state}, ms`,
      );
      out(
        table(
          ["RPC (connect-node, HTTP/1.1)", "n", "p50", "p90", "p99", "max"],
          [
            row("Health.Check (baseline)", c.healthMs),
            row("GetEndpoint, one id (baseline)", c.getEndpointMs),
            row("DreamEndpoint, near-duplicate (hit)", c.cacheHitMs),
          ],
        ),
      );
      out(
        `ratio hit/GetEndpoint: p50 ${f(c.ratioP50VsGet)}, p99 ${f(c.cacheHitMs.p99 / c.getEndpointMs.p99)}; ` +
          `hit/Health.Check p50 ${f(c.ratioP50VsHealth)}`,
      );
      out(`components of a hit, timed in-process on the same database (${COMPONENT_SAMPLES} samples):`);
      out(
        table(
          ["component", "n", "p50", "p90", "p99", "max"],
          Object.entries(c.components).map(([k, s]) => row(k, s)),
        ),
      );
      out(`plan of the onRoute vector query:`);
      for (const l of c.plan) out(`  ${l}`);
    }
    out(`\nrefused (dissimilar description on a taken route -> already_exists), ${REFUSED} calls, ms:`);
    out(
      table(
        ["", "n", "p50", "p90", "p99", "max"],
        [
          row("RPC, as loaded", refusedFig.rpc!),
          row("onRoute query alone, as loaded", refusedFig.onRoute!),
          row("RPC, after ANALYZE", refusedAnalyzed.rpc!),
          row("onRoute query alone, after ANALYZE", refusedAnalyzed.onRoute!),
        ],
      ),
    );
    out(
      `populate: insert ${f(pop.insertS, 1)} s, embed ${f(pop.embedS, 1)} s, upsert ${f(pop.upsertS, 1)} s, ` +
        `optimize ${f(pop.optimizeS, 1)} s (HNSW ${pop.hnsw ? "built" : "not built"}), ANALYZE ${f(analyzeS, 2)} s`,
    );

    out(`\n## 2. Invoking a trivial node handler (echo), ${CALLS} calls per path, interleaved, ms`);
    out(
      table(
        ["path", "n", "p50", "p90", "p99", "max", "p50 ratio", "p99 ratio"],
        [
          [...row("node handler.js, spawned directly (baseline)", inv.direct), "1.00", "1.00"],
          ...(["bwrap", "none"] as const).map((d) => [
            ...row(`POST /dream/bench/echo-${d} (ENDPOINT_SANDBOX=${d})`, inv.byDriver[d]!),
            f(inv.byDriver[d]!.p50 / inv.direct.p50),
            f(inv.byDriver[d]!.p99 / inv.direct.p99),
          ]),
        ],
      ),
    );
    out(
      `added p50 over the direct spawn: bwrap ${signedMs(inv.byDriver.bwrap!.p50 - inv.direct.p50, 1)} ms, none ${signedMs(inv.byDriver.none!.p50 - inv.direct.p50, 1)} ms`,
    );
    out(`dream to READY through the fake codex: bwrap ${f(dreamMs.bwrap!, 0)} ms, none ${f(dreamMs.none!, 0)} ms`);

    const cacheJson = (c: CacheFigures) => ({
      state: c.state,
      calls: c.calls,
      healthMs: roundSummary(c.healthMs),
      getEndpointMs: roundSummary(c.getEndpointMs),
      cacheHitMs: roundSummary(c.cacheHitMs),
      ratioP50VsGet: round3(c.ratioP50VsGet),
      ratioP50VsHealth: round3(c.ratioP50VsHealth),
      components: Object.fromEntries(Object.entries(c.components).map(([k, v]) => [k, roundSummary(v)])),
      plan: c.plan,
    });
    results.cacheHit = [cacheJson(asLoaded), cacheJson(analyzed)];
    results.analyzeSeconds = round3(analyzeS);
    results.refused = {
      asLoaded: { rpc: roundSummary(refusedFig.rpc!), onRoute: roundSummary(refusedFig.onRoute!) },
      afterAnalyze: { rpc: roundSummary(refusedAnalyzed.rpc!), onRoute: roundSummary(refusedAnalyzed.onRoute!) },
    };
    results.invoke = {
      calls: inv.calls,
      directMs: roundSummary(inv.direct),
      bwrapMs: roundSummary(inv.byDriver.bwrap!),
      noneMs: roundSummary(inv.byDriver.none!),
      ratioP50: {
        bwrap: round3(inv.byDriver.bwrap!.p50 / inv.direct.p50),
        none: round3(inv.byDriver.none!.p50 / inv.direct.p50),
      },
      ratioP99: {
        bwrap: round3(inv.byDriver.bwrap!.p99 / inv.direct.p99),
        none: round3(inv.byDriver.none!.p99 / inv.direct.p99),
      },
      dreamToReadyMs: dreamMs,
    };
  } finally {
    await gate?.close().catch((err: unknown) => log(`closing the gateway failed: ${String(err)}`));
    await db?.close().catch(() => undefined);
    await ollama?.stop();
    if (!args.keep) rmSync(tmp, { recursive: true, force: true });
    else log(`kept ${tmp}`);
  }
  results.seconds = Math.round((Date.now() - t0) / 1000);
  (results.setup as Record<string, unknown>).loadAvgAtEnd = load();
  out(
    `\nmachine: ${os.cpus().length} cores, Node ${process.version}, load ${loadAtStart.join(" ")} at start, ${load().join(" ")} at end`,
  );
  if (args.json) {
    writeFileSync(args.json, `${JSON.stringify(results, null, 2)}\n`);
    log(`figures written to ${args.json}`);
  }
  out(`(run took ${String(results.seconds)} s)`);
  if (!args.json) out(JSON.stringify(results));
}

main().catch((err) => {
  log(`bench failed: ${(err as Error).stack ?? String(err)}`);
  process.exit(1);
});
