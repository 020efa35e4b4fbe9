/**
 * bench/agents: what AgentService costs on the terminal path, with agentgate in its own process
 * and the clients from clients/index.ts over h2c. See bench/README.md.
 *
 *   npx tsx bench/agents.ts [--json out.json] [--quick] [--strict]
 *
 * 1. Output throughput through Attach vs reading the same program's PTY directly with node-pty in
 *    this process (interleaved rounds; target ratio >= 0.7).
 * 2. Keystroke echo latency: one byte as an Attach input frame to `cat` in a raw terminal, until it
 *    comes back as an output frame (target p50 < 1 ms); node-pty direct as the baseline.
 * 3. agentgate's resident memory with 0 and with 100 idle agents.
 *
 * Prints tables and one verdict line per target; the last stdout line is the figures as JSON unless
 * --json <path> writes them to a file. Exits 0 once figures are printed (--strict: 1 on a miss).
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { parseArgs } from "node:util";
import { create } from "@bufbuild/protobuf";
import { durationFromMs } from "@bufbuild/protobuf/wkt";
import * as pty from "node-pty";
import {
  AgentState,
  AttachMode,
  AttachOverflowPolicy,
  AttachRequestSchema,
  createAgentgateClients,
  SandboxDriver,
  type AgentgateClients,
  type AttachRequest,
  type AttachResponse,
} from "../clients/index.js";
import { formatProfile, summarizeProfile, type CpuProfile } from "./lib/cpuprofile-top.js";
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
import { ms, round3, roundSummary, summarize, table } from "./lib/stats.js";

const ROOT = path.resolve(import.meta.dirname, "..");

const { values: args } = parseArgs({
  options: {
    json: { type: "string" },
    quick: { type: "boolean", default: false },
    bytes: { type: "string" },
    rounds: { type: "string" },
    keystrokes: { type: "string" },
    agents: { type: "string" },
    "log-level": { type: "string", default: "warn" },
    strict: { type: "boolean", default: false },
    "cpu-prof": { type: "boolean", default: false },
    "no-compression": { type: "boolean", default: false },
  },
});
const quick = args.quick!;
const int = (v: string | undefined, def: number) => (v === undefined ? def : Math.max(1, Number.parseInt(v, 10)));
/** Input bytes of `head -c N /dev/zero | base64`. */
const ZERO_BYTES = int(args.bytes, quick ? 10_000_000 : 30_000_000);
const ROUNDS = int(args.rounds, quick ? 2 : 3);
const KEYSTROKES = int(args.keystrokes, quick ? 500 : 2000);
const KEY_WARMUP = quick ? 50 : 200;
const IDLE_AGENTS = int(args.agents, 100);
const COLS = 120;
const ROWS = 32;
const TERM = "xterm-256color";

const log = (s = "") => process.stderr.write(`${s}\n`);
/** CLOCK_MONOTONIC in microseconds: the clock of V8 CPU profiles in every process. */
const monoUs = () => Number(process.hrtime.bigint() / 1000n);
/** [start, end] µs of the measured Attach flood rounds, for --cpu-prof. */
const floodWindow: [number, number] = [Number.MAX_SAFE_INTEGER, 0];

/** Bytes the PTY carries for `head -c n /dev/zero | base64`: 76-char lines, "\n" made "\r\n" by onlcr. */
function base64PtyBytes(n: number): number {
  const b64 = 4 * Math.ceil(n / 3);
  return b64 + 2 * Math.ceil(b64 / 76);
}

/** The program both throughput paths run: a ready marker, wait for a line, then the flood. */
const floodScript = (n: number) => `stty -echo; printf R; read x; head -c ${n} /dev/zero | base64`;
/** One byte in gives one byte back: no echo, no output processing, no line buffering. */
const ECHO_SCRIPT = "stty raw -echo; printf R; exec cat";

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]);
}

const sleep = (msec: number) => new Promise((r) => setTimeout(r, msec));

// --- node-pty directly, in this process ---------------------------------------------------------

function directPty(script: string): pty.IPty {
  return pty.spawn("sh", ["-c", script], {
    name: TERM,
    cols: COLS,
    rows: ROWS,
    cwd: os.tmpdir(),
    env: childEnv({ TERM }),
    encoding: null,
    handleFlowControl: false,
  } as pty.IPtyForkOptions);
}

interface FloodResult {
  bytes: number;
  ms: number;
  /** agentgate CPU ms (attach path only). */
  gateCpuMs?: number;
  selfCpuMs: number;
}

async function directFlood(n: number, expected: number): Promise<FloodResult> {
  const p = directPty(floodScript(n));
  let ready = false;
  let bytes = 0;
  let t0 = 0;
  let tLast = 0;
  let c0 = 0;
  const exited = new Promise<number>((resolve) => p.onExit((e) => resolve(e.exitCode)));
  const done = new Promise<void>((resolve) => {
    p.onData((d) => {
      const b = d as unknown as Buffer;
      if (!ready) {
        if (b.toString("latin1") !== "R")
          throw new Error(`direct: unexpected first output ${JSON.stringify(String(b))}`);
        ready = true;
        c0 = selfCpuMs();
        t0 = performance.now();
        p.write("\r");
        return;
      }
      bytes += b.length;
      tLast = performance.now();
      if (bytes >= expected) resolve();
    });
  });
  // node-pty alone may lose the tail at exit (see docs/agents.md): then the count falls short.
  const code = await withTimeout(exited, 60_000, "direct flood");
  await Promise.race([done, sleep(300)]);
  if (code !== 0) throw new Error(`direct flood exited ${code}`);
  return { bytes, ms: tLast - t0, selfCpuMs: selfCpuMs() - c0 };
}

/** Client frames for a bidi call, pushed as the bench goes. */
class Outbox implements AsyncIterable<AttachRequest> {
  private queue: AttachRequest[] = [];
  private wake: (() => void) | undefined;
  private ended = false;
  push(frame: AttachRequest["frame"]): void {
    this.queue.push(create(AttachRequestSchema, { frame }));
    this.wake?.();
  }
  end(): void {
    this.ended = true;
    this.wake?.();
  }
  async *[Symbol.asyncIterator](): AsyncIterator<AttachRequest> {
    for (;;) {
      while (this.queue.length) yield this.queue.shift()!;
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}

function openFrame(agentId: string, overflow: AttachOverflowPolicy): AttachRequest["frame"] {
  return {
    case: "open",
    value: {
      agentId,
      replayOffset: 0n,
      mode: AttachMode.READ_WRITE,
      overflowPolicy: overflow,
      $typeName: "agentgate.v1.AttachOpen",
    } as never,
  };
}

async function startSh(ag: AgentgateClients, script: string, name: string): Promise<string> {
  const { agent } = await ag.agents.startAgent({
    argv: ["sh", "-c", script],
    sandbox: SandboxDriver.NONE,
    size: { cols: COLS, rows: ROWS },
    term: TERM,
    name,
  });
  return agent!.id;
}

async function deleteAgent(ag: AgentgateClients, id: string): Promise<void> {
  await ag.agents.deleteAgent({ agentId: id, gracePeriod: durationFromMs(1000) });
}

async function attachFlood(ag: AgentgateClients, gatePid: number, n: number, expected: number): Promise<FloodResult> {
  const id = await startSh(ag, floodScript(n), "bench-flood");
  const out = new Outbox();
  // PAUSE_AGENT: nothing is skipped, the program waits for this client (what a person's terminal wants).
  out.push(openFrame(id, AttachOverflowPolicy.PAUSE_AGENT));
  let ready = false;
  let bytes = 0;
  let next = 0;
  let t0 = 0;
  let tLast = 0;
  let c0 = 0;
  let g0 = 0;
  let exitCode: number | undefined;
  const notices: string[] = [];
  try {
    for await (const res of ag.agents.attach(out) as AsyncIterable<AttachResponse>) {
      const f = res.frame;
      if (f.case === "output") {
        if (Number(f.value.offset) !== next) throw new Error(`attach: offset ${f.value.offset}, expected ${next}`);
        next += f.value.data.length;
        if (!ready) {
          if (next !== 1 || f.value.data[0] !== 0x52)
            throw new Error(`attach: unexpected first output ${JSON.stringify(Buffer.from(f.value.data).toString())}`);
          ready = true;
          c0 = selfCpuMs();
          g0 = processCpuMs(gatePid) ?? 0;
          if (n === ZERO_BYTES) floodWindow[0] = Math.min(floodWindow[0], monoUs());
          t0 = performance.now();
          out.push({ case: "input", value: new Uint8Array([0x0d]) });
          continue;
        }
        bytes += f.value.data.length;
        tLast = performance.now();
      } else if (f.case === "notice") {
        notices.push(f.value.message);
      } else if (f.case === "exit") {
        exitCode = f.value.exitCode;
        break;
      }
    }
  } finally {
    out.end();
  }
  const gateCpuMs = (processCpuMs(gatePid) ?? 0) - g0;
  if (n === ZERO_BYTES) floodWindow[1] = monoUs();
  const self = selfCpuMs() - c0;
  await deleteAgent(ag, id);
  if (exitCode !== 0) throw new Error(`attach flood exited ${exitCode}; notices: ${notices.join("; ")}`);
  if (bytes !== expected)
    throw new Error(`attach flood: ${bytes} bytes, expected ${expected}; notices: ${notices.join("; ")}`);
  return { bytes, ms: tLast - t0, gateCpuMs, selfCpuMs: self };
}

// --- keystroke echo -------------------------------------------------------------------------------

/** The byte for keystroke i: printable, varying, never 0x03 and friends. */
const keyByte = (i: number) => 0x21 + (i % 94);

async function directEcho(count: number, warmup: number): Promise<number[]> {
  const p = directPty(ECHO_SCRIPT);
  let pending: ((b: Buffer) => void) | undefined;
  let ready: () => void;
  const readyP = new Promise<void>((r) => (ready = r));
  let seenR = false;
  p.onData((d) => {
    const b = d as unknown as Buffer;
    if (!seenR) {
      if (b.toString("latin1") !== "R") throw new Error(`direct echo: unexpected ${JSON.stringify(String(b))}`);
      seenR = true;
      ready();
      return;
    }
    const w = pending;
    pending = undefined;
    if (!w) throw new Error(`direct echo: output nobody waited for: ${JSON.stringify(String(b))}`);
    w(b);
  });
  const exited = new Promise<void>((r) => p.onExit(() => r()));
  await withTimeout(readyP, 10_000, "direct echo ready");
  const lat: number[] = [];
  try {
    for (let i = 0; i < warmup + count; i++) {
      const byte = keyByte(i);
      const got = new Promise<Buffer>((r) => (pending = r));
      const t0 = performance.now();
      p.write(String.fromCharCode(byte));
      const b = await withTimeout(got, 5_000, "direct echo");
      const dt = performance.now() - t0;
      if (b.length !== 1 || b[0] !== byte) throw new Error(`direct echo: sent ${byte}, got ${JSON.stringify([...b])}`);
      if (i >= warmup) lat.push(dt);
    }
  } finally {
    p.kill("SIGKILL");
    await withTimeout(exited, 5_000, "direct echo exit").catch(() => undefined);
  }
  return lat;
}

interface EchoSession {
  run(count: number, warmup: number): Promise<number[]>;
  close(): Promise<void>;
}

async function attachEcho(ag: AgentgateClients): Promise<EchoSession> {
  const id = await startSh(ag, ECHO_SCRIPT, "bench-echo");
  const out = new Outbox();
  out.push(openFrame(id, AttachOverflowPolicy.SKIP));
  const it = (ag.agents.attach(out) as AsyncIterable<AttachResponse>)[Symbol.asyncIterator]();
  /** The next output frame's bytes (notices are skipped: none is expected here). */
  const nextOutput = async (): Promise<Uint8Array> => {
    for (;;) {
      const r = await it.next();
      if (r.done) throw new Error("attach echo: stream ended");
      const f = r.value.frame;
      if (f.case === "output") return f.value.data;
      if (f.case === "exit") throw new Error(`attach echo: agent exited ${JSON.stringify(f.value.message)}`);
    }
  };
  const first = await withTimeout(nextOutput(), 10_000, "attach echo: first output"); // `opened` is skipped
  if (first.length !== 1 || first[0] !== 0x52) throw new Error(`attach echo: unexpected ${JSON.stringify([...first])}`);
  let k = 0;
  return {
    async run(count, warmup) {
      const lat: number[] = [];
      for (let i = 0; i < warmup + count; i++) {
        const byte = keyByte(k++);
        const t0 = performance.now();
        out.push({ case: "input", value: new Uint8Array([byte]) });
        const b = await withTimeout(nextOutput(), 5_000, "attach echo");
        const dt = performance.now() - t0;
        if (b.length !== 1 || b[0] !== byte)
          throw new Error(`attach echo: sent ${byte}, got ${JSON.stringify([...b])}`);
        if (i >= warmup) lat.push(dt);
      }
      return lat;
    },
    async close() {
      out.push({ case: "detach", value: { $typeName: "agentgate.v1.AttachDetach" } as never });
      out.end();
      for (;;) {
        const r = await it.next().catch(() => ({ done: true }) as const);
        if (r.done) break;
      }
      await deleteAgent(ag, id);
    },
  };
}

// --- main ----------------------------------------------------------------------------------------

async function main(): Promise<number> {
  const started = performance.now();
  const tmp = mkdtempSync(path.join(os.tmpdir(), "agentgate-bench-agents-"));
  const children: Child[] = [];
  let interrupted = false;
  const onSignal = () => {
    interrupted = true;
    void Promise.allSettled(children.map((c) => c.stop())).then(() => process.exit(130));
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    const port = await freePort();
    const gateUrl = `http://127.0.0.1:${port}`;
    const profDir = path.join(tmp, "cpu-prof");
    const profFlags = args["cpu-prof"] ? ["--cpu-prof", `--cpu-prof-dir=${profDir}`] : [];
    const gate = spawnChild("agentgate", [...profFlags, "bin/agentgate.js", "serve"], {
      cwd: ROOT,
      env: childEnv({
        BIND: `127.0.0.1:${port}`,
        DATA_DIR: path.join(tmp, "data"),
        LOG_LEVEL: args["log-level"]!,
        SHUTDOWN_GRACE_MS: "1000",
      }),
    });
    children.push(gate);
    const readyMs = await waitHealthy(`${gateUrl}/healthz`, gate);
    const gatePid = gate.proc.pid!;
    const [load1] = os.loadavg();
    if (load1! > 1)
      log(
        `warning: load average ${load1!.toFixed(2)} on ${os.cpus().length} cores before the run; figures will be skewed`,
      );
    log(
      `agentgate ${gateUrl} (pid ${gatePid}, healthy after ${(readyMs / 1000).toFixed(1)} s), LOG_LEVEL=${args["log-level"]}`,
    );
    // --no-compression (a diagnostic): the client does not offer gzip/br, so the server sends output frames as is.
    const ag = createAgentgateClients({
      baseUrl: gateUrl,
      httpVersion: "2",
      interceptors: args["no-compression"]
        ? [
            (next) => (req) => {
              req.header.delete("connect-accept-encoding");
              req.header.delete("grpc-accept-encoding");
              return next(req);
            },
          ]
        : [],
    });

    const results: Record<string, unknown> = {
      bench: "agents",
      date: new Date().toISOString(),
      node: process.version,
      cpus: os.cpus().length,
      cpuModel: os.cpus()[0]?.model,
      loadAvgAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
      setup: {
        agentgate: "separate process (node bin/agentgate.js serve), PGlite in a temp DATA_DIR",
        client: "this process; connect-node over h2c (one HTTP/2 session)",
        direct: "node-pty 1.2.0-beta.15 in this process, encoding null, same terminal size and TERM",
        zeroBytes: ZERO_BYTES,
        rounds: ROUNDS,
        keystrokes: KEYSTROKES,
        idleAgents: IDLE_AGENTS,
        clientOffersCompression: !args["no-compression"],
      },
    };
    const verdicts: { target: string; value: string; pass: boolean }[] = [];

    // --- 3 first, so the 0-agent figure is the fresh server (after one warm-up agent) --------------
    {
      log(`memory: RSS with 0 and ${IDLE_AGENTS} idle agents (sleep 600, sandbox none)`);
      const warm = await startSh(ag, "sleep 600", "bench-warm");
      await deleteAgent(ag, warm);
      await sleep(1000);
      const rss0 = rssKiB(gatePid);
      const t0 = performance.now();
      const ids: string[] = [];
      const CONC = 8;
      for (let i = 0; i < IDLE_AGENTS; i += CONC) {
        const batch = Array.from({ length: Math.min(CONC, IDLE_AGENTS - i) }, (_, j) =>
          startSh(ag, "sleep 600", `bench-idle-${i + j}`),
        );
        ids.push(...(await Promise.all(batch)));
      }
      const startMs = performance.now() - t0;
      await sleep(1500);
      const listed = await ag.agents.listAgents({ pageSize: 500, states: [AgentState.RUNNING] });
      const running = listed.agents.filter((a) => ids.includes(a.id)).length;
      if (running !== IDLE_AGENTS) throw new Error(`${running} of ${IDLE_AGENTS} idle agents are RUNNING`);
      const rss100 = rssKiB(gatePid);
      const t1 = performance.now();
      for (let i = 0; i < ids.length; i += CONC)
        await Promise.all(ids.slice(i, i + CONC).map((id) => deleteAgent(ag, id)));
      const deleteMs = performance.now() - t1;
      await sleep(1000);
      const rssAfter = rssKiB(gatePid);
      const left = (await ag.agents.listAgents({ pageSize: 500 })).agents.length;
      if (left !== 0) throw new Error(`${left} agents left after deleting`);
      const perAgent = (rss100 - rss0) / IDLE_AGENTS;
      console.log(`\nagentgate resident memory (VmRSS, MiB)`);
      console.log(
        table(
          ["state", "RSS MiB", "note"],
          [
            ["0 agents (after one warm-up agent)", (rss0 / 1024).toFixed(1), ""],
            [
              `${IDLE_AGENTS} idle agents`,
              (rss100 / 1024).toFixed(1),
              `+${((rss100 - rss0) / 1024).toFixed(1)} MiB, ${perAgent.toFixed(0)} KiB per agent; started in ${(startMs / 1000).toFixed(2)} s (8 at a time)`,
            ],
            ["after deleting them", (rssAfter / 1024).toFixed(1), `deleted in ${(deleteMs / 1000).toFixed(2)} s`],
          ],
        ),
      );
      results.memory = {
        rssKiB0: rss0,
        rssKiBIdle: rss100,
        rssKiBAfterDelete: rssAfter,
        perAgentKiB: Math.round(perAgent),
        startSeconds: round3(startMs / 1000),
        deleteSeconds: round3(deleteMs / 1000),
      };
    }

    // --- 1: throughput, interleaved rounds -------------------------------------------------------
    {
      const expected = base64PtyBytes(ZERO_BYTES);
      log(`throughput: head -c ${ZERO_BYTES} /dev/zero | base64 (${expected} bytes on the PTY), ${ROUNDS} rounds`);
      // A small warm-up of both paths (JIT, h2 session).
      await directFlood(1_000_000, base64PtyBytes(1_000_000));
      await attachFlood(ag, gatePid, 1_000_000, base64PtyBytes(1_000_000));
      const direct: FloodResult[] = [];
      const viaAttach: FloodResult[] = [];
      let short = 0;
      for (let r = 0; r < ROUNDS; r++) {
        // Alternate which path goes first, so drift hits both alike.
        const order = r % 2 === 0 ? ["direct", "attach"] : ["attach", "direct"];
        for (const which of order) {
          if (which === "direct") {
            const d = await directFlood(ZERO_BYTES, expected);
            if (d.bytes !== expected) short++;
            direct.push(d);
          } else viaAttach.push(await attachFlood(ag, gatePid, ZERO_BYTES, expected));
          log(
            `  round ${r + 1} ${which}: ${((which === "direct" ? direct : viaAttach).at(-1)!.ms / 1000).toFixed(2)} s`,
          );
        }
      }
      const mbps = (x: FloodResult) => x.bytes / 1e6 / (x.ms / 1000);
      const med = (xs: number[]) => summarize(xs).p50;
      const dM = med(direct.map(mbps));
      const aM = med(viaAttach.map(mbps));
      const ratio = aM / dM;
      const gateCpuPerMB = med(viaAttach.map((x) => x.gateCpuMs! / (x.bytes / 1e6)));
      console.log(`\nOutput throughput, ${(expected / 1e6).toFixed(1)} MB of base64 on the PTY (MB/s, per round)`);
      console.log(
        table(
          ["path", ...direct.map((_, i) => `round ${i + 1}`), "median", "ratio"],
          [
            ["node-pty direct, this process", ...direct.map((x) => mbps(x).toFixed(1)), dM.toFixed(1), "1.00"],
            [
              "Attach over h2c (PAUSE_AGENT)",
              ...viaAttach.map((x) => mbps(x).toFixed(1)),
              aM.toFixed(1),
              ratio.toFixed(2),
            ],
          ],
        ),
      );
      console.log(
        `CPU per MB: agentgate ${gateCpuPerMB.toFixed(1)} ms; bench process ${med(viaAttach.map((x) => x.selfCpuMs / (x.bytes / 1e6))).toFixed(1)} ms (Attach client) vs ${med(direct.map((x) => x.selfCpuMs / (x.bytes / 1e6))).toFixed(1)} ms (node-pty direct)`,
      );
      if (short)
        log(
          `  note: node-pty direct came up short at exit in ${short} of ${ROUNDS} rounds (tail loss; rate uses bytes received)`,
        );
      results.throughput = {
        ptyBytes: expected,
        directMBps: direct.map((x) => round3(mbps(x))),
        attachMBps: viaAttach.map((x) => round3(mbps(x))),
        directMedianMBps: round3(dM),
        attachMedianMBps: round3(aM),
        ratio: round3(ratio),
        agentgateCpuMsPerMB: round3(gateCpuPerMB),
        directShortRounds: short,
      };
      verdicts.push({
        target: "Attach throughput >= 0.7 x node-pty direct",
        value: `${ratio.toFixed(2)} (${aM.toFixed(1)} vs ${dM.toFixed(1)} MB/s)`,
        pass: ratio >= 0.7,
      });
    }

    // --- 2: keystroke echo, interleaved rounds ---------------------------------------------------
    {
      log(`echo: ${KEYSTROKES} keystrokes per path, 4 interleaved rounds`);
      const session = await attachEcho(ag);
      const direct: number[] = [];
      const viaAttach: number[] = [];
      const per = Math.ceil(KEYSTROKES / 4);
      try {
        for (let r = 0; r < 4; r++) {
          viaAttach.push(...(await session.run(per, r === 0 ? KEY_WARMUP : 0)));
          direct.push(...(await directEcho(per, r === 0 ? KEY_WARMUP : 20)));
        }
      } finally {
        await session.close();
      }
      const a = summarize(viaAttach);
      const d = summarize(direct);
      console.log(`\nKeystroke echo, one byte to \`cat\` in a raw terminal and back (ms)`);
      console.log(
        table(
          ["path", "n", "p50", "p90", "p99", "max"],
          [
            ["node-pty direct, this process", String(d.n), ms(d.p50), ms(d.p90), ms(d.p99), ms(d.max)],
            ["Attach input frame -> output frame, h2c", String(a.n), ms(a.p50), ms(a.p90), ms(a.p99), ms(a.max)],
          ],
        ),
      );
      results.echo = { direct: roundSummary(d), attach: roundSummary(a) };
      verdicts.push({
        target: "keystroke echo p50 < 1 ms through Attach",
        value: `${ms(a.p50)} ms (p99 ${ms(a.p99)} ms; node-pty direct p50 ${ms(d.p50)} ms)`,
        pass: a.p50 < 1,
      });
    }

    console.log("\nTargets");
    for (const v of verdicts) console.log(`${v.pass ? "PASS" : "MISS"}  ${v.target}: ${v.value}`);
    const t = verdicts.find((v) => v.target.startsWith("Attach throughput"));
    const e = verdicts.find((v) => v.target.startsWith("keystroke"));
    console.log(`target >= 0.7: ${t?.pass ? "PASS" : "MISS"}`);
    console.log(`target p50 < 1 ms: ${e?.pass ? "PASS" : "MISS"}`);
    results.verdicts = verdicts;
    results.seconds = Math.round((performance.now() - started) / 100) / 10;

    await Promise.all(children.map((c) => c.stop()));
    if (args["cpu-prof"]) {
      // Thread 0 of CPU.<date>.<time>.<pid>.<thread>.<seq>.cpuprofile is the main thread.
      const files = readdirSync(profDir).filter((f) => f.endsWith(".cpuprofile"));
      const main = files.find((f) => f.split(".")[4] === "0") ?? files[0];
      if (!main) log("no CPU profile was written");
      else {
        const kept = path.join(os.tmpdir(), `agentgate-bench-agents-${process.pid}.cpuprofile`);
        const text = readFileSync(path.join(profDir, main), "utf8");
        writeFileSync(kept, text);
        const summary = summarizeProfile(JSON.parse(text) as CpuProfile, 20, floodWindow);
        console.log(`\nagentgate CPU profile, Attach flood rounds (${kept})\n${formatProfile(summary)}`);
        results.cpuProfile = { file: kept, ...summary };
      }
    }
    reportFigures(gate, results, args.json, log);
    return args.strict && verdicts.some((v) => !v.pass) ? 1 : 0;
  } catch (err) {
    if (interrupted) return 130;
    log(`bench/agents failed: ${(err as Error).stack ?? String(err)}`);
    return 1;
  } finally {
    await Promise.allSettled(children.map((c) => c.stop()));
    rmSync(tmp, { recursive: true, force: true });
  }
}

process.exitCode = await main();
setTimeout(() => process.exit(process.exitCode), 200).unref();
