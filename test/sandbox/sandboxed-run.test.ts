/**
 * SandboxedRunner against the real bwrap (and the "none" driver), on pipes as endpoint handlers
 * run: stdin in, stdout out, exit code, signals, timeout, output cap, abort, network, hidden paths,
 * writes outside the workspace, CPU limit and concurrency. Runs as root (setpriv to a pool uid).
 */
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
  existsSync,
} from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GatewayError } from "../../src/errors/gateway-error.js";
import {
  NODE_ADDRESS_SPACE_BYTES,
  SandboxedRunner,
  type SandboxedRunResult,
  type SandboxedRunSpec,
} from "../../src/sandbox/sandboxed-run.js";
import { processesOfUid, UidPool } from "../../src/sandbox/uid-pool.js";
import { SystemTools } from "../../src/system/system-tools.js";

const NODE = "/usr/bin/node";
const MiB = 1024 * 1024;

/** Reads one JSON document on stdin, answers with it and a few facts about where it ran. */
const ECHO_JS = `
let s = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (d) => (s += d));
process.stdin.on("end", () => {
  const input = JSON.parse(s);
  process.stdout.write(JSON.stringify({
    echo: input,
    argv: process.argv.slice(2),
    cwd: process.cwd(),
    uid: process.getuid(),
    lang: process.env.LANG ?? null,
    extra: process.env.EXTRA ?? null,
    leak: process.env.SECRET_FROM_HOST ?? null,
  }));
});
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Live processes whose command line contains `marker` (for the "none" driver, which has no uid). */
function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const status = readFileSync(`/proc/${name}/status`, "utf8");
      if (/^State:\s+Z/m.test(status)) continue;
      if (readFileSync(`/proc/${name}/cmdline`, "utf8").split("\0").includes(marker)) pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

describe("SandboxedRunner", () => {
  // mkdtemp makes the base 0700: the runner must make it searchable for the sandbox uid itself.
  const base = mkdtempSync(path.join(os.tmpdir(), "agentgate-sbrun-"));
  const pool = new UidPool({ first: 236000, last: 236099 });
  const runner = new SandboxedRunner({ tools: new SystemTools(), uidPool: pool });
  let n = 0;
  const hostSecret = process.env.SECRET_FROM_HOST;

  beforeAll(() => {
    process.env.SECRET_FROM_HOST = "host-only";
  });
  afterAll(() => {
    if (hostSecret === undefined) delete process.env.SECRET_FROM_HOST;
    else process.env.SECRET_FROM_HOST = hostSecret;
    rmSync(base, { recursive: true, force: true });
  });

  /** A fresh workspace with handler.js in it. */
  function workspace(js = ECHO_JS): string {
    const ws = path.join(base, `ws-${n++}`);
    mkdirSync(ws);
    writeFileSync(path.join(ws, "handler.js"), js);
    return ws;
  }

  function runSpec(over: Partial<SandboxedRunSpec> & Pick<SandboxedRunSpec, "argv">): SandboxedRunSpec {
    return {
      driver: "bwrap",
      workspace: over.workspace ?? workspace(),
      stdin: "",
      limits: { addressSpaceBytes: NODE_ADDRESS_SPACE_BYTES },
      timeoutMs: 10_000,
      maxStdoutBytes: 64 * 1024,
      hiddenPaths: [],
      ...over,
    };
  }

  const run = (over: Partial<SandboxedRunSpec> & Pick<SandboxedRunSpec, "argv">, signal?: AbortSignal) =>
    runner.run(runSpec(over), signal);

  function json(r: SandboxedRunResult): Record<string, unknown> {
    expect(r.stderr).toBe("");
    expect(r.exitCode, r.stderr).toBe(0);
    return JSON.parse(r.stdout.toString("utf8")) as Record<string, unknown>;
  }

  it("runs a node handler under bwrap: JSON in, JSON out, as a pool uid in /workspace, env cleared", async () => {
    expect(statSync(base).mode & 0o001).toBe(0);
    const input = { hello: "wörld", n: [1, 2, 3], quote: 'it\'s "$(id)"' };
    const r = await run({
      argv: [NODE, "handler.js", "$(touch pwned)", "a b"],
      stdin: JSON.stringify(input),
      env: { EXTRA: "x y" },
    });
    const out = json(r);
    expect(out.echo).toEqual(input);
    expect(out.argv).toEqual(["$(touch pwned)", "a b"]);
    expect(out.cwd).toBe("/workspace");
    expect(out.uid).toBe(r.uid);
    expect(r.uid).toBeGreaterThanOrEqual(236000);
    expect(out.lang).toBe("C.UTF-8");
    expect(out.extra).toBe("x y");
    expect(out.leak).toBeNull();
    expect(r).toMatchObject({ signal: null, timedOut: false, outputLimitExceeded: false, aborted: false });
    // The runner made the workspace's parent searchable (o+x) for the sandbox uid, and released the uid.
    expect(statSync(base).mode & 0o001).toBe(0o001);
    expect(pool.inUse).toBe(0);
    expect(processesOfUid(r.uid!)).toEqual([]);
  });

  it("runs a sh handler (stdin piped through, binary stdin accepted)", async () => {
    const r = await run({
      argv: ["/bin/sh", "-c", 'read -r line; printf \'{"got":%s}\' "$line"'],
      stdin: new TextEncoder().encode('{"a":1}\n'),
    });
    expect(json(r)).toEqual({ got: { a: 1 } });
  });

  it("reports the exit code and stderr; a program that ignores a large stdin is not an error", async () => {
    const r = await run({
      argv: [NODE, "-e", "console.error('bad thing'); process.exit(3)"],
      stdin: "x".repeat(4 * MiB),
    });
    expect(r.exitCode).toBe(3);
    expect(r.signal).toBeNull();
    expect(r.stderr).toBe("bad thing\n");
    expect(r.stdout.length).toBe(0);
  });

  it("reports a signal, not bwrap's 128+N", async () => {
    const r = await run({ argv: ["/bin/sh", "-c", "kill -SEGV $$"] });
    expect(r.exitCode).toBeNull();
    expect(r.signal).toBe("SIGSEGV");
    const plain = await run({ argv: ["/bin/sh", "-c", "exit 42"] });
    expect(plain).toMatchObject({ exitCode: 42, signal: null });
  });

  it("a program that does not exist exits 127 under bwrap", async () => {
    const r = await run({ argv: ["/no/such/program"] });
    expect(r.exitCode).toBe(127);
    expect(r.stderr).toContain("/no/such/program");
  });

  it("times out a sleeper promptly and leaves no process of its uid", async () => {
    const t0 = performance.now();
    const r = await run({ argv: ["/bin/sh", "-c", "sleep 30 & sleep 30"], timeoutMs: 500 });
    const ms = performance.now() - t0;
    expect(r.timedOut).toBe(true);
    expect(r.signal).toBe("SIGKILL");
    expect(r.exitCode).toBeNull();
    expect(ms).toBeLessThan(3_000);
    expect(processesOfUid(r.uid!)).toEqual([]);

    const nodeSleeper = await run({ argv: [NODE, "-e", "setTimeout(() => {}, 30000)"], timeoutMs: 800 });
    expect(nodeSleeper.timedOut).toBe(true);
    expect(nodeSleeper.durationMs).toBeLessThan(3_000);
    expect(processesOfUid(nodeSleeper.uid!)).toEqual([]);
  });

  it("a background child left holding stdout does not keep the run open", async () => {
    const r = await run({ argv: ["/bin/sh", "-c", "sleep 30 & echo started"], timeoutMs: 10_000 });
    expect(r).toMatchObject({ exitCode: 0, timedOut: false });
    expect(r.stdout.toString()).toBe("started\n");
    expect(r.durationMs).toBeLessThan(3_000);
    expect(processesOfUid(r.uid!)).toEqual([]);
  });

  it("kills a program that writes more than maxStdoutBytes and keeps exactly the cap", async () => {
    const flood = "const b = Buffer.alloc(65536, 97); (function w() { process.stdout.write(b, w); })();";
    const r = await run({ argv: [NODE, "-e", flood], maxStdoutBytes: 1000 });
    expect(r.outputLimitExceeded).toBe(true);
    expect(r.stdout.length).toBe(1000);
    expect(r.stdout.toString()).toBe("a".repeat(1000));
    expect(r.signal).toBe("SIGKILL");
    expect(r.timedOut).toBe(false);
    expect(processesOfUid(r.uid!)).toEqual([]);

    const exact = await run({ argv: [NODE, "-e", "process.stdout.write('b'.repeat(1000))"], maxStdoutBytes: 1000 });
    expect(exact).toMatchObject({ exitCode: 0, outputLimitExceeded: false });
    expect(exact.stdout.length).toBe(1000);
  });

  it("keeps at most maxStderrBytes of stderr without failing the run", async () => {
    const r = await run({ argv: [NODE, "-e", "process.stderr.write('e'.repeat(200000)); process.stdout.write('{}')"] });
    expect(r).toMatchObject({ exitCode: 0, outputLimitExceeded: false });
    expect(r.stderr.length).toBe(64 * 1024);
    const small = await run({ argv: [NODE, "-e", "process.stderr.write('e'.repeat(5000))"], maxStderrBytes: 100 });
    expect(small.stderr).toBe("e".repeat(100));
  });

  it("has no network: a TCP server on the host's loopback is unreachable (and reachable without the sandbox)", async () => {
    let connections = 0;
    const server = net.createServer((s) => {
      connections++;
      s.on("error", () => undefined); // the client hangs up at once
      s.end("hello\n");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as net.AddressInfo).port;
    const js = `
      const net = require("node:net");
      const s = net.connect(${port}, "127.0.0.1");
      s.on("connect", () => { process.stdout.write(JSON.stringify({ connected: true })); s.destroy(); });
      s.on("error", (e) => process.stdout.write(JSON.stringify({ connected: false, code: e.code })));
    `;
    try {
      const r = await run({ argv: [NODE, "-e", js] });
      const out = json(r);
      expect(out.connected).toBe(false);
      expect(["ECONNREFUSED", "ENETUNREACH"]).toContain(out.code);
      await sleep(100);
      expect(connections).toBe(0);
      // The same program reaches the server without the sandbox: the check above can see a connection.
      const control = await run({ driver: "none", argv: [NODE, "-e", js] });
      expect(json(control).connected).toBe(true);
      await sleep(100);
      expect(connections).toBe(1);
    } finally {
      server.close();
    }
  });

  it("cannot read hidden paths: inside the workspace, inside a read-only extra, or elsewhere on the host", async () => {
    const ws = workspace();
    mkdirSync(path.join(ws, "secret"));
    writeFileSync(path.join(ws, "secret", "key"), "WS-SECRET");
    const extra = path.join(base, `extra-${n++}`);
    mkdirSync(path.join(extra, "hidden"), { recursive: true });
    writeFileSync(path.join(extra, "hidden", "key"), "EXTRA-SECRET");
    writeFileSync(path.join(extra, "visible.txt"), "visible");
    const elsewhere = mkdtempSync(path.join(os.tmpdir(), "agentgate-sbrun-hidden-"));
    writeFileSync(path.join(elsewhere, "key"), "HOST-SECRET");
    const files = [
      "/workspace/secret/key",
      path.join(extra, "hidden", "key"),
      path.join(elsewhere, "key"),
      path.join(extra, "visible.txt"),
    ];
    const js = `
      const fs = require("node:fs");
      const out = {};
      for (const f of ${JSON.stringify(files)}) {
        try { out[f] = fs.readFileSync(f, "utf8"); } catch (e) { out[f] = e.code; }
      }
      process.stdout.write(JSON.stringify(out));
    `;
    try {
      const r = await run({
        argv: [NODE, "-e", js],
        workspace: ws,
        readOnlyPaths: [extra],
        hiddenPaths: [path.join(ws, "secret"), path.join(extra, "hidden"), elsewhere],
      });
      const out = json(r);
      expect(JSON.stringify(out)).not.toMatch(/SECRET/);
      // An empty, mode-0000, read-only tmpfs over each hidden directory.
      expect(["EACCES", "ENOENT"]).toContain(out[files[0]]);
      expect(["EACCES", "ENOENT"]).toContain(out[files[1]]);
      expect(out[files[2]]).toBe("ENOENT"); // not in the sandbox at all
      expect(out[files[3]]).toBe("visible");
      // The hidden directory inside the workspace stays root's on the host.
      expect(statSync(path.join(ws, "secret", "key")).uid).toBe(0);
    } finally {
      rmSync(elsewhere, { recursive: true, force: true });
    }
  });

  it("cannot write outside the workspace", async () => {
    const extra = path.join(base, `extra-${n++}`);
    mkdirSync(extra);
    const tag = `agentgate-sbrun-${process.pid}-${n}`;
    const targets = [
      "/workspace/ok.txt",
      "/etc/" + tag,
      "/usr/" + tag,
      "/" + tag,
      "/workspace/../" + tag,
      path.join(extra, tag),
      path.join(os.tmpdir(), tag), // the sandbox's own /tmp (a tmpfs), not the host's
    ];
    const js = `
      const fs = require("node:fs");
      const out = {};
      for (const f of ${JSON.stringify(targets)}) {
        try { fs.writeFileSync(f, "x"); out[f] = "written"; } catch (e) { out[f] = e.code; }
      }
      process.stdout.write(JSON.stringify(out));
    `;
    const ws = workspace();
    const r = await run({ argv: [NODE, "-e", js], workspace: ws, readOnlyPaths: [extra] });
    const out = json(r);
    expect(out["/workspace/ok.txt"]).toBe("written");
    expect(readFileSync(path.join(ws, "ok.txt"), "utf8")).toBe("x");
    for (const t of targets.slice(1, 6)) expect(["EROFS", "EACCES", "EPERM"], t).toContain(out[t]);
    for (const host of ["/etc", "/usr", "/", extra, os.tmpdir()]) expect(existsSync(path.join(host, tag))).toBe(false);
  });

  it("a CPU spinner is stopped by its CPU-seconds limit", async () => {
    const r = await run({
      argv: [NODE, "-e", "for (;;) {}"],
      limits: { addressSpaceBytes: NODE_ADDRESS_SPACE_BYTES, cpuSeconds: 1 },
      timeoutMs: 15_000,
    });
    expect(["SIGXCPU", "SIGKILL"]).toContain(r.signal);
    expect(r.timedOut).toBe(false);
    expect(r.durationMs).toBeLessThan(10_000);
  });

  it("an abort signal kills the run; an already aborted signal starts nothing", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 300);
    const t0 = performance.now();
    const r = await run({ argv: ["/bin/sh", "-c", "sleep 30 & sleep 30"] }, ac.signal);
    expect(r.aborted).toBe(true);
    expect(r.timedOut).toBe(false);
    expect(r.signal).toBe("SIGKILL");
    expect(performance.now() - t0).toBeLessThan(3_000);
    expect(processesOfUid(r.uid!)).toEqual([]);

    const pre = await run({ argv: ["/bin/sh", "-c", "touch /workspace/ran"] }, AbortSignal.abort());
    expect(pre).toMatchObject({ aborted: true, exitCode: null, durationMs: 0 });
    expect(pool.inUse).toBe(0);
  });

  it("runs 4 handlers concurrently, each with its own uid and its own answer", async () => {
    const t0 = performance.now();
    const results = await Promise.all(
      [0, 1, 2, 3].map((i) => run({ argv: [NODE, "handler.js"], stdin: JSON.stringify({ i }) })),
    );
    const wall = performance.now() - t0;
    results.forEach((r, i) => expect(json(r).echo).toEqual({ i }));
    expect(new Set(results.map((r) => r.uid)).size).toBe(4);
    expect(pool.inUse).toBe(0);
    console.log(`4 concurrent bwrap node handlers: ${Math.round(wall)} ms wall`);
  });

  it("the none driver runs the same handlers (no isolation) with timeout and group kill", async () => {
    const r = await run({ driver: "none", argv: [NODE, "handler.js"], stdin: '{"a":1}', env: { EXTRA: "e" } });
    const out = json(r);
    expect(out.echo).toEqual({ a: 1 });
    expect(out.extra).toBe("e");
    expect(out.lang).toBe("C.UTF-8");
    expect(r.uid).toBeUndefined();

    const marker = `${31 + (process.pid % 1000) / 1000}`; // a sleep argument no other process has
    const slow = await run({
      driver: "none",
      argv: ["/bin/sh", "-c", `sleep ${marker} & sleep ${marker}`],
      timeoutMs: 500,
    });
    expect(slow.timedOut).toBe(true);
    expect(slow.durationMs).toBeLessThan(3_000);
    expect(processesWith(marker)).toEqual([]);

    const bg = await run({ driver: "none", argv: ["/bin/sh", "-c", `sleep ${marker} & echo started`] });
    expect(bg).toMatchObject({ exitCode: 0, timedOut: false });
    expect(bg.stdout.toString()).toBe("started\n");
    expect(bg.durationMs).toBeLessThan(3_000);
    expect(processesWith(marker)).toEqual([]);

    const failing = await run({ driver: "none", argv: ["/bin/sh", "-c", "echo oops >&2; kill -TERM $$"] });
    expect(failing).toMatchObject({ exitCode: null, signal: "SIGTERM", stderr: "oops\n" });
  });

  it("rejects what cannot start: nsjail, a missing program without limits under none, bad numbers", async () => {
    await expect(run({ driver: "nsjail", argv: [NODE] })).rejects.toMatchObject({ kind: "failed_precondition" });
    await expect(run({ driver: "none", argv: ["/no/such/program"], limits: {} })).rejects.toBeInstanceOf(GatewayError);
    await expect(run({ argv: [NODE], timeoutMs: 0 })).rejects.toMatchObject({ kind: "invalid_argument" });
    await expect(run({ argv: [NODE], workspace: path.join(base, "missing") })).rejects.toMatchObject({
      kind: "invalid_argument",
    });
    expect(pool.inUse).toBe(0);
  });

  it("measures a trivial node handler under bwrap and under none", { timeout: 60_000 }, async () => {
    const ws = workspace();
    const times: Record<"bwrap" | "none", number[]> = { bwrap: [], none: [] };
    for (let i = 0; i < 10; i++) {
      for (const driver of ["bwrap", "none"] as const) {
        const t0 = performance.now();
        const r = await run({ driver, argv: [NODE, "handler.js"], workspace: ws, stdin: "{}" });
        times[driver].push(performance.now() - t0);
        expect(r.exitCode).toBe(0);
      }
    }
    const b = median(times.bwrap);
    const none = median(times.none);
    console.log(
      `trivial node handler, median of 10: bwrap ${b.toFixed(1)} ms, none ${none.toFixed(1)} ms ` +
        `(min ${Math.min(...times.bwrap).toFixed(1)} / ${Math.min(...times.none).toFixed(1)})`,
    );
    expect(b).toBeLessThan(2_000);
  });
});
