#!/usr/bin/env node
/**
 * A stand-in for `codex` 0.169.0 (`codex exec --json`), faithful to what the real CLI was measured to do
 * (see docs/codex-backend.md and /work/shared/notes/codex.md §6):
 *
 *   codex --version                                   -> "codex-cli 0.169.0"
 *   codex exec [OPTIONS] [--] [PROMPT|-]              -> JSONL events on stdout
 *   codex exec [OPTIONS] resume <THREAD_ID> [--] [PROMPT|-]
 *
 * Options: --json, --output-schema FILE, --color, --oss, --local-provider, --skip-git-repo-check (required here: the fake never looks for a repository, and the
 * real CLI refuses without it outside a trusted one), --ephemeral, -s/--sandbox (only before `resume`,
 * as in the real CLI), -m/--model, -c/--config. Like the real CLI it reads stdin to EOF unless stdin is
 * a terminal or closed: a pipe that stays open blocks it; `-` (or no prompt) makes stdin the prompt,
 * otherwise stdin is appended as a `<stdin>` block.
 *
 * Threads: without --ephemeral a "rollout" `$CODEX_HOME/sessions/fake-rollout-<thread>.json` keeps the
 * thread's cumulative token usage, so `turn.completed.usage` is the thread total, as with the real CLI.
 * Resuming an unknown thread fails the way the real CLI does ("no rollout found", exit 1).
 *
 * FAKE_CODEX_SCRIPT: a JSON file `{ "turns": [Turn, ...] }`. The Nth `exec` invocation (counted in the
 * log) plays turns[N], the last one repeating. A Turn (all optional):
 *   messages: string[]           agent_message items (default ["fake codex answer"])
 *   reasoning: string            a reasoning item before the messages
 *   items: object[]              extra items (command_execution, ...) emitted as item.started + item.completed
 *   usage: {input_tokens, cached_input_tokens, output_tokens, reasoning_output_tokens}  this turn's usage
 *   notices: string[]            non-fatal `error` events ("Reconnecting... 1/5") after turn.started
 *   fail: string                 `error` + `turn.failed` with this message, exit code 1
 *   stderr: string               written to stderr at start
 *   crashAfter: "start" | "thread.started" | "turn.started"   exit (exitCode, default 1) there, unfinished
 *   exitCode: number             exit code for crashAfter (and after a normal turn, default 0)
 *   hang: boolean                after turn.started (and notices) wait until killed
 *   ignoreSigterm: boolean       ignore SIGTERM (this process and the grandchild): only SIGKILL ends it
 *   spawnGrandchild: boolean     start a long-lived child in the same process group and log its pid
 *   delayMs: number              pause before each event
 *   writeFiles: {path: contents} files written relative to the working directory (objects as JSON),
 *                                reported as one file_change item
 *   garbage: boolean             interleave non-JSON lines and split every line across several writes
 *
 * FAKE_CODEX_LOG: a file that gets one JSON line per invocation: {argv, cwd, stdin ("devnull", "pipe",
 * "file", "tty", "closed", ...), stdinText, codexHome, pid, pgid, grandchildPid, env: {FAKE_*}}.
 */
import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const VERSION = "codex-cli 0.169.0";
const argv = process.argv.slice(2);

function clapError(message) {
  process.stderr.write(
    `error: ${message}\n\nUsage: codex exec [OPTIONS] [PROMPT]\n\nFor more information, try '--help'.\n`,
  );
  process.exit(2);
}

if (argv[0] === "--version" || argv[0] === "-V") {
  record({ kind: "version" });
  process.stdout.write(`${VERSION}\n`);
  process.exit(0);
}
if (argv[0] !== "exec") clapError(`unrecognized subcommand '${argv[0] ?? ""}'`);

// ---- argument parsing (the subset agentgate uses, with the real CLI's placement rules) ----
const opts = { json: false, skipGit: false, ephemeral: false, sandbox: undefined, model: undefined, config: [] };
let resumeId;
let positionals = [];
let inResume = false;
for (let i = 1; i < argv.length; i++) {
  const a = argv[i];
  if (a === "--") {
    positionals.push(...argv.slice(i + 1));
    break;
  }
  const value = () => {
    const v = argv[++i];
    if (v === undefined) clapError(`a value is required for '${a}' but none was supplied`);
    return v;
  };
  if (a === "--json") opts.json = true;
  else if (a === "--skip-git-repo-check") opts.skipGit = true;
  else if (a === "--ephemeral") opts.ephemeral = true;
  else if (a === "-m" || a === "--model") opts.model = value();
  else if (a === "-c" || a === "--config") opts.config.push(value());
  else if (a === "--output-schema") opts.outputSchema = value();
  else if (a === "--color" || a === "--local-provider") value();
  else if (a === "--oss") opts.oss = true;
  else if ((a === "-s" || a === "--sandbox") && !inResume) {
    const v = value();
    if (!["read-only", "workspace-write", "danger-full-access"].includes(v))
      clapError(`invalid value '${v}' for '--sandbox <SANDBOX_MODE>'`);
    opts.sandbox = v;
  } else if (a.startsWith("-") && a !== "-") clapError(`unexpected argument '${a}' found`);
  else if (a === "resume" && !inResume && positionals.length === 0) inResume = true;
  else if (inResume && resumeId === undefined) resumeId = a;
  else positionals.push(a);
}
if (positionals.length > 1) clapError(`unexpected argument '${positionals[1]}' found`);

// ---- stdin: read to EOF like the real CLI (an open pipe blocks here) ----
const stdinKind = describeStdin();
let stdinText = "";
if (stdinKind !== "tty" && stdinKind !== "closed") {
  process.stderr.write("Reading additional input from stdin...\n");
  stdinText = readAllStdin();
}
let prompt = positionals[0];
if (prompt === undefined || prompt === "-") prompt = stdinText;
else if (stdinText) prompt = `${prompt}\n\n<stdin>\n${stdinText}\n</stdin>`;

const script = loadScript();
const execIndex = countExecInvocations();
const turn = script.turns.length ? script.turns[Math.min(execIndex, script.turns.length - 1)] : {};

if (turn.ignoreSigterm) process.on("SIGTERM", () => undefined);
let grandchildPid;
if (turn.spawnGrandchild) {
  const code = `${turn.ignoreSigterm ? "process.on('SIGTERM', () => {});" : ""} setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ["-e", code], { stdio: "ignore" });
  grandchildPid = child.pid;
}
record({ kind: "exec", stdin: stdinKind, stdinText, grandchildPid, prompt });

if (turn.stderr) process.stderr.write(turn.stderr.endsWith("\n") ? turn.stderr : `${turn.stderr}\n`);
if (turn.crashAfter === "start") process.exit(turn.exitCode ?? 1);
if (!opts.skipGit) {
  process.stderr.write("Not inside a trusted directory and --skip-git-repo-check was not specified.\n");
  process.exit(1);
}
if (!opts.json) clapError("the fake codex only speaks --json");

const codexHome = process.env.CODEX_HOME || path.join(os.homedir(), ".codex");
const rolloutFile = (id) => path.join(codexHome, "sessions", `fake-rollout-${id}.json`);
let thread = { id: randomUUID(), totals: zeroUsage(), turns: 0 };
if (inResume) {
  let found;
  try {
    found = JSON.parse(fs.readFileSync(rolloutFile(resumeId), "utf8"));
  } catch {
    process.stderr.write(
      `Error: thread/resume: thread/resume failed: no rollout found for thread id ${resumeId} (code -32600)\n\n` +
        "Stack backtrace:\n   0: <unknown>\n   1: <unknown>\n   2: <unknown>\n",
    );
    process.exit(1);
  }
  thread = found;
}

await main();

async function main() {
  let item = 0;
  await emit({ type: "thread.started", thread_id: thread.id });
  if (turn.crashAfter === "thread.started") process.exit(turn.exitCode ?? 1);
  await emit({ type: "turn.started" });
  if (turn.crashAfter === "turn.started") process.exit(turn.exitCode ?? 1);
  for (const n of turn.notices ?? []) await emit({ type: "error", message: n });
  if (turn.hang) {
    setInterval(() => undefined, 1000);
    return;
  }
  for (const extra of turn.items ?? []) {
    const id = `item_${item++}`;
    await emit({ type: "item.started", item: { id, ...extra, status: "in_progress" } });
    await emit({ type: "item.completed", item: { id, ...extra } });
  }
  if (turn.fail) {
    await emit({ type: "error", message: turn.fail });
    await emit({ type: "turn.failed", error: { message: turn.fail } });
    process.exit(1);
  }
  if (turn.reasoning)
    await emit({ type: "item.completed", item: { id: `item_${item++}`, type: "reasoning", text: turn.reasoning } });
  if (turn.writeFiles) {
    // As Codex's apply_patch would: the files, then one file_change item naming them.
    const changes = [];
    for (const [rel, contents] of Object.entries(turn.writeFiles)) {
      const file = path.resolve(process.cwd(), rel);
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, typeof contents === "string" ? contents : JSON.stringify(contents));
      changes.push({ path: file, kind: "add" });
    }
    await emit({
      type: "item.completed",
      item: { id: `item_${item++}`, type: "file_change", changes, status: "completed" },
    });
  }
  for (const text of turn.messages ?? ["fake codex answer"])
    await emit({ type: "item.completed", item: { id: `item_${item++}`, type: "agent_message", text } });
  const used = { ...zeroUsage(), input_tokens: 50, output_tokens: 5, ...(turn.usage ?? {}) };
  for (const k of Object.keys(thread.totals)) thread.totals[k] += used[k] ?? 0;
  thread.turns += 1;
  if (!opts.ephemeral) {
    fs.mkdirSync(path.dirname(rolloutFile(thread.id)), { recursive: true });
    fs.writeFileSync(rolloutFile(thread.id), JSON.stringify(thread));
  }
  // Thread totals, not this turn's usage (measured: a resumed 100-token turn reports 200).
  await emit({ type: "turn.completed", usage: { ...thread.totals } });
  process.exitCode = turn.exitCode ?? 0;
}

async function emit(event) {
  if (turn.delayMs) await sleep(turn.delayMs);
  const line = `${JSON.stringify(event)}\n`;
  if (!turn.garbage) {
    await write(line);
    return;
  }
  await write("not json at all\n");
  await write('{"truncated": \n');
  // The same line in three writes, with pauses, so the reader sees partial lines.
  const a = Math.floor(line.length / 3);
  for (const part of [line.slice(0, a), line.slice(a, 2 * a), line.slice(2 * a)]) {
    await write(part);
    await sleep(5);
  }
}

function write(text) {
  return new Promise((resolve) => {
    if (process.stdout.write(text)) resolve();
    else process.stdout.once("drain", resolve);
  });
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

function zeroUsage() {
  return {
    input_tokens: 0,
    cached_input_tokens: 0,
    cache_write_input_tokens: 0,
    output_tokens: 0,
    reasoning_output_tokens: 0,
  };
}

/** Reads fd 0 to EOF, blocking; a socketpair from Node's spawn may be non-blocking (EAGAIN), so wait and retry. */
function readAllStdin() {
  const chunks = [];
  const buf = Buffer.alloc(65536);
  for (;;) {
    let n;
    try {
      n = fs.readSync(0, buf, 0, buf.length, null);
    } catch (err) {
      if (err.code === "EAGAIN") {
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
        continue;
      }
      if (err.code === "EOF") break;
      throw err;
    }
    if (n === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, n)));
  }
  return Buffer.concat(chunks).toString("utf8");
}

function describeStdin() {
  try {
    const st = fs.fstatSync(0);
    if (st.isFIFO() || st.isSocket()) return "pipe";
    if (st.isFile()) return "file";
    if (st.isCharacterDevice()) {
      try {
        const link = fs.readlinkSync("/proc/self/fd/0");
        if (link === "/dev/null") return "devnull";
      } catch {
        /* not Linux */
      }
      return process.stdin.isTTY ? "tty" : "chardev";
    }
    return "other";
  } catch {
    return "closed";
  }
}

function loadScript() {
  const file = process.env.FAKE_CODEX_SCRIPT;
  if (!file) return { turns: [] };
  return JSON.parse(fs.readFileSync(file, "utf8"));
}

function countExecInvocations() {
  const file = process.env.FAKE_CODEX_LOG;
  if (!file) return 0;
  try {
    return fs
      .readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => l.includes('"kind":"exec"')).length;
  } catch {
    return 0;
  }
}

function record(fields) {
  const file = process.env.FAKE_CODEX_LOG;
  if (!file) return;
  let pgid;
  try {
    // Field 5 of /proc/self/stat (after the parenthesised command name) is the process group.
    const stat = fs.readFileSync("/proc/self/stat", "utf8");
    pgid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[2]);
  } catch {
    pgid = undefined;
  }
  const entry = {
    ...fields,
    argv,
    cwd: process.cwd(),
    codexHome: process.env.CODEX_HOME ?? null,
    pid: process.pid,
    pgid,
  };
  fs.appendFileSync(file, `${JSON.stringify(entry)}\n`);
}
