/**
 * bench/completion: what agentgate adds to a chat completion, against an Ollama double that
 * answers immediately, compared with calling the double directly and with a minimal
 * pass-through Node proxy measured in the same run. See bench/README.md.
 *
 *   npx tsx bench/completion.ts [--json out.json] [--quick] [--cpu-prof] [--in-process]
 *
 * Prints tables and one verdict line per target; the last stdout line is the figures as
 * JSON unless --json <path> writes them to a file. Exits 0 once figures are printed (also
 * when a target is missed; --strict makes a miss exit 1), 1 when the bench itself fails.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import type { Client } from "@connectrpc/connect";
import { createAgentgateClients, Role, type CompletionService } from "../clients/index.js";
import { formatProfile, summarizeProfile, type CpuProfile } from "./lib/cpuprofile-top.js";
import { jsonPostTarget, type JsonPostTarget } from "./lib/http-client.js";
import { closedLoop, sequential, type LoadResult, type Op } from "./lib/load.js";
import {
  childEnv,
  freePort,
  processCpuMs,
  selfCpuMs,
  spawnChild,
  waitHealthy,
  withTimeout,
  type Child,
} from "./lib/processes.js";
import { reportFigures } from "./lib/report.js";
import { ms, round3, roundSummary, signedMs, summarize, table, type Summary } from "./lib/stats.js";

const ROOT = path.resolve(import.meta.dirname, "..");
const MODEL = "qwen3:8b";
const PROMPT = "Say hello to the benchmark in a few words.";

const { values: args } = parseArgs({
  options: {
    json: { type: "string" },
    quick: { type: "boolean", default: false },
    requests: { type: "string" },
    warmup: { type: "string" },
    rounds: { type: "string" },
    concurrency: { type: "string" },
    duration: { type: "string" },
    streams: { type: "string" },
    "log-level": { type: "string", default: "warn" },
    "cpu-prof": { type: "boolean", default: false },
    "in-process": { type: "boolean", default: false },
    "node-options": { type: "string" },
    strict: { type: "boolean", default: false },
    only: { type: "string" },
  },
});

const quick = args.quick!;
const int = (v: string | undefined, def: number) => (v === undefined ? def : Math.max(1, Number.parseInt(v, 10)));
const SEQ_N = int(args.requests, quick ? 400 : 2000);
const WARMUP = int(args.warmup, quick ? 100 : 300);
const ROUNDS = int(args.rounds, 4);
const CONC = int(args.concurrency, 32);
const LOAD_MS = int(args.duration, quick ? 1.5 : 5) * 1000;
const STREAM_N = int(args.streams, quick ? 200 : 1000);
/** Per-path time caps (ms) that keep the whole run under 90 s on 2 cores even when a path is slow. */
const LATENCY_BUDGET_MS = quick ? 2_000 : 6_000;
const STREAM_BUDGET_MS = quick ? 1_500 : 4_000;
const SECTIONS = new Set((args.only ?? "latency,throughput,streaming").split(",").map((s) => s.trim()));
if (args["in-process"]) SECTIONS.add("in-process");

const log = (s = "") => process.stderr.write(`${s}\n`);
/** CLOCK_MONOTONIC in microseconds: the clock of V8 CPU profiles in every process. */
const monoUs = () => Number(process.hrtime.bigint() / 1000n);
/** Time windows (label → [start, end] µs) in which agentgate was under a known load, for --cpu-prof. */
const profileWindows = new Map<string, [number, number]>();

interface Scenario {
  key: string;
  label: string;
  op: Op;
}

interface StreamScenario {
  key: string;
  label: string;
  op: () => Promise<{ ttfcMs: number; totalMs: number }>;
}

/**
 * Runs each scenario's warm-up, then `rounds` interleaved blocks so drift hits all of them alike.
 * Each path gets at most `budgetMs` of measuring (split over the rounds), which bounds the run when
 * a path is slow; the summaries report how many samples were taken.
 */
async function latencyRounds(scenarios: Scenario[], n: number, budgetMs: number): Promise<Map<string, number[]>> {
  const out = new Map<string, number[]>(scenarios.map((s) => [s.key, []]));
  for (const s of scenarios) await sequential(s.op, WARMUP);
  const per = Math.ceil(n / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    for (const s of scenarios) out.get(s.key)!.push(...(await sequential(s.op, per, budgetMs / ROUNDS)));
  }
  return out;
}

async function streamRounds(
  scenarios: StreamScenario[],
  n: number,
  budgetMs: number,
): Promise<Map<string, { ttfc: number[]; total: number[] }>> {
  const out = new Map(scenarios.map((s) => [s.key, { ttfc: [] as number[], total: [] as number[] }]));
  for (const s of scenarios) for (let i = 0; i < Math.min(WARMUP, 50); i++) await s.op();
  const per = Math.ceil(n / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    for (const s of scenarios) {
      const acc = out.get(s.key)!;
      const deadline = performance.now() + budgetMs / ROUNDS;
      for (let i = 0; i < per && performance.now() < deadline; i++) {
        const { ttfcMs, totalMs } = await s.op();
        acc.ttfc.push(ttfcMs);
        acc.total.push(totalMs);
      }
    }
  }
  return out;
}

function connectOps(client: Client<typeof CompletionService>) {
  const messages = [{ role: Role.USER, content: PROMPT }];
  return {
    unary: async () => {
      const r = await client.chat({ model: MODEL, messages });
      if (!r.message?.content) throw new Error("Connect Chat answered without content");
      return r;
    },
    stream: async () => {
      const t0 = performance.now();
      let ttfc = Number.NaN;
      for await (const m of client.chatStream({ model: MODEL, messages })) {
        if (Number.isNaN(ttfc) && m.contentDelta) ttfc = performance.now() - t0;
      }
      if (Number.isNaN(ttfc)) throw new Error("Connect ChatStream carried no content");
      return { ttfcMs: ttfc, totalMs: performance.now() - t0 };
    },
  };
}

async function main(): Promise<number> {
  const started = performance.now();
  const tmp = mkdtempSync(path.join(os.tmpdir(), "agentgate-bench-"));
  const profDir = path.join(tmp, "cpu-prof");
  const children: Child[] = [];
  const cleanups: (() => unknown)[] = [];
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    void Promise.allSettled(children.map((c) => c.stop())).then(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  try {
    // --- servers, each in its own process -------------------------------------------------
    const tsx = ["--import", "tsx"];
    const double = spawnChild("ollama double", [...tsx, "test/doubles/ollama-double-main.ts"], {
      cwd: ROOT,
      env: childEnv({}),
    });
    children.push(double);
    const doubleUrl = await withTimeout(double.firstLine, 30_000, "ollama double");
    const proxy = spawnChild("pass-through proxy", [...tsx, "bench/lib/passthrough-proxy.ts", doubleUrl], {
      cwd: ROOT,
      env: childEnv({}),
    });
    children.push(proxy);
    const port = await freePort();
    const gateUrl = `http://127.0.0.1:${port}`;
    // --node-options: extra flags for the agentgate process only (experiments: --max-semi-space-size=16, --import a preload).
    const extraFlags = (args["node-options"] ?? "").split(/\s+/).filter(Boolean);
    const nodeFlags = [...extraFlags, ...(args["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : [])];
    const gate = spawnChild("agentgate", [...nodeFlags, "bin/agentgate.js", "serve"], {
      cwd: ROOT,
      env: childEnv({
        BIND: `127.0.0.1:${port}`,
        UPSTREAM: doubleUrl,
        DATA_DIR: path.join(tmp, "data"),
        LOG_LEVEL: args["log-level"]!,
        MODEL,
        SHUTDOWN_GRACE_MS: "1000",
      }),
    });
    children.push(gate);
    const proxyUrl = await withTimeout(proxy.firstLine, 30_000, "pass-through proxy");
    const gateReadyMs = await waitHealthy(`${gateUrl}/healthz`, gate);
    const [load1] = os.loadavg();
    if (load1! > 1)
      log(
        `warning: load average ${load1!.toFixed(2)} on ${os.cpus().length} cores before the run; other work on this machine will skew the figures`,
      );
    log(
      `servers: double ${doubleUrl}, proxy ${proxyUrl}, agentgate ${gateUrl} (healthy after ${(gateReadyMs / 1000).toFixed(1)} s), LOG_LEVEL=${args["log-level"]}`,
    );

    // --- clients ---------------------------------------------------------------------------
    const messages = [{ role: "user", content: PROMPT }];
    const ollamaBody = { model: MODEL, messages, stream: false };
    const ollamaStream = { model: MODEL, messages, stream: true };
    const openaiBody = { model: MODEL, messages };
    const openaiStream = { model: MODEL, messages, stream: true };
    const maxSockets = Math.max(CONC, 1);
    const direct = jsonPostTarget(doubleUrl, "/api/chat", ollamaBody, ollamaStream, maxSockets);
    const viaProxy = jsonPostTarget(proxyUrl, "/api/chat", ollamaBody, ollamaStream, maxSockets);
    const rest = jsonPostTarget(gateUrl, "/v1/chat/completions", openaiBody, openaiStream, maxSockets);
    const targets: JsonPostTarget[] = [direct, viaProxy, rest];
    cleanups.push(() => targets.forEach((t) => t.close()));
    const h1 = connectOps(createAgentgateClients({ baseUrl: gateUrl, httpVersion: "1.1" }).completion);
    const h2 = connectOps(createAgentgateClients({ baseUrl: gateUrl, httpVersion: "2" }).completion);

    // Sanity: each path answers with the echo.
    for (const [name, t] of [
      ["direct", direct],
      ["proxy", viaProxy],
      ["rest", rest],
    ] as const) {
      const text = (await t.post()).toString("utf8");
      if (!text.includes("You said:")) throw new Error(`${name} answered unexpectedly: ${text.slice(0, 200)}`);
    }
    await h1.unary();
    await h2.unary();

    const latencyScenarios: Scenario[] = [
      { key: "direct", label: "(a) direct to double  POST /api/chat", op: () => direct.post() },
      { key: "proxy", label: "(b) pass-through proxy  /api/chat", op: () => viaProxy.post() },
      { key: "rest", label: "(c) agentgate REST  /v1/chat/completions", op: () => rest.post() },
      { key: "connect_h1", label: "(d) agentgate Connect Chat, HTTP/1.1", op: h1.unary },
      { key: "connect_h2", label: "(e) agentgate Connect Chat, h2c", op: h2.unary },
    ];
    const byKey = new Map(latencyScenarios.map((s) => [s.key, s]));

    const results: Record<string, unknown> = {
      bench: "completion",
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      loadAvgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
      agentgateNodeOptions: extraFlags.join(" ") || undefined,
      setup: {
        agentgate: "separate process (node bin/agentgate.js serve), PGlite in a temp DATA_DIR",
        logLevel: args["log-level"],
        double: "separate process, unscripted echo, no delays",
        proxy: "separate process, node:http + keep-alive http.Agent, pipes bodies",
        client: "this process; node:http keep-alive Agent for (a)-(c), connect-node for (d)-(e)",
        requests: SEQ_N,
        warmup: WARMUP,
        rounds: ROUNDS,
        concurrency: CONC,
        loadSeconds: LOAD_MS / 1000,
        streams: STREAM_N,
      },
    };
    const verdicts: { target: string; value: string; pass: boolean }[] = [];

    // --- sequential latency ----------------------------------------------------------------
    let lat: Map<string, Summary> | undefined;
    if (SECTIONS.has("latency")) {
      log(
        `latency: ${WARMUP} warm-up + ${SEQ_N} sequential requests per path (at most ${LATENCY_BUDGET_MS / 1000} s each), ${ROUNDS} interleaved rounds`,
      );
      const raw = await latencyRounds(latencyScenarios, SEQ_N, LATENCY_BUDGET_MS);
      lat = new Map([...raw].map(([k, v]) => [k, summarize(v)]));
      const d = lat.get("direct")!;
      const p = lat.get("proxy")!;
      const rows = latencyScenarios.map((s) => {
        const x = lat!.get(s.key)!;
        const gw = s.key !== "direct" && s.key !== "proxy";
        return [
          s.label,
          String(x.n),
          ms(x.p50),
          ms(x.p90),
          ms(x.p99),
          s.key === "direct" ? "" : signedMs(x.p50 - d.p50),
          s.key === "direct" ? "" : signedMs(x.p99 - d.p99),
          gw ? signedMs(x.p50 - p.p50) : "",
          gw ? signedMs(x.p99 - p.p99) : "",
        ];
      });
      console.log("\nNon-streaming chat, sequential latency (ms, one request at a time, keep-alive)");
      console.log(table(["path", "n", "p50", "p90", "p99", "+p50 vs a", "+p99 vs a", "+p50 vs b", "+p99 vs b"], rows));
      results.latency = Object.fromEntries(
        [...lat].map(([k, s]) => [
          k,
          {
            ...roundSummary(s),
            addedVsDirect: { p50: round3(s.p50 - d.p50), p99: round3(s.p99 - d.p99) },
            addedVsProxy: { p50: round3(s.p50 - p.p50), p99: round3(s.p99 - p.p99) },
          },
        ]),
      );
      for (const k of ["rest", "connect_h1", "connect_h2"]) {
        const added = lat.get(k)!.p50 - d.p50;
        verdicts.push({
          target: `added p50 <= 1 ms: ${byKey.get(k)!.label.slice(4)}`,
          value: `${signedMs(added)} ms (p99 ${signedMs(lat.get(k)!.p99 - d.p99)} ms)`,
          pass: added <= 1,
        });
      }
    }

    // --- throughput ------------------------------------------------------------------------
    if (SECTIONS.has("throughput")) {
      const loadKeys = ["direct", "proxy", "rest", "connect_h2"];
      log(`throughput: ${CONC} in flight, 1 s warm-up + ${LOAD_MS / 1000} s per path`);
      const load = new Map<string, LoadResult & { cpuUsPerReq: Record<string, number | undefined> }>();
      // The process in the middle of each path (none for direct), whose CPU per request is the cost of the hop.
      const hop: Record<string, Child | undefined> = { direct: undefined, proxy, rest: gate, connect_h2: gate };
      for (const k of loadKeys) {
        const s = byKey.get(k)!;
        await closedLoop(s.op, CONC, Math.min(1000, LOAD_MS));
        const w0 = monoUs();
        const cpu0 = {
          hop: processCpuMs(hop[k]?.proc.pid),
          double: processCpuMs(double.proc.pid),
          client: selfCpuMs(),
        };
        const r = await closedLoop(s.op, CONC, LOAD_MS);
        const cpu1 = {
          hop: processCpuMs(hop[k]?.proc.pid),
          double: processCpuMs(double.proc.pid),
          client: selfCpuMs(),
        };
        const per = (a: number | undefined, b: number | undefined) =>
          a === undefined || b === undefined || !r.requests ? undefined : Math.round(((b - a) * 1000) / r.requests);
        if (k !== "direct" && k !== "proxy")
          profileWindows.set(`${s.label.slice(4)} under load (${r.requests} requests)`, [w0, monoUs()]);
        if (r.errors) log(`  ${k}: ${r.errors} errors, first: ${r.firstError}`);
        load.set(k, {
          ...r,
          cpuUsPerReq: {
            hop: per(cpu0.hop, cpu1.hop),
            double: per(cpu0.double, cpu1.double),
            client: per(cpu0.client, cpu1.client),
          },
        });
      }
      const proxyRps = load.get("proxy")!.rps;
      const directRps = load.get("direct")!.rps;
      const us = (x: number | undefined) => (x === undefined ? "-" : String(x));
      console.log(
        `\nNon-streaming chat, throughput (${CONC} in flight, ${LOAD_MS / 1000} s each; CPU in µs per request, by process)`,
      );
      console.log(
        table(
          [
            "path",
            "req/s",
            "vs direct",
            "vs proxy",
            "p50 ms",
            "p99 ms",
            "errors",
            "hop CPU",
            "double CPU",
            "client CPU",
          ],
          loadKeys.map((k) => {
            const r = load.get(k)!;
            const l = summarize(r.latencies);
            return [
              byKey.get(k)!.label,
              r.rps.toFixed(0),
              (r.rps / directRps).toFixed(2),
              (r.rps / proxyRps).toFixed(2),
              ms(l.p50, 2),
              ms(l.p99, 2),
              String(r.errors),
              us(r.cpuUsPerReq.hop),
              us(r.cpuUsPerReq.double),
              us(r.cpuUsPerReq.client),
            ];
          }),
        ),
      );
      results.throughput = Object.fromEntries(
        [...load].map(([k, r]) => {
          const l = summarize(r.latencies);
          return [
            k,
            {
              rps: Math.round(r.rps),
              requests: r.requests,
              errors: r.errors,
              ratioVsDirect: round3(r.rps / directRps),
              ratioVsProxy: round3(r.rps / proxyRps),
              p50: round3(l.p50),
              p99: round3(l.p99),
              cpuUsPerRequest: r.cpuUsPerReq,
            },
          ];
        }),
      );
      const proxyCpu = load.get("proxy")!.cpuUsPerReq.hop;
      for (const k of ["rest", "connect_h2"]) {
        const ratio = load.get(k)!.rps / proxyRps;
        const cpu = load.get(k)!.cpuUsPerReq.hop;
        const cpuNote =
          cpu && proxyCpu ? `; CPU/request ${cpu} vs ${proxyCpu} µs = ${(cpu / proxyCpu).toFixed(1)}x the proxy's` : "";
        verdicts.push({
          target: `throughput >= 0.60 x proxy: ${byKey.get(k)!.label.slice(4)}`,
          value: `${ratio.toFixed(2)} (${load.get(k)!.rps.toFixed(0)} vs ${proxyRps.toFixed(0)} req/s${cpuNote})`,
          pass: ratio >= 0.6,
        });
      }
    }

    // --- streaming: time to first chunk ----------------------------------------------------
    if (SECTIONS.has("streaming")) {
      const streamScenarios: StreamScenario[] = [
        { key: "direct", label: "direct NDJSON  /api/chat", op: () => direct.stream() },
        { key: "proxy", label: "proxy NDJSON  /api/chat", op: () => viaProxy.stream() },
        { key: "rest_sse", label: "agentgate REST SSE  /v1/chat/completions", op: () => rest.stream() },
        { key: "connect_h1_stream", label: "agentgate Connect ChatStream, HTTP/1.1", op: h1.stream },
        { key: "connect_h2_stream", label: "agentgate Connect ChatStream, h2c", op: h2.stream },
      ];
      log(
        `streaming: ${STREAM_N} sequential streams per path (at most ${STREAM_BUDGET_MS / 1000} s each; 3 content chunks + done per stream)`,
      );
      const raw = await streamRounds(streamScenarios, STREAM_N, STREAM_BUDGET_MS);
      const sum = new Map([...raw].map(([k, v]) => [k, { ttfc: summarize(v.ttfc), total: summarize(v.total) }]));
      const d = sum.get("direct")!;
      console.log("\nStreaming chat, time to first content chunk (ms, sequential)");
      console.log(
        table(
          ["path", "n", "TTFC p50", "TTFC p99", "+p50 vs direct", "+p99 vs direct", "stream end p50"],
          streamScenarios.map((s) => {
            const x = sum.get(s.key)!;
            const base = s.key === "direct";
            return [
              s.label,
              String(x.ttfc.n),
              ms(x.ttfc.p50),
              ms(x.ttfc.p99),
              base ? "" : signedMs(x.ttfc.p50 - d.ttfc.p50),
              base ? "" : signedMs(x.ttfc.p99 - d.ttfc.p99),
              ms(x.total.p50),
            ];
          }),
        ),
      );
      results.streaming = Object.fromEntries(
        [...sum].map(([k, x]) => [
          k,
          {
            ttfc: roundSummary(x.ttfc),
            total: roundSummary(x.total),
            ttfcOverhead: { p50: round3(x.ttfc.p50 - d.ttfc.p50), p99: round3(x.ttfc.p99 - d.ttfc.p99) },
          },
        ]),
      );
    }

    // --- optional: agentgate in this process (shares the client's event loop) --------------
    if (SECTIONS.has("in-process")) {
      log("in-process: agentgate built with createAgentgate() in the load generator's process");
      const { createAgentgate } = await import("../src/agentgate.js");
      const { loadConfig } = await import("../src/config/config.js");
      const { openDatabase } = await import("../src/storage/database.js");
      const db = await openDatabase({ dataDir: ":memory:", memory: true });
      const config = loadConfig({
        BIND: "127.0.0.1:0",
        UPSTREAM: doubleUrl,
        DATA_DIR: path.join(tmp, "unused"),
        LOG_LEVEL: args["log-level"]!,
        MODEL,
      });
      const inproc = await createAgentgate(config, { database: db });
      const { url } = await inproc.listen();
      cleanups.push(async () => {
        await inproc.close();
        await db.close();
      });
      const restIn = jsonPostTarget(url, "/v1/chat/completions", openaiBody, openaiStream);
      targets.push(restIn);
      const h2In = connectOps(createAgentgateClients({ baseUrl: url, httpVersion: "2" }).completion);
      const raw = await latencyRounds(
        [
          { key: "direct", label: "direct", op: () => direct.post() },
          { key: "rest", label: "rest", op: () => restIn.post() },
          { key: "connect_h2", label: "connect h2c", op: h2In.unary },
        ],
        Math.ceil(SEQ_N / 2),
        LATENCY_BUDGET_MS / 2,
      );
      const s = new Map([...raw].map(([k, v]) => [k, summarize(v)]));
      const d = s.get("direct")!;
      console.log("\nIn-process agentgate (client and gateway share one event loop; not the reported figure)");
      console.log(
        table(
          ["path", "p50", "p99", "+p50 vs direct", "+p99 vs direct"],
          [...s].map(([k, x]) => [
            k,
            ms(x.p50),
            ms(x.p99),
            k === "direct" ? "" : signedMs(x.p50 - d.p50),
            k === "direct" ? "" : signedMs(x.p99 - d.p99),
          ]),
        ),
      );
      results.inProcess = Object.fromEntries(
        [...s].map(([k, x]) => [
          k,
          { ...roundSummary(x), addedVsDirect: { p50: round3(x.p50 - d.p50), p99: round3(x.p99 - d.p99) } },
        ]),
      );
    }

    // --- verdicts ----------------------------------------------------------------------------
    if (verdicts.length) {
      console.log("\nTargets");
      for (const v of verdicts) console.log(`${v.pass ? "PASS" : "MISS"}  ${v.target}: ${v.value}`);
    }
    results.verdicts = verdicts;
    results.seconds = Math.round((performance.now() - started) / 100) / 10;

    // --- shutdown, then the CPU profile (written when agentgate exits) ----------------------
    for (const c of cleanups.reverse()) await c();
    cleanups.length = 0;
    await Promise.all(children.map((c) => c.stop()));
    if (args["cpu-prof"]) {
      // CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile: thread 0 is the main thread (others: tsx's loader).
      const files = readdirSync(profDir).filter((f) => f.endsWith(".cpuprofile"));
      const main = files.find((f) => f.split(".")[4] === "0") ?? files[0];
      if (!main) log("no CPU profile was written");
      else {
        const kept = path.join(os.tmpdir(), `agentgate-bench-${process.pid}.cpuprofile`);
        const text = readFileSync(path.join(profDir, main), "utf8");
        writeFileSync(kept, text);
        const profile = JSON.parse(text) as CpuProfile;
        const windows = profileWindows.size
          ? [...profileWindows]
          : [["whole run", [0, Number.MAX_SAFE_INTEGER]] as const];
        const summaries: Record<string, unknown> = {};
        for (const [label, w] of windows) {
          const summary = summarizeProfile(profile, 20, w);
          console.log(
            `\nagentgate CPU profile, ${label} (${kept}; open in Chrome DevTools)\n${formatProfile(summary)}`,
          );
          summaries[label] = { windowUs: w, ...summary };
        }
        results.cpuProfile = { file: kept, windows: summaries };
      }
    }
    reportFigures(gate, results, args.json, log);
    return args.strict && verdicts.some((v) => !v.pass) ? 1 : 0;
  } catch (err) {
    if (interrupted) return 130;
    log(`bench/completion failed: ${(err as Error).stack ?? String(err)}`);
    return 1;
  } finally {
    for (const c of cleanups.reverse()) await Promise.resolve(c()).catch(() => undefined);
    await Promise.allSettled(children.map((c) => c.stop()));
    rmSync(tmp, { recursive: true, force: true });
  }
}

process.exitCode = await main();
// connect-node's HTTP/2 session manager and keep-alive agents may hold the loop open.
setTimeout(() => process.exit(process.exitCode), 200).unref();
