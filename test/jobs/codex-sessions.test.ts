/**
 * CodexSessionReader over real Codex 0.169.0 rollouts (test/fixtures/codex-sessions, see its README):
 * thread A ran one exec turn and one `exec resume` turn (both in one file), thread B one exec turn.
 * node:fs/promises is wrapped to count calls, so "touches nothing" and "cached" are checked directly.
 */
import {
  appendFileSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";

const fsCalls = vi.hoisted(() => ({ open: 0, readdir: 0, realpath: 0, lstat: 0 }));
vi.mock("node:fs/promises", async (importOriginal) => {
  const real = await importOriginal<typeof import("node:fs/promises")>();
  const counted =
    <K extends keyof typeof fsCalls>(name: K) =>
    (...args: unknown[]) => {
      fsCalls[name]++;
      return (real[name] as (...a: unknown[]) => unknown)(...args);
    };
  return {
    ...real,
    default: real,
    open: counted("open"),
    readdir: counted("readdir"),
    realpath: counted("realpath"),
    lstat: counted("lstat"),
  };
});

const { CodexSessionReader, MAX_ROLLOUT_READ_BYTES } = await import("../../src/jobs/codex-sessions.js");

const FIXTURES = path.resolve(import.meta.dirname, "../fixtures/codex-sessions");
const A = "01a2021f-cbc3-79d2-9f9b-c1ee619b0748";
const B = "01a2021f-d03c-7c83-8620-ada431c958ba";
const A_FILE = `rollout-2026-11-22T07-19-28-${A}.jsonl`;
const B_FILE = `rollout-2026-11-22T07-19-29-${B}.jsonl`;
const DAY = "sessions/2026/11/22";
const CWD = "/work/main/node_modules/.cache/agentgate-fixture-ws";

let tmp: string;
let home: string;

beforeEach(() => {
  tmp = mkdtempSync(path.join(os.tmpdir(), "codex-sessions-"));
  home = path.join(tmp, "home");
});
afterEach(() => rmSync(tmp, { recursive: true, force: true }));

/** Copies fixtures into `<home>/sessions/YYYY/MM/DD/` as Codex lays them out. */
function install(...names: string[]) {
  for (const name of names) {
    const [, y, m, d] = /^rollout-(\d{4})-(\d{2})-(\d{2})T/.exec(name)!;
    const dir = path.join(home, "sessions", y, m, d);
    mkdirSync(dir, { recursive: true });
    copyFileSync(path.join(FIXTURES, name), path.join(dir, name));
  }
}

const fixtureLines = (name: string) => readFileSync(path.join(FIXTURES, name), "utf8").trimEnd().split("\n");
const resetCalls = () => Object.keys(fsCalls).forEach((k) => (fsCalls[k as keyof typeof fsCalls] = 0));
const totalCalls = () => Object.values(fsCalls).reduce((a, b) => a + b, 0);

describe("CodexSessionReader.list", () => {
  it("summarises each thread, newest update first", async () => {
    install(A_FILE, B_FILE);
    const list = await new CodexSessionReader(home).list({ limit: 10 });
    // A was created before B but resumed after it.
    expect(list.map((s) => s.id)).toEqual([A, B]);
    expect(list[0]).toEqual({
      id: A,
      title: "Create a.txt containing hi.",
      model: "qwen3:8b",
      cwd: CWD,
      createdAt: new Date("2026-11-22T07:19:28.127Z"),
      updatedAt: new Date("2026-11-22T07:19:29.844Z"),
      rolloutFile: path.join(home, DAY, A_FILE),
      lastAgentMessage: "It contains hi.",
      usage: {
        inputTokens: 3393,
        cachedInputTokens: 0,
        cacheWriteInputTokens: 0,
        outputTokens: 12,
        reasoningOutputTokens: 0,
      },
      messageCount: 4,
    });
    expect(list[1]).toMatchObject({
      id: B,
      title: "Say hello.",
      createdAt: new Date("2026-11-22T07:19:29.093Z"),
      updatedAt: new Date("2026-11-22T07:19:29.201Z"),
      lastAgentMessage: "Hello!",
      usage: { inputTokens: 700, outputTokens: 2 },
      messageCount: 2,
    });
  });

  it("applies limit and updatedAfter (inclusive)", async () => {
    install(A_FILE, B_FILE);
    const r = new CodexSessionReader(home);
    expect((await r.list({ limit: 1 })).map((s) => s.id)).toEqual([A]);
    expect(await r.list({ limit: 0 })).toEqual([]);
    expect((await r.list({ limit: 10, updatedAfter: new Date("2026-11-22T07:19:29.500Z") })).map((s) => s.id)).toEqual([
      A,
    ]);
    expect((await r.list({ limit: 10, updatedAfter: new Date("2026-11-22T07:19:29.201Z") })).map((s) => s.id)).toEqual([
      A,
      B,
    ]);
    expect(await r.list({ limit: 10, updatedAfter: new Date("2026-11-22T07:19:29.845Z") })).toEqual([]);
  });

  it("caches summaries by (path, size, mtime) and re-reads a file that grew", async () => {
    install(A_FILE, B_FILE);
    const r = new CodexSessionReader(home);
    await r.list({ limit: 10 });
    resetCalls();
    await r.list({ limit: 10 });
    expect(fsCalls.open).toBe(0);

    const bLines = fixtureLines(B_FILE);
    const done = JSON.parse(bLines.at(-1)!);
    done.timestamp = "2026-11-22T08:00:00.000Z";
    done.payload.last_agent_message = "Appended.";
    appendFileSync(path.join(home, DAY, B_FILE), `${JSON.stringify(done)}\n`);
    const list = await r.list({ limit: 10 });
    expect(fsCalls.open).toBe(1);
    expect(list[0]).toMatchObject({ id: B, lastAgentMessage: "Appended.", updatedAt: new Date(done.timestamp) });
  });

  it("returns [] for an empty sessions directory or a missing CODEX_HOME", async () => {
    mkdirSync(path.join(home, "sessions"), { recursive: true });
    expect(await new CodexSessionReader(home).list({ limit: 10 })).toEqual([]);
    const missing = new CodexSessionReader(path.join(tmp, "nope"));
    expect(await missing.list({ limit: 10 })).toEqual([]);
    expect(await missing.get(A, {})).toBeUndefined();
  });
});

describe("CodexSessionReader.get", () => {
  it("returns the conversation in order, without Codex's injected context", async () => {
    install(A_FILE, B_FILE);
    const s = (await new CodexSessionReader(home).get(A, {}))!;
    expect(s.messages.map((m) => [m.role, m.text, m.time?.toISOString()])).toEqual([
      [
        "developer",
        expect.stringMatching(/^<skills_instructions>\n## Skills\n[^]*\n<permissions instructions>\n/),
        "2026-11-22T07:19:28.222Z",
      ],
      ["user", "Create a.txt containing hi.\nSecond line of the prompt.", "2026-11-22T07:19:28.233Z"],
      ["assistant", "Created a.txt with hi.", "2026-11-22T07:19:28.753Z"],
      [
        "developer",
        expect.stringMatching(/^<permissions instructions>\nFilesystem sandboxing/),
        "2026-11-22T07:19:29.771Z",
      ],
      ["user", "What does a.txt contain?", "2026-11-22T07:19:29.778Z"],
      ["assistant", "It contains hi.", "2026-11-22T07:19:29.823Z"],
    ]);
    expect(s.messages.some((m) => m.text.includes("<environment_context>"))).toBe(false);
    expect(s).toMatchObject({
      id: A,
      title: "Create a.txt containing hi.",
      lastAgentMessage: "It contains hi.",
      messageCount: 4,
      usage: { inputTokens: 3393, outputTokens: 12 },
      rolloutFile: path.join(home, DAY, A_FILE),
    });
    expect(s.events).toEqual([]);
  });

  it("returns the tail of messages and of the raw events", async () => {
    install(A_FILE);
    const r = new CodexSessionReader(home);
    const s = (await r.get(A.toUpperCase(), { tailMessages: 2, includeEvents: true }))!;
    expect(s.id).toBe(A);
    expect(s.messages.map((m) => [m.role, m.text])).toEqual([
      ["user", "What does a.txt contain?"],
      ["assistant", "It contains hi."],
    ]);
    const lines = fixtureLines(A_FILE).map((l) => JSON.parse(l));
    expect(s.events).toHaveLength(lines.length);
    expect(s.events[0]).toMatchObject({ type: "session_meta", payload: { id: A, cli_version: "0.169.0" } });
    expect(s.events.map((e) => e.type)).toEqual(lines.map((l) => l.type));

    const last = (await r.get(A, { includeEvents: true, tailEvents: 1, tailMessages: 0 }))!;
    expect(last.messages).toEqual([]);
    expect(last.events).toEqual([
      {
        time: new Date("2026-11-22T07:19:29.844Z"),
        type: "event_msg",
        payload: expect.objectContaining({
          type: "task_complete",
          last_agent_message: "It contains hi.",
          duration_ms: 78,
        }),
      },
    ]);
    expect(await r.findRollout(A)).toBe(path.join(home, DAY, A_FILE));
  });

  it("touches nothing for invalid ids and answers undefined for unknown ones", async () => {
    install(A_FILE);
    const r = new CodexSessionReader(home);
    resetCalls();
    for (const id of ["../../etc/passwd", "not-a-uuid", `${A}/..`, `../${A}`, "", `${A}\0`]) {
      expect(await r.get(id, { includeEvents: true })).toBeUndefined();
      expect(await r.findRollout(id)).toBeUndefined();
    }
    expect(totalCalls()).toBe(0);
    expect(await r.get("00000000-0000-4000-8000-000000000000", {})).toBeUndefined();
  });

  it("skips malformed lines in the middle of a rollout", async () => {
    install(B_FILE);
    const lines = fixtureLines(B_FILE);
    const broken = [
      ...lines.slice(0, 8),
      "{not json",
      "[1,2,3]",
      '{"type":42}',
      "",
      '{"timestamp":"yesterday","type":"event_msg","payload":"oops"}',
      ...lines.slice(8),
      '{"timestamp":"2026-11-22T07:19:30.000Z","type":"event_msg","pay', // torn last line
    ];
    writeFileSync(path.join(home, DAY, B_FILE), broken.join("\n"));
    const r = new CodexSessionReader(home);
    const s = (await r.get(B, { includeEvents: true }))!;
    expect(s.messages.filter((m) => m.role !== "developer").map((m) => [m.role, m.text])).toEqual([
      ["user", "Say hello."],
      ["assistant", "Hello!"],
    ]);
    expect(s.events).toHaveLength(lines.length + 1); // the valid line with an odd timestamp and payload
    expect(s.events.find((e) => e.time === undefined)).toEqual({ time: undefined, type: "event_msg", payload: {} });
    expect(s.updatedAt).toEqual(new Date("2026-11-22T07:19:29.201Z"));
    expect((await r.list({ limit: 5 }))[0]).toMatchObject({ id: B, messageCount: 2, lastAgentMessage: "Hello!" });
  });

  it("recognises injected context by its prefix when provenance metadata is missing", async () => {
    install(B_FILE);
    const lines = fixtureLines(B_FILE).map((l) => {
      const o = JSON.parse(l);
      delete o.payload.internal_chat_message_metadata_passthrough;
      return JSON.stringify(o);
    });
    writeFileSync(path.join(home, DAY, B_FILE), lines.join("\n"));
    const s = (await new CodexSessionReader(home).get(B, {}))!;
    expect(s.messages.map((m) => m.role)).toEqual(["developer", "user", "assistant"]);
    expect(s.title).toBe("Say hello.");
  });

  it("merges two files of one thread by time", async () => {
    // Codex 0.169 appends a resumed turn to the same file; this guards the other layout.
    const lines = fixtureLines(A_FILE);
    const cut = lines.findIndex((l) => l.includes('"thread_settings_applied"') && l.includes("07:19:29"));
    const dir = path.join(home, DAY);
    mkdirSync(dir, { recursive: true });
    const second = `rollout-2026-11-22T07-19-29-${A}.jsonl`;
    writeFileSync(path.join(dir, second), `${lines.slice(cut).join("\n")}\n`);
    writeFileSync(path.join(dir, A_FILE), `${lines.slice(0, cut).join("\n")}\n`);
    const r = new CodexSessionReader(home);
    const s = (await r.get(A, {}))!;
    expect(s.messages.filter((m) => m.role !== "developer").map((m) => m.text)).toEqual([
      "Create a.txt containing hi.\nSecond line of the prompt.",
      "Created a.txt with hi.",
      "What does a.txt contain?",
      "It contains hi.",
    ]);
    const list = await r.list({ limit: 10 });
    expect(list).toHaveLength(1);
    expect(list[0]).toMatchObject({
      id: A,
      title: "Create a.txt containing hi.",
      createdAt: new Date("2026-11-22T07:19:28.127Z"),
      updatedAt: new Date("2026-11-22T07:19:29.844Z"),
      lastAgentMessage: "It contains hi.",
      messageCount: 4,
    });
  });

  it("ignores symlinks inside sessions that point outside", async () => {
    install(B_FILE);
    const outside = path.join(tmp, "outside");
    mkdirSync(outside);
    const C = "11111111-2222-4333-8444-555555555555";
    const cName = `rollout-2026-11-22T07-19-29-${C}.jsonl`;
    writeFileSync(path.join(outside, cName), readFileSync(path.join(FIXTURES, B_FILE), "utf8"));
    symlinkSync(path.join(outside, cName), path.join(home, DAY, cName)); // a symlinked file
    symlinkSync(outside, path.join(home, "sessions/2026/11/23")); // a symlinked day directory
    symlinkSync(outside, path.join(home, "sessions/2025")); // a symlinked year directory
    const r = new CodexSessionReader(home);
    expect((await r.list({ limit: 10 })).map((s) => s.id)).toEqual([B]);
    expect(await r.get(C, {})).toBeUndefined();
    expect(await r.findRollout(C)).toBeUndefined();
  });

  it("reads only the head and the tail of a rollout above the size cap", async () => {
    const lines = fixtureLines(B_FILE);
    const pad = JSON.stringify({
      timestamp: "2026-11-22T07:19:29.160Z",
      type: "event_msg",
      payload: { type: "padding", text: "x".repeat(4000) },
    });
    const padCount = Math.ceil(MAX_ROLLOUT_READ_BYTES / pad.length) + 10;
    const dir = path.join(home, DAY);
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, B_FILE);
    writeFileSync(file, `${lines.slice(0, 9).join("\n")}\n`);
    appendFileSync(file, `${pad}\n`.repeat(padCount));
    appendFileSync(file, `${lines.slice(9).join("\n")}\n`);
    const s = (await new CodexSessionReader(home).get(B, { tailMessages: 1 }))!;
    expect(s).toMatchObject({
      title: "Say hello.",
      cwd: CWD,
      createdAt: new Date("2026-11-22T07:19:29.093Z"),
      updatedAt: new Date("2026-11-22T07:19:29.201Z"),
      lastAgentMessage: "Hello!",
      usage: { inputTokens: 700 },
    });
    expect(s.messages.map((m) => m.text)).toEqual(["Hello!"]);
  });
});
