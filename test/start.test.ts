// `npm start` as a user runs it: `node bin/agentgate.js serve` (tsx compiles the sources on start)
// with BIND, DATA_DIR and UPSTREAM from the environment. Checks /healthz, SIGTERM → exit 0,
// with open streams, a restart on the same DATA_DIR (the database is reopened), and that a second process on a
// DATA_DIR in use fails with exit code 2 and one line naming the directory.
import { execFile, type ChildProcess } from "node:child_process";
import fs from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Code, ConnectError } from "@connectrpc/connect";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgentgateClients, HealthCheckResponse_ServingStatus as Serving, Role } from "../clients/index.js";
import { startOllamaDouble, type OllamaDouble } from "./doubles/ollama-double.js";

const ROOT = path.resolve(import.meta.dirname, "..");
const BIN = path.join(ROOT, "bin", "agentgate.js");

interface Running {
  child: ChildProcess;
  url: string;
  stdout: () => string;
  stderr: () => string;
  /** Resolves with the exit code (or the signal name) once the process is gone. */
  exited: Promise<number | string>;
}

let ollama: OllamaDouble;
let dataDir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  ollama = await startOllamaDouble();
  dataDir = await fs.mkdtemp(path.join(os.tmpdir(), "agentgate-start-"));
});

afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  await ollama?.close();
  if (dataDir) await fs.rm(dataDir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Only what the gateway needs: no settings leak in from the test runner's environment. */
function environment(port: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    BIND: `127.0.0.1:${port}`,
    DATA_DIR: dataDir,
    UPSTREAM: ollama.url,
    LOG_LEVEL: "info",
    SHUTDOWN_GRACE_MS: "1000",
  };
  if (process.env.AGENTGATE_CACHE_DIR) env.AGENTGATE_CACHE_DIR = process.env.AGENTGATE_CACHE_DIR;
  return env;
}

async function serve(): Promise<Running> {
  const port = await freePort();
  let out = "";
  let err = "";
  const child = execFile(process.execPath, [BIN, "serve"], {
    cwd: ROOT,
    env: environment(port),
    maxBuffer: 16 * 1024 * 1024,
  });
  children.push(child);
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | string>((resolve) =>
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown")),
  );
  return { child, url: `http://127.0.0.1:${port}`, stdout: () => out, stderr: () => err, exited };
}

interface HealthReport {
  status: string;
  database: { ok: boolean; kind: string };
  backends: { name: string; kind: string; ok: boolean; detail: string }[];
}

/** Polls /healthz until it answers 200; fails early if the process exits. */
async function waitHealthy(p: Running, timeoutMs = 30_000): Promise<HealthReport> {
  const deadline = Date.now() + timeoutMs;
  let exitCode: number | string | undefined;
  void p.exited.then((code) => (exitCode = code));
  let last = "";
  while (Date.now() < deadline) {
    if (exitCode !== undefined)
      throw new Error(
        `agentgate exited with ${exitCode} before /healthz answered:\n${p.stderr()}\n${p.stdout().slice(-2_000)}`,
      );
    try {
      const res = await fetch(`${p.url}/healthz`, { signal: AbortSignal.timeout(2_000) });
      if (res.status === 200) return (await res.json()) as HealthReport;
      last = `HTTP ${res.status}`;
    } catch (e) {
      last = (e as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`/healthz did not answer 200 within ${timeoutMs} ms (last: ${last})\n${p.stderr()}`);
}

async function exitWithin(p: Running, ms: number): Promise<number | string> {
  return Promise.race([
    p.exited,
    new Promise<never>((_, reject) =>
      setTimeout(() => reject(new Error(`still running ${ms} ms later\n${p.stderr()}`)), ms),
    ),
  ]);
}

/** The `database ready` log line (pino JSON on stdout). */
function databaseReady(p: Running): Record<string, unknown> | undefined {
  for (const line of p.stdout().split("\n")) {
    if (!line.startsWith("{")) continue;
    const entry = JSON.parse(line) as Record<string, unknown>;
    if (entry.msg === "database ready") return entry;
  }
  return undefined;
}

describe("agentgate serve (npm start)", () => {
  it("serves /healthz, refuses a second process on the same DATA_DIR, stops on SIGTERM and restarts on the same data", async () => {
    // First start on a fresh DATA_DIR.
    const first = await serve();
    const health = await waitHealthy(first);
    expect(health.status).toBe("ok");
    expect(health.database).toMatchObject({ ok: true, kind: "pglite" });
    expect(health.backends).toEqual([
      expect.objectContaining({ name: "ollama", kind: "ollama", ok: true }),
      expect.objectContaining({ name: "codex", kind: "codex" }),
    ]);
    expect(databaseReady(first)).toMatchObject({ kind: "pglite", location: dataDir });
    expect(databaseReady(first)?.source).not.toBe("existing");
    await fs.access(path.join(dataDir, "db.lock"));

    // A second process on the same DATA_DIR while the first runs: exit 2, one clear line.
    const second = await serve();
    expect(await exitWithin(second, 30_000)).toBe(2);
    const lines = second.stderr().trim().split("\n");
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^agentgate: /);
    expect(lines[0]).toContain(dataDir);
    expect(lines[0]).toMatch(/in use by another process/);
    // The first one is unharmed.
    expect((await fetch(`${first.url}/healthz`)).status).toBe(200);

    // SIGTERM with streams open (SHUTDOWN_GRACE_MS=1000): a health Watch sees NOT_SERVING and ends
    // cleanly; a chat stream still running at the end of the grace period ends with `unavailable`.
    const ag = createAgentgateClients({ baseUrl: first.url, protocol: "grpc" });
    const statuses: Serving[] = [];
    const watch = (async () => {
      for await (const r of ag.health.watch({ service: "" })) statuses.push(r.status);
      return "ended";
    })().catch((e: unknown) => e);
    ollama.enqueue({ content: Array.from({ length: 40 }, (_, i) => `w${i} `), chunkDelayMs: 100 });
    const deltas: string[] = [];
    const chat = (async () => {
      for await (const f of ag.completion.chatStream({
        model: "llama3.2:3b",
        messages: [{ role: Role.USER, content: "long" }],
      }))
        deltas.push(f.contentDelta);
    })().then(
      () => undefined,
      (e: unknown) => e,
    );
    await expect.poll(() => statuses.length > 0 && deltas.length > 0, { timeout: 5_000 }).toBe(true);
    const stopping = Date.now();
    first.child.kill("SIGTERM");
    expect(await exitWithin(first, 5_000)).toBe(0);
    expect(await watch).toBe("ended"); // without an error
    expect(statuses).toEqual([Serving.SERVING, Serving.NOT_SERVING]);
    const chatErr = await chat;
    expect(chatErr).toBeInstanceOf(ConnectError);
    expect((chatErr as ConnectError).code).toBe(Code.Unavailable);
    expect((chatErr as ConnectError).rawMessage).toMatch(/shutting down/);
    expect(Date.now() - stopping).toBeGreaterThanOrEqual(900); // the stream had its grace period
    expect(deltas.length).toBeLessThan(40);
    await expect(fs.access(path.join(dataDir, "db.lock"))).rejects.toThrow();

    // Restart on the same DATA_DIR: the existing database is reopened.
    const third = await serve();
    const again = await waitHealthy(third);
    expect(again.database).toMatchObject({ ok: true, kind: "pglite" });
    expect(databaseReady(third)).toMatchObject({ kind: "pglite", source: "existing", migrationsApplied: [] });
    third.child.kill("SIGTERM");
    expect(await exitWithin(third, 5_000)).toBe(0);
    expect(third.stderr()).toBe("");
  }, 120_000);
});
