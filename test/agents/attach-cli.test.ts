/**
 * The agent's terminal from the outside: `agentgate attach` under a real terminal (node-pty plays
 * the user's terminal), `agentgate agents`, and the SSE and WebSocket paths, which must deliver the
 * same bytes as the Attach RPC.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import path from "node:path";
import * as pty from "node-pty";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createAgentgateClients, SandboxDriver, type AgentgateClients } from "../../clients/index.js";
import { parseSSE } from "../support/openai-spec.js";
import { startGateway, type GatewayHarness } from "../support/gateway-harness.js";

const run = promisify(execFile);
const ROOT = path.resolve(import.meta.dirname, "../..");
const BIN = path.join(ROOT, "bin/agentgate.js");

let h: GatewayHarness;
let ag: AgentgateClients;

beforeAll(async () => {
  h = await startGateway();
  ag = createAgentgateClients({ baseUrl: h.url, httpVersion: "2" });
});
afterAll(() => h?.close());

async function startAgent(argv: string[]) {
  const res = await ag.agents.startAgent({ argv, sandbox: SandboxDriver.NONE, size: { cols: 80, rows: 24 } });
  return res.agent!.id;
}

/** Collects a PTY's output and resolves when `pattern` has appeared. */
function terminal(file: string, args: string[]) {
  const term = pty.spawn(file, args, { cols: 100, rows: 30, cwd: ROOT, env: { ...process.env, NO_COLOR: "1" } });
  let out = "";
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  term.onData((d) => {
    out += d;
    for (const w of [...waiters]) if (w.re.test(out)) (waiters.splice(waiters.indexOf(w), 1), w.resolve());
  });
  const exited = new Promise<{ exitCode: number }>((resolve) => term.onExit(resolve));
  return {
    term,
    exited,
    get output() {
      return out;
    },
    waitFor(re: RegExp, ms = 10_000): Promise<void> {
      if (re.test(out)) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`timed out waiting for ${re}; got ${JSON.stringify(out)}`)), ms);
        waiters.push({ re, resolve: () => (clearTimeout(t), resolve()) });
      });
    },
  };
}

describe("agentgate attach", () => {
  it("bridges a real terminal to the agent: typing echoes, Ctrl-] detaches and the agent keeps running", async () => {
    const id = await startAgent(["cat"]);
    const t = terminal(process.execPath, [BIN, "attach", id, "--url", h.url]);
    await t.waitFor(/attached to/);
    t.term.write("hello through attach\r");
    // cat echoes the line back: the terminal driver's echo plus cat's own copy.
    await t.waitFor(/hello through attach[\s\S]*hello through attach/);
    t.term.write("\x1d");
    expect((await t.exited).exitCode).toBe(0);
    expect(t.output).toMatch(/detached from/);
    const after = await ag.agents.getAgent({ agentId: id });
    expect(after.agent!.exitStatus).toBeUndefined(); // still running
    await ag.agents.deleteAgent({ agentId: id });
  });

  it("exits with the agent's exit code when the agent ends while attached", async () => {
    const id = await startAgent(["sh", "-c", "read line; exit 7"]);
    const t = terminal(process.execPath, [BIN, "attach", id, "--url", h.url]);
    await t.waitFor(/attached to/);
    t.term.write("go\r");
    expect((await t.exited).exitCode).toBe(7);
    expect(t.output).toMatch(/ended: exit code 7/);
  });

  it("agentgate agents lists them", async () => {
    const id = await startAgent(["sleep", "30"]);
    const { stdout } = await run(process.execPath, [BIN, "agents", "--url", h.url], { cwd: ROOT });
    expect(stdout).toMatch(/^ID\s+STATE/);
    expect(stdout).toContain(id);
    expect(stdout).toMatch(new RegExp(`${id}\\s+running`));
    await ag.agents.deleteAgent({ agentId: id });
  });

  it("fails clearly for an unknown agent", async () => {
    const t = terminal(process.execPath, [BIN, "attach", "no-such-agent", "--url", h.url]);
    expect((await t.exited).exitCode).toBe(1);
    expect(t.output).toMatch(/attach failed: .*not_found|attach failed: .*no agent/i);
  });
});

describe("SSE and WebSocket paths", () => {
  async function runToEnd(argv: string[]) {
    const id = await startAgent(argv);
    for (let i = 0; i < 200; i++) {
      const a = (await ag.agents.getAgent({ agentId: id })).agent!;
      if (a.exitStatus) break;
      await new Promise((r) => setTimeout(r, 25));
    }
    return id;
  }
  const program = [
    "sh",
    "-c",
    "i=0; while [ $i -lt 300 ]; do echo line-$i-$(printf 'x%.0s' 1 2 3 4 5 6 7 8 9 10); i=$((i+1)); done",
  ];

  it("SSE delivers the same bytes as ReadLogs, offsets contiguous, then exit; Last-Event-ID resumes", async () => {
    const id = await runToEnd(program);
    const logs = await ag.agents.readLogs({ agentId: id, start: { case: "offset", value: 0n }, maxBytes: 4_000_000 });
    const res = await fetch(`${h.url}/v1/agents/${id}/stream`);
    expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
    const { events } = parseSSE(await res.text());
    expect(events[0]!.event).toBe("hello");
    const data = events.filter((e) => e.event === "replay" || e.event === "data").map((e) => JSON.parse(e.data));
    let next = 0;
    for (const d of data) {
      expect(d.offset).toBe(next);
      next += Buffer.from(d.data, "base64").length;
    }
    const bytes = Buffer.concat(data.map((d) => Buffer.from(d.data, "base64")));
    expect(bytes.equals(Buffer.from(logs.data))).toBe(true);
    expect(events.at(-1)!.event).toBe("exit");
    expect(JSON.parse(events.at(-1)!.data).exitCode).toBe(0);

    const half = Math.floor(bytes.length / 2);
    const resumed = await fetch(`${h.url}/v1/agents/${id}/stream`, { headers: { "last-event-id": String(half) } });
    const tail = parseSSE(await resumed.text())
      .events.filter((e) => e.event === "replay" || e.event === "data")
      .map((e) => Buffer.from(JSON.parse(e.data).data, "base64"));
    expect(Buffer.concat(tail).equals(bytes.subarray(half))).toBe(true);
  });

  it("the WebSocket carries output as binary frames and input, resize and signals back", async () => {
    const id = await startAgent([
      "sh",
      "-c",
      "trap 'echo WINCH $(stty size)' WINCH; while read l; do echo got:$l; done",
    ]);
    const ws = new WebSocket(`${h.url.replace("http", "ws")}/v1/agents/${id}/ws`);
    let text = "";
    const controls: Record<string, unknown>[] = [];
    ws.on("message", (d: Buffer, binary: boolean) => {
      if (binary) text += d.toString("utf8");
      else controls.push(JSON.parse(d.toString("utf8")) as Record<string, unknown>);
    });
    await new Promise((r) => ws.once("open", r));
    const until = async (cond: () => boolean) => {
      for (let i = 0; i < 400 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
      expect(cond()).toBe(true);
    };
    await until(() => controls.some((c) => c.type === "opened"));
    ws.send(Buffer.from("ping\r"), { binary: true });
    await until(() => text.includes("got:ping"));
    ws.send(JSON.stringify({ type: "resize", cols: 120, rows: 40 }));
    await until(() => text.includes("WINCH 40 120"));
    ws.send(JSON.stringify({ type: "signal", signal: "TERM" }));
    await until(() => controls.some((c) => c.type === "exit"));
    ws.close();
  });

  it("the WebSocket needs the token like every route: 401 without it, open with it", async () => {
    const g = await startGateway({ env: { AUTH_TOKEN: "agents-ws-secret" }, ollama: h.ollama });
    try {
      const a = await g.gate.agents.start({ argv: ["cat"], sandbox: "none" });
      const outcome = (headers: Record<string, string>) =>
        new Promise<string>((resolve) => {
          const ws = new WebSocket(`${g.url.replace("http", "ws")}/v1/agents/${a.id}/ws`, { headers });
          ws.on("unexpected-response", (_req, res) => resolve(`status ${res.statusCode}`));
          ws.on("open", () => (ws.close(), resolve("open")));
          ws.on("error", (e) => resolve(`error ${e.message}`));
        });
      expect(await outcome({})).toBe("status 401");
      expect(await outcome({ authorization: "Bearer wrong-token-value" })).toBe("status 401");
      expect(await outcome({ authorization: "Bearer agents-ws-secret" })).toBe("open");
      await g.gate.agents.delete(a.id, 100);
    } finally {
      await g.close();
    }
  });

  it("an unknown agent closes the WebSocket with 4404 and says why", async () => {
    const ws = new WebSocket(`${h.url.replace("http", "ws")}/v1/agents/nope/ws`);
    const closed = await new Promise<{ code: number }>((resolve) => ws.on("close", (code) => resolve({ code })));
    expect(closed.code).toBe(4404);
  });
});
