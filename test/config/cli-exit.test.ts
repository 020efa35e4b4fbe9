// `agentgate serve` as a real process (execFile, no shell): a bad setting or an unsafe bind is one
// stderr line starting with "agentgate:" and exit code 2, with nothing started or written; a good
// start answers /healthz and exits 0 on SIGTERM.
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startOllamaDouble, type OllamaDouble } from "../doubles/ollama-double.js";

const ROOT = path.resolve(import.meta.dirname, "../..");
const BIN = path.join(ROOT, "bin/agentgate.js");

let tmp: string;
beforeAll(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), "agentgate-cli-"));
});
afterAll(() => {
  rmSync(tmp, { recursive: true, force: true });
});

/** Only what the process needs: nothing from the test runner's environment leaks in. */
function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  return { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: process.env.HOME ?? tmp, ...extra };
}

function run(
  args: string[],
  env: Record<string, string>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [BIN, ...args],
      { cwd: ROOT, env: cleanEnv(env), timeout: 20_000 },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: unknown }).code as number | null) : 0;
        resolve({ code: typeof code === "number" ? code : null, stdout, stderr });
      },
    );
  });
}

describe("agentgate serve refuses bad settings", () => {
  const cases: { name: string; args: string[]; env: Record<string, string>; match: RegExp }[] = [
    { name: "bad BIND", args: ["serve"], env: { BIND: "not-an-address" }, match: /invalid BIND "not-an-address"/ },
    {
      name: "bad --bind flag",
      args: ["serve", "--bind", "127.0.0.1:70000"],
      env: {},
      match: /invalid --bind .*0-65535/,
    },
    { name: "bad UPSTREAM", args: ["serve"], env: { UPSTREAM: "ftp://ollama" }, match: /invalid UPSTREAM/ },
    {
      name: "unsafe bind",
      args: ["serve"],
      env: { BIND: "0.0.0.0:0" },
      match: /refusing to serve 0\.0\.0\.0:0 without AUTH_TOKEN/,
    },
    { name: "unknown flag", args: ["serve", "--no-such-flag"], env: {}, match: /--no-such-flag/ },
    {
      name: "short AUTH_TOKEN (not echoed)",
      args: ["serve"],
      env: { AUTH_TOKEN: "tiny" },
      match: /invalid AUTH_TOKEN "<redacted>"/,
    },
    { name: "unknown command", args: ["frobnicate"], env: {}, match: /unknown command "frobnicate"/ },
  ];

  it("each exits 2 with exactly one stderr line starting with agentgate:, and writes nothing", async () => {
    const results = await Promise.all(
      cases.map(async (c, i) => {
        const dataDir = path.join(tmp, `refused-${i}`);
        return { c, dataDir, r: await run(c.args, { DATA_DIR: dataDir, UPSTREAM: "http://127.0.0.1:9", ...c.env }) };
      }),
    );
    for (const { c, dataDir, r } of results) {
      expect(r.code, `${c.name}: ${r.stderr}`).toBe(2);
      const lines = r.stderr.split("\n").filter((l) => l.length > 0);
      expect(lines, c.name).toHaveLength(1);
      expect(lines[0], c.name).toMatch(/^agentgate: /);
      expect(lines[0], c.name).toMatch(c.match);
      expect(r.stdout, c.name).toBe("");
      expect(existsSync(dataDir), `${c.name} created DATA_DIR`).toBe(false);
      if (c.env.AUTH_TOKEN) expect(r.stderr).not.toContain(c.env.AUTH_TOKEN);
    }
  });
});

describe("agentgate serve starts and stops", () => {
  let ollama: OllamaDouble;
  beforeAll(async () => {
    ollama = await startOllamaDouble();
  });
  afterAll(async () => {
    await ollama?.close();
  });

  it("serves /healthz on BIND 127.0.0.1:0 with a fresh DATA_DIR, then exits 0 on SIGTERM", async () => {
    const dataDir = path.join(tmp, "fresh");
    const child = spawn(process.execPath, [BIN, "serve"], {
      cwd: ROOT,
      env: cleanEnv({ DATA_DIR: dataDir, BIND: "127.0.0.1:0", UPSTREAM: ollama.url, SHUTDOWN_GRACE_MS: "1000" }),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal })),
    );
    try {
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no "agentgate listening" line in 15 s; stderr: ${stderr}`)),
          15_000,
        );
        const check = () => {
          for (const line of stdout.split("\n")) {
            if (!line.startsWith("{")) continue;
            const rec = JSON.parse(line) as { msg?: string; url?: string };
            if (rec.msg === "agentgate listening" && rec.url) {
              clearTimeout(timer);
              child.stdout.off("data", check);
              resolve(rec.url);
            }
          }
        };
        child.stdout.on("data", check);
        void exited.then(({ code }) => reject(new Error(`exited with ${code} before listening; stderr: ${stderr}`)));
      });
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(url).not.toMatch(/:0$/);
      const health = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(5_000) });
      expect(health.status).toBe(200);
      const report = (await health.json()) as { status: string; database: { ok: boolean; kind: string } };
      expect(report.status).toBe("ok");
      expect(report.database).toMatchObject({ ok: true, kind: "pglite" });
      expect(existsSync(dataDir)).toBe(true);

      const stopAt = Date.now();
      child.kill("SIGTERM");
      const { code, signal } = await exited;
      expect({ code, signal }).toEqual({ code: 0, signal: null });
      expect(Date.now() - stopAt).toBeLessThan(5_000);
      expect(stderr).toBe("");
      const lines = stdout
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as { msg?: string; signal?: string });
      expect(lines.some((l) => l.msg === "shutting down" && l.signal === "SIGTERM")).toBe(true);
      // The port is closed once the process is gone.
      await expect(fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) })).rejects.toThrow();
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
  }, 30_000);
});
