/**
 * bench/responses: what the Responses API layer (POST /v1/responses, src/rest/responses/) costs
 * on top of the same request through POST /v1/chat/completions, both measured in one run against
 * the Ollama double, and reported as ratios responses/chat. See bench/README.md.
 *
 *   npx tsx bench/responses.ts [--quick] [--json out.json] [--only request,stream,codex]
 *
 * 1. request: non-streaming, same prompt and model: sequential latency, agentgate CPU per request.
 * 2. stream:  streams of 1 and N (200) upstream content chunks: agentgate CPU per streamed chunk
 *             ((CPU/request at N − at 1) / (N − 1)) and time to last byte.
 * 3. codex:   a ~40 KB Codex-shaped first turn (bench/lib/codex-shaped.ts) vs the same content
 *             as a chat request: latency and CPU the translation adds.
 *
 * Every answer is parsed and checked (a Responses stream must end with response.completed, a
 * chat stream with [DONE], and the text must be the double's), so errors cannot pass as figures.
 * Prints tables (no verdicts: there is no target); the last stdout line is the figures as JSON
 * unless --json <path> writes them to a file. Exit 0 once the figures are printed, 1 on failure.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { codexShaped } from "./lib/codex-shaped.js";
import { closedLoopCpu, cpuUsPerRequest, mergeCpuLoad, type CpuLoadResult } from "./lib/cpu-load.js";
import { childEnv, freePort, processCpuMs, spawnChild, waitHealthy, withTimeout, type Child } from "./lib/processes.js";
import { reportFigures } from "./lib/report.js";
import {
  CHAT_CONTENT,
  checkChatBody,
  checkChatStream,
  checkResponsesBody,
  checkResponsesStream,
  postTarget,
  RESPONSES_CONTENT,
  type Answer,
  type Expected,
  type PostTarget,
} from "./lib/sse-client.js";
import { ms, round3, roundSummary, signedMs, summarize, table } from "./lib/stats.js";

const ROOT = path.resolve(import.meta.dirname, "..");
const MODEL = "qwen3:8b";
const PROMPT = "Say hello to the benchmark in a few words.";
const CODEX_PROMPT = "Add a --verbose flag to the CLI and document it in the README.";

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
    chunks: { type: "string" },
    "log-level": { type: "string", default: "warn" },
    only: { type: "string" },
  },
});

const quick = args.quick!;
const int = (v: string | undefined, def: number) => (v === undefined ? def : Math.max(1, Number.parseInt(v, 10)));
/** Section 1: sequential requests per path, warm-up, interleaved rounds. */
const SEQ_N = int(args.requests, quick ? 400 : 2000);
const WARMUP = int(args.warmup, quick ? 50 : 200);
const ROUNDS = int(args.rounds, 4);
/** Requests in flight for the CPU measurements. */
const CONC = int(args.concurrency, 32);
/** Section 1 load per path (s); sections 2 and 3 use 80% of it per scenario. */
const LOAD_MS = int(args.duration, quick ? 1.2 : 5) * 1000;
const STREAM_LOAD_MS = Math.round(LOAD_MS * 0.8);
/** Load is split into this many interleaved rounds per scenario, after one warm-up window. */
const LOAD_ROUNDS = quick ? 2 : 6;
const LOAD_WARMUP_MS = quick ? 300 : 700;
/** Sections 2 and 3: sequential streams per scenario. */
const STREAM_N = int(args.streams, quick ? 100 : 400);
const CHUNKS = Math.max(2, int(args.chunks, 200));
/** Per-path time caps (ms) for the sequential parts, so a slow path cannot stretch the run. */
const LATENCY_BUDGET_MS = quick ? 1_000 : 4_000;
const STREAM_BUDGET_MS = quick ? 700 : 2_500;
const SECTIONS = new Set((args.only ?? "request,stream,codex").split(",").map((s) => s.trim()));

const log = (s = "") => process.stderr.write(`${s}\n`);

/** One request shape on one path, with the check its answers must pass. */
interface Scenario {
  key: string;
  label: string;
  target: PostTarget;
  payload: Buffer;
  /** Marks the first generated text, for time to first content (streams). */
  marker?: RegExp;
  /** Throws unless the answer is right; streams return their number of events. */
  check: (a: Answer) => number | void;
}

/** Sends one request, then checks the answer (after its timing was taken). */
async function call(s: Scenario): Promise<Answer> {
  const a = await s.target.send(s.payload, s.marker);
  s.check(a);
  return a;
}

/** Events (streams) and bytes of one checked answer per scenario. */
async function shapes(scenarios: Scenario[]): Promise<Map<string, { events?: number; bytes: number }>> {
  const out = new Map<string, { events?: number; bytes: number }>();
  for (const s of scenarios) {
    const a = await s.target.send(s.payload, s.marker);
    out.set(s.key, { events: s.check(a) ?? undefined, bytes: Buffer.byteLength(a.text) });
  }
  return out;
}

/** Even rounds run the scenarios in order, odd rounds backwards (A B, B A, …): no path always goes first. */
function inOrder<T>(scenarios: T[], round: number): T[] {
  return round % 2 === 0 ? scenarios : [...scenarios].reverse();
}

interface Timings {
  total: number[];
  ttfc: number[];
  /** agentgate CPU ms over the measured (not warm-up) calls; undefined if unreadable. */
  cpuMs: number | undefined;
}

/**
 * agentgate CPU µs per call in the sequential blocks. /proc counts CPU in 10 ms ticks, so below
 * 300 ms of CPU (e.g. with --quick) the figure would be off by several per cent: none then.
 */
function seqCpuUs(t: Timings): number | undefined {
  if (t.cpuMs === undefined || t.cpuMs < 300 || t.total.length === 0) return undefined;
  return (t.cpuMs * 1000) / t.total.length;
}

/**
 * Sequential calls: a warm-up per scenario, then `ROUNDS` interleaved blocks (order alternating)
 * so drift hits every scenario alike. Each scenario gets at most `budgetMs` of measuring, split over the rounds.
 */
async function sequentialRounds(
  scenarios: Scenario[],
  n: number,
  warmup: number,
  budgetMs: number,
  pid: number | undefined,
): Promise<Map<string, Timings>> {
  const out = new Map<string, Timings>(scenarios.map((s) => [s.key, { total: [], ttfc: [], cpuMs: 0 }]));
  for (const s of scenarios) for (let i = 0; i < warmup; i++) await call(s);
  const per = Math.ceil(n / ROUNDS);
  for (let r = 0; r < ROUNDS; r++) {
    for (const s of inOrder(scenarios, r)) {
      const acc = out.get(s.key)!;
      const deadline = performance.now() + budgetMs / ROUNDS;
      const cpu0 = processCpuMs(pid);
      for (let i = 0; i < per && performance.now() < deadline; i++) {
        const a = await call(s);
        acc.total.push(a.totalMs);
        if (!Number.isNaN(a.ttfcMs)) acc.ttfc.push(a.ttfcMs);
      }
      const cpu1 = processCpuMs(pid);
      acc.cpuMs =
        acc.cpuMs === undefined || cpu0 === undefined || cpu1 === undefined ? undefined : acc.cpuMs + cpu1 - cpu0;
    }
  }
  return out;
}

/**
 * Closed-loop load with agentgate's (and the double's) CPU per request: one warm-up window per
 * scenario, then `LOAD_ROUNDS` interleaved windows per scenario (order alternating), added up. Any failed call fails
 * the bench.
 */
async function cpuRounds(
  scenarios: Scenario[],
  durationMs: number,
  pids: Record<string, number | undefined>,
): Promise<Map<string, CpuLoadResult>> {
  const parts = new Map<string, CpuLoadResult[]>(scenarios.map((s) => [s.key, []]));
  for (const s of scenarios) await closedLoopCpu(() => call(s), CONC, LOAD_WARMUP_MS, pids);
  for (let r = 0; r < LOAD_ROUNDS; r++) {
    for (const s of inOrder(scenarios, r)) {
      const res = await closedLoopCpu(() => call(s), CONC, durationMs / LOAD_ROUNDS, pids);
      if (res.errors) throw new Error(`${s.label}: ${res.errors} failed calls under load, first: ${res.firstError}`);
      parts.get(s.key)!.push(res);
    }
  }
  return new Map([...parts].map(([k, v]) => [k, mergeCpuLoad(v)]));
}

const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const ratio = (a: number | undefined, b: number | undefined, digits = 2) =>
  a === undefined || b === undefined || !Number.isFinite(a / b) ? "-" : (a / b).toFixed(digits);
const ratioNum = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined || !Number.isFinite(a / b) ? undefined : round3(a / b);
const us = (x: number | undefined, digits = 0) => (x === undefined ? "-" : x.toFixed(digits));
const usNum = (x: number | undefined) => (x === undefined ? undefined : Math.round(x * 10) / 10);
const minus = (a: number | undefined, b: number | undefined) =>
  a === undefined || b === undefined ? undefined : a - b;
/** A signed difference in µs with its unit, or "-". */
const signedUs = (x: number | undefined, digits = 0) =>
  x === undefined ? "-" : `${x >= 0 ? "+" : ""}${x.toFixed(digits)} µs`;

/** The echo the double answers an unscripted prompt with. */
const echo = (prompt: string): Expected => ({ text: `You said: ${prompt.trim()}` });
/** What the double answers `reply in n chunks` with (--chunk-directive). */
const chunked = (n: number): Expected => ({
  text: Array.from({ length: n }, (_, i) => `w${i + 1}`).join(" "),
  deltas: n,
});

async function main(): Promise<number> {
  const started = performance.now();
  const tmp = mkdtempSync(path.join(os.tmpdir(), "agentgate-bench-responses-"));
  const children: Child[] = [];
  const targets: PostTarget[] = [];
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    void Promise.allSettled(children.map((c) => c.stop())).then(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);

  try {
    // --- servers, each in its own process ---------------------------------------------------
    const double = spawnChild(
      "ollama double",
      ["--import", "tsx", "test/doubles/ollama-double-main.ts", "--chunk-directive"],
      { cwd: ROOT, env: childEnv({}) },
    );
    children.push(double);
    const doubleUrl = await withTimeout(double.firstLine, 30_000, "ollama double");
    const port = await freePort();
    const gateUrl = `http://127.0.0.1:${port}`;
    const gate = spawnChild("agentgate", ["bin/agentgate.js", "serve"], {
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
    const gateReadyMs = await waitHealthy(`${gateUrl}/healthz`, gate);
    const [load1] = os.loadavg();
    if (load1! > 1)
      log(
        `warning: load average ${load1!.toFixed(2)} on ${os.cpus().length} cores before the run; other work on this machine will skew the figures`,
      );
    log(
      `servers: double ${doubleUrl}, agentgate ${gateUrl} (healthy after ${(gateReadyMs / 1000).toFixed(1)} s), LOG_LEVEL=${args["log-level"]}`,
    );
    const pids = { agentgate: gate.proc.pid, double: double.proc.pid };

    const chat = postTarget(gateUrl, "/v1/chat/completions", CONC);
    const responses = postTarget(gateUrl, "/v1/responses", CONC);
    targets.push(chat, responses);

    const results: Record<string, unknown> = {
      bench: "responses",
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      loadAvgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
      setup: {
        agentgate: "separate process (node bin/agentgate.js serve), PGlite in a temp DATA_DIR",
        logLevel: args["log-level"],
        double: "separate process, --chunk-directive, no delays (each reply is written at once)",
        client: "this process; node:http keep-alive Agent; every answer parsed and checked",
        requests: SEQ_N,
        warmup: WARMUP,
        rounds: ROUNDS,
        concurrency: CONC,
        loadSeconds: LOAD_MS / 1000,
        streamLoadSeconds: STREAM_LOAD_MS / 1000,
        loadRounds: LOAD_ROUNDS,
        streams: STREAM_N,
        chunks: CHUNKS,
      },
    };

    // --- 1. per request: non-streaming, same prompt -------------------------------------------
    if (SECTIONS.has("request")) {
      const expected = echo(PROMPT);
      const scenarios: Scenario[] = [
        {
          key: "chat",
          label: "POST /v1/chat/completions",
          target: chat,
          payload: json({ model: MODEL, messages: [{ role: "user", content: PROMPT }] }),
          check: (a) => checkChatBody(a, expected),
        },
        {
          key: "responses",
          label: "POST /v1/responses",
          target: responses,
          payload: json({ model: MODEL, input: PROMPT }),
          check: (a) => checkResponsesBody(a, expected),
        },
      ];
      const shape = await shapes(scenarios);
      log(
        `request: ${WARMUP} warm-up + ${SEQ_N} sequential non-streaming requests per path (at most ${LATENCY_BUDGET_MS / 1000} s each), ${ROUNDS} interleaved rounds`,
      );
      const seq = await sequentialRounds(scenarios, SEQ_N, WARMUP, LATENCY_BUDGET_MS, gate.proc.pid);
      log(`request: ${CONC} in flight, ${LOAD_MS / 1000} s per path in ${LOAD_ROUNDS} rounds`);
      const load = await cpuRounds(scenarios, LOAD_MS, pids);
      const lat = new Map([...seq].map(([k, v]) => [k, summarize(v.total)]));
      const c = lat.get("chat")!;
      const r = lat.get("responses")!;
      const cpu = (k: string, p = "agentgate") => cpuUsPerRequest(load.get(k)!, p);
      const scpu = (k: string) => seqCpuUs(seq.get(k)!);
      console.log(`\n1. Per request: non-streaming, same prompt and model ("${PROMPT}"; Responses input as a string)`);
      console.log(
        table(
          [
            "path",
            "n",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "agentgate CPU µs/req seq",
            `req/s @${CONC}`,
            `agentgate CPU µs/req @${CONC}`,
            `double CPU µs/req @${CONC}`,
            "answer bytes",
          ],
          scenarios.map((s) => {
            const x = lat.get(s.key)!;
            const l = load.get(s.key)!;
            return [
              s.label,
              String(x.n),
              ms(x.p50),
              ms(x.p90),
              ms(x.p99),
              us(scpu(s.key)),
              ((l.requests / l.elapsedMs) * 1000).toFixed(0),
              us(cpu(s.key)),
              us(cpu(s.key, "double")),
              String(shape.get(s.key)!.bytes),
            ];
          }),
        ),
      );
      console.log(
        table(
          ["responses vs chat", "p50", "p99", "agentgate CPU/req seq", `agentgate CPU/req @${CONC}`],
          [
            [
              "ratio responses/chat",
              ratio(r.p50, c.p50),
              ratio(r.p99, c.p99),
              ratio(scpu("responses"), scpu("chat")),
              ratio(cpu("responses"), cpu("chat")),
            ],
            [
              "difference",
              `${signedMs(r.p50 - c.p50)} ms`,
              `${signedMs(r.p99 - c.p99)} ms`,
              signedUs(minus(scpu("responses"), scpu("chat"))),
              signedUs(minus(cpu("responses"), cpu("chat"))),
            ],
          ],
        ),
      );
      results.request = {
        latencyMs: { chat: roundSummary(c), responses: roundSummary(r) },
        sequentialCpuUsPerRequest: { chat: usNum(scpu("chat")), responses: usNum(scpu("responses")) },
        load: Object.fromEntries(
          scenarios.map((s) => {
            const l = load.get(s.key)!;
            return [
              s.key,
              {
                requests: l.requests,
                rps: Math.round((l.requests / l.elapsedMs) * 1000),
                cpuUsPerRequest: { agentgate: usNum(cpu(s.key)), double: usNum(cpu(s.key, "double")) },
                latencyMs: roundSummary(summarize(l.latencies)),
              },
            ];
          }),
        ),
        ratio: {
          p50: ratioNum(r.p50, c.p50),
          p99: ratioNum(r.p99, c.p99),
          agentgateCpuPerRequestSequential: ratioNum(scpu("responses"), scpu("chat")),
          agentgateCpuPerRequest: ratioNum(cpu("responses"), cpu("chat")),
        },
      };
    }

    // --- 2. per streamed event: 1 vs N upstream chunks ----------------------------------------
    if (SECTIONS.has("stream")) {
      const counts = [1, CHUNKS];
      const scenarios: Scenario[] = [];
      for (const n of counts) {
        const prompt = `reply in ${n} chunks`;
        const expected = chunked(n);
        scenarios.push(
          {
            key: `chat_${n}`,
            label: `chat SSE, ${n} chunk${n === 1 ? "" : "s"}`,
            target: chat,
            payload: json({ model: MODEL, stream: true, messages: [{ role: "user", content: prompt }] }),
            marker: CHAT_CONTENT,
            check: (a) => checkChatStream(a, expected),
          },
          {
            key: `responses_${n}`,
            label: `responses SSE, ${n} chunk${n === 1 ? "" : "s"}`,
            target: responses,
            payload: json({ model: MODEL, stream: true, input: prompt }),
            marker: RESPONSES_CONTENT,
            check: (a) => checkResponsesStream(a, expected),
          },
        );
      }
      const shape = await shapes(scenarios);
      log(
        `stream: ${STREAM_N} sequential streams per scenario (at most ${STREAM_BUDGET_MS / 1000} s each), then ${CONC} in flight for ${STREAM_LOAD_MS / 1000} s each; replies of 1 and ${CHUNKS} content chunks`,
      );
      const seq = await sequentialRounds(scenarios, STREAM_N, Math.min(WARMUP, 30), STREAM_BUDGET_MS, gate.proc.pid);
      const load = await cpuRounds(scenarios, STREAM_LOAD_MS, pids);
      const total = new Map([...seq].map(([k, v]) => [k, summarize(v.total)]));
      const ttfc = new Map([...seq].map(([k, v]) => [k, summarize(v.ttfc)]));
      const cpu = (k: string, p = "agentgate") => cpuUsPerRequest(load.get(k)!, p);
      const scpu = (k: string) => seqCpuUs(seq.get(k)!);
      console.log(
        `\n2. Streams: replies of 1 and ${CHUNKS} upstream content chunks (sequential time to first text / last byte; CPU under load)`,
      );
      console.log(
        table(
          [
            "stream",
            "events",
            "bytes",
            "n",
            "first text p50",
            "last byte p50",
            "last byte p99",
            "agentgate CPU µs/req seq",
            `streams/s @${CONC}`,
            `agentgate CPU µs/req @${CONC}`,
            `double CPU µs/req @${CONC}`,
          ],
          scenarios.map((s) => {
            const l = load.get(s.key)!;
            return [
              s.label,
              String(shape.get(s.key)!.events ?? "-"),
              String(shape.get(s.key)!.bytes),
              String(total.get(s.key)!.n),
              ms(ttfc.get(s.key)!.p50),
              ms(total.get(s.key)!.p50),
              ms(total.get(s.key)!.p99),
              us(scpu(s.key)),
              ((l.requests / l.elapsedMs) * 1000).toFixed(0),
              us(cpu(s.key)),
              us(cpu(s.key, "double")),
            ];
          }),
        ),
      );
      const perChunkOf = (f: (k: string) => number | undefined) => (api: string) => {
        const d = minus(f(`${api}_${CHUNKS}`), f(`${api}_1`));
        return d === undefined ? undefined : d / (CHUNKS - 1);
      };
      const perChunk = perChunkOf(cpu);
      const perChunkSeq = perChunkOf(scpu);
      const ttlbPerChunk = (api: string) =>
        (total.get(`${api}_${CHUNKS}`)!.p50 - total.get(`${api}_1`)!.p50) / (CHUNKS - 1);
      const pc = { chat: perChunk("chat"), responses: perChunk("responses") };
      const pcs = { chat: perChunkSeq("chat"), responses: perChunkSeq("responses") };
      const tc = { chat: ttlbPerChunk("chat"), responses: ttlbPerChunk("responses") };
      const last = (api: string) => total.get(`${api}_${CHUNKS}`)!;
      console.log(`\n   Per streamed upstream chunk: (${CHUNKS}-chunk figure − 1-chunk figure) / ${CHUNKS - 1}`);
      console.log(
        table(
          ["", "chat", "responses", "ratio responses/chat"],
          [
            [`agentgate CPU µs per chunk @${CONC}`, us(pc.chat, 2), us(pc.responses, 2), ratio(pc.responses, pc.chat)],
            ["agentgate CPU µs per chunk seq", us(pcs.chat, 2), us(pcs.responses, 2), ratio(pcs.responses, pcs.chat)],
            [
              "last byte p50, µs per chunk",
              us(tc.chat * 1000, 2),
              us(tc.responses * 1000, 2),
              ratio(tc.responses, tc.chat),
            ],
            [
              `last byte p50, ${CHUNKS} chunks (ms)`,
              ms(last("chat").p50),
              ms(last("responses").p50),
              ratio(last("responses").p50, last("chat").p50),
            ],
            [
              `last byte p99, ${CHUNKS} chunks (ms)`,
              ms(last("chat").p99),
              ms(last("responses").p99),
              ratio(last("responses").p99, last("chat").p99),
            ],
            [
              `agentgate CPU µs/req, 1 chunk @${CONC}`,
              us(cpu("chat_1")),
              us(cpu("responses_1")),
              ratio(cpu("responses_1"), cpu("chat_1")),
            ],
            [
              `agentgate CPU µs/req, ${CHUNKS} chunks @${CONC}`,
              us(cpu(`chat_${CHUNKS}`)),
              us(cpu(`responses_${CHUNKS}`)),
              ratio(cpu(`responses_${CHUNKS}`), cpu(`chat_${CHUNKS}`)),
            ],
          ],
        ),
      );
      results.stream = {
        chunks: CHUNKS,
        scenarios: Object.fromEntries(
          scenarios.map((s) => {
            const l = load.get(s.key)!;
            return [
              s.key,
              {
                ...shape.get(s.key),
                firstTextMs: roundSummary(ttfc.get(s.key)!),
                lastByteMs: roundSummary(total.get(s.key)!),
                sequentialCpuUsPerRequest: usNum(scpu(s.key)),
                load: {
                  requests: l.requests,
                  streamsPerSecond: Math.round((l.requests / l.elapsedMs) * 1000),
                  cpuUsPerRequest: { agentgate: usNum(cpu(s.key)), double: usNum(cpu(s.key, "double")) },
                },
              },
            ];
          }),
        ),
        perChunk: {
          agentgateCpuUs: { chat: round3(pc.chat ?? Number.NaN), responses: round3(pc.responses ?? Number.NaN) },
          agentgateCpuUsSequential: {
            chat: round3(pcs.chat ?? Number.NaN),
            responses: round3(pcs.responses ?? Number.NaN),
          },
          lastByteP50Us: { chat: round3(tc.chat * 1000), responses: round3(tc.responses * 1000) },
        },
        ratio: {
          cpuPerChunk: ratioNum(pc.responses, pc.chat),
          cpuPerChunkSequential: ratioNum(pcs.responses, pcs.chat),
          lastBytePerChunk: ratioNum(tc.responses, tc.chat),
          lastByteP50: ratioNum(last("responses").p50, last("chat").p50),
          lastByteP99: ratioNum(last("responses").p99, last("chat").p99),
          cpuPerRequest1: ratioNum(cpu("responses_1"), cpu("chat_1")),
          cpuPerRequestN: ratioNum(cpu(`responses_${CHUNKS}`), cpu(`chat_${CHUNKS}`)),
        },
      };
    }

    // --- 3. a Codex-shaped first turn ---------------------------------------------------------
    if (SECTIONS.has("codex")) {
      const expected = echo(CODEX_PROMPT);
      const streamed = codexShaped(MODEL, CODEX_PROMPT, true);
      const whole = codexShaped(MODEL, CODEX_PROMPT, false);
      const scenarios: Scenario[] = [
        {
          key: "chat_stream",
          label: "chat, stream",
          target: chat,
          payload: json(streamed.chat),
          marker: CHAT_CONTENT,
          check: (a) => void checkChatStream(a, expected),
        },
        {
          key: "responses_stream",
          label: "responses, stream (as Codex sends it)",
          target: responses,
          payload: json(streamed.responses),
          marker: RESPONSES_CONTENT,
          check: (a) => void checkResponsesStream(a, expected),
        },
        {
          key: "chat_json",
          label: "chat, non-streaming",
          target: chat,
          payload: json(whole.chat),
          check: (a) => checkChatBody(a, expected),
        },
        {
          key: "responses_json",
          label: "responses, non-streaming",
          target: responses,
          payload: json(whole.responses),
          check: (a) => checkResponsesBody(a, expected),
        },
      ];
      const byKey = new Map(scenarios.map((s) => [s.key, s]));
      const shape = await shapes(scenarios);
      log(
        `codex: ${Math.round(byKey.get("responses_stream")!.payload.length / 1024)} KB Codex-shaped requests: ${STREAM_N} sequential per scenario (at most ${STREAM_BUDGET_MS / 1000} s each), then ${CONC} in flight for ${STREAM_LOAD_MS / 1000} s (streams)`,
      );
      const seq = await sequentialRounds(scenarios, STREAM_N, Math.min(WARMUP, 50), STREAM_BUDGET_MS, gate.proc.pid);
      const loadScenarios = scenarios.filter((s) => s.key.endsWith("_stream"));
      const load = await cpuRounds(loadScenarios, STREAM_LOAD_MS, pids);
      const lat = new Map([...seq].map(([k, v]) => [k, summarize(v.total)]));
      const cpu = (k: string, p = "agentgate") => (load.has(k) ? cpuUsPerRequest(load.get(k)!, p) : undefined);
      const scpu = (k: string) => seqCpuUs(seq.get(k)!);
      console.log(
        `\n3. Codex-shaped first turn (4 input messages incl. a 17 KB developer message, 7 function tools, a namespace tool with 4, custom apply_patch with a lark grammar, web_search) vs the same content as a chat request`,
      );
      console.log(
        table(
          [
            "request",
            "body bytes",
            "answer bytes",
            "n",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "agentgate CPU µs/req seq",
            `req/s @${CONC}`,
            `agentgate CPU µs/req @${CONC}`,
            `double CPU µs/req @${CONC}`,
          ],
          scenarios.map((s) => {
            const x = lat.get(s.key)!;
            const l = load.get(s.key);
            return [
              s.label,
              String(s.payload.length),
              String(shape.get(s.key)!.bytes),
              String(x.n),
              ms(x.p50),
              ms(x.p90),
              ms(x.p99),
              us(scpu(s.key)),
              l ? ((l.requests / l.elapsedMs) * 1000).toFixed(0) : "",
              l ? us(cpu(s.key)) : "",
              l ? us(cpu(s.key, "double")) : "",
            ];
          }),
        ),
      );
      const pair = (mode: "stream" | "json") => ({ c: lat.get(`chat_${mode}`)!, r: lat.get(`responses_${mode}`)! });
      const rows = (["stream", "json"] as const).map((mode) => {
        const { c, r } = pair(mode);
        const sr = scpu(`responses_${mode}`);
        const sc = scpu(`chat_${mode}`);
        return [
          mode === "stream" ? "stream (time to last byte)" : "non-streaming",
          `${signedMs(r.p50 - c.p50)} ms`,
          `${signedMs(r.p99 - c.p99)} ms`,
          ratio(r.p50, c.p50),
          ratio(r.p99, c.p99),
          signedUs(minus(sr, sc)),
          ratio(sr, sc),
        ];
      });
      console.log(
        table(
          [
            "responses vs chat",
            "added p50",
            "added p99",
            "ratio p50",
            "ratio p99",
            "added CPU/req seq",
            "ratio CPU/req seq",
          ],
          rows,
        ),
      );
      const cs = cpu("chat_stream");
      const rs = cpu("responses_stream");
      console.log(
        `agentgate CPU per Codex-shaped stream @${CONC}: responses ${us(rs)} µs vs chat ${us(cs)} µs: ${signedUs(minus(rs, cs))}, ratio responses/chat ${ratio(rs, cs)}`,
      );
      const diff = (mode: "stream" | "json") => {
        const { c, r } = pair(mode);
        return {
          chat: roundSummary(c),
          responses: roundSummary(r),
          addedMs: { p50: round3(r.p50 - c.p50), p99: round3(r.p99 - c.p99) },
          sequentialCpuUsPerRequest: { chat: usNum(scpu(`chat_${mode}`)), responses: usNum(scpu(`responses_${mode}`)) },
          ratio: {
            p50: ratioNum(r.p50, c.p50),
            p99: ratioNum(r.p99, c.p99),
            sequentialCpuPerRequest: ratioNum(scpu(`responses_${mode}`), scpu(`chat_${mode}`)),
          },
        };
      };
      results.codex = {
        bodyBytes: Object.fromEntries(scenarios.map((s) => [s.key, s.payload.length])),
        answerBytes: Object.fromEntries(scenarios.map((s) => [s.key, shape.get(s.key)!.bytes])),
        latencyMs: { stream: diff("stream"), nonStreaming: diff("json") },
        load: Object.fromEntries(
          loadScenarios.map((s) => {
            const l = load.get(s.key)!;
            return [
              s.key,
              {
                requests: l.requests,
                rps: Math.round((l.requests / l.elapsedMs) * 1000),
                cpuUsPerRequest: { agentgate: usNum(cpu(s.key)), double: usNum(cpu(s.key, "double")) },
              },
            ];
          }),
        ),
        cpuAddedUsPerRequest: usNum(minus(rs, cs)),
        ratio: { cpuPerRequest: ratioNum(rs, cs) },
      };
    }

    results.seconds = Math.round((performance.now() - started) / 100) / 10;
    for (const t of targets) t.close();
    targets.length = 0;
    await Promise.all(children.map((c) => c.stop()));
    reportFigures(gate, results, args.json, log);
    return 0;
  } catch (err) {
    if (interrupted) return 130;
    log(`bench/responses failed: ${(err as Error).stack ?? String(err)}`);
    return 1;
  } finally {
    for (const t of targets) t.close();
    await Promise.allSettled(children.map((c) => c.stop()));
    rmSync(tmp, { recursive: true, force: true });
  }
}

process.exitCode = await main();
// Keep-alive agents may hold the loop open.
setTimeout(() => process.exit(process.exitCode), 200).unref();
