/**
 * The codex backend against test/doubles/fake-codex.mjs (a scripted `codex exec --json` that speaks the
 * measured 0.169.0 event schema and logs every invocation): argv, prompts, streamed events, usage,
 * conversations persisted in the database, errors, and that stopping a run ends its whole process group.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { fakeCodexInvocations, writeFakeCodexScript, type FakeCodexInvocation } from "../doubles/fake-codex-files.js";
import { CodexBackend, execArgs, type CodexBackendOptions } from "../../src/backends/codex/codex-backend.js";
import { readExecEvents, type ExecEvent } from "../../src/backends/codex/exec-events.js";
import { locateCodex } from "../../src/backends/codex/locate-codex.js";
import { messagesAfterLastAnswer, renderPrompt } from "../../src/backends/codex/prompt.js";
import { getCodexThread } from "../../src/backends/codex/thread-store.js";
import type { ChatEvent, ChatMessage, ChatRequest } from "../../src/completion/types.js";
import { GatewayError } from "../../src/errors/gateway-error.js";
import type { Database } from "../../src/storage/database.js";
import { Cancellation } from "../../src/util/cancel-signal.js";
import { openTestDatabase } from "../support/test-database.js";

const FAKE = fileURLToPath(new URL("../doubles/fake-codex.mjs", import.meta.url));
// Codex refuses a CODEX_HOME under the temporary directory, and so does the backend: keep it in the repo.
const HOMES = fileURLToPath(new URL("../../node_modules/.cache/agentgate-test-codex/", import.meta.url));
const CODEX_TMP = path.join(HOMES, "tmp");

let db: Database;
let dir: string;
let codexHome: string;
let logFile: string;
let scriptFile: string;

beforeAll(async () => {
  db = await openTestDatabase();
});
// Each test removes only its own CODEX_HOME: other test files use HOMES at the same time.
afterAll(() => db.close());
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "codex-backend-"));
  fs.mkdirSync(CODEX_TMP, { recursive: true });
  codexHome = fs.mkdtempSync(HOMES);
  logFile = path.join(dir, "invocations.jsonl");
  scriptFile = path.join(dir, "script.json");
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(codexHome, { recursive: true, force: true });
});

const script = (...turns: Record<string, unknown>[]) => writeFakeCodexScript(scriptFile, ...turns);
const invocations = () => fakeCodexInvocations(logFile);

function backend(overrides: Partial<CodexBackendOptions> = {}): CodexBackend {
  return new CodexBackend({
    bin: FAKE,
    sandbox: "read-only",
    models: ["gpt-5.5"],
    timeoutMs: 15_000,
    workDir: path.join(dir, "data", "codex-model"),
    db,
    // TMPDIR as Codex sees it must not contain CODEX_HOME, also when the checkout itself lies under /tmp.
    env: {
      ...process.env,
      CODEX_HOME: codexHome,
      TMPDIR: CODEX_TMP,
      FAKE_CODEX_SCRIPT: scriptFile,
      FAKE_CODEX_LOG: logFile,
    },
    killGraceMs: 2_000,
    ...overrides,
  });
}

const user = (content: string): ChatMessage => ({ role: "user", content });
const assistant = (content: string): ChatMessage => ({ role: "assistant", content });
const chatReq = (messages: ChatMessage[], extra: Partial<ChatRequest> = {}): ChatRequest => ({
  model: "",
  messages,
  options: {},
  ...extra,
});

async function collect<T>(events: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const e of events) out.push(e);
  return out;
}

async function failure(events: AsyncIterable<unknown>): Promise<GatewayError> {
  try {
    await collect(events);
  } catch (err) {
    return err as GatewayError;
  }
  throw new Error("expected the chat to fail");
}

/** Alive and not a zombie (an orphan may wait a moment for its reaper). */
function isAlive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, "utf8");
    return !["Z", "X"].includes(stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3));
  } catch {
    return false;
  }
}

async function waitFor<T>(probe: () => T | undefined | false, ms = 5_000): Promise<T> {
  const until = Date.now() + ms;
  for (;;) {
    const v = probe();
    if (v) return v;
    if (Date.now() > until) throw new Error("timed out waiting");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("codex exec invocation", () => {
  it("runs exec --json with stdin closed, the sandbox, --ephemeral and the prompt after --, in its own process group", async () => {
    script({ messages: ["Hi there"] });
    const events = await collect(backend().chat(chatReq([user("Say hi")]), new Cancellation()));
    expect(events.at(-1)).toMatchObject({ type: "done", finishReason: "stop" });
    const [run] = invocations();
    expect(run!.argv).toEqual([
      "exec",
      "--json",
      "--skip-git-repo-check",
      "-s",
      "read-only",
      "--ephemeral",
      "--",
      "Say hi",
    ]);
    expect(run!.stdin).toBe("devnull");
    expect(run!.cwd).toBe(path.join(dir, "data", "codex-model"));
    expect(run!.codexHome).toBe(codexHome);
    expect(run!.pgid).toBe(run!.pid);
  });

  it("names the model with -m and the reasoning effort with -c; a prompt starting with - stays a prompt", async () => {
    script({});
    const b = backend({ sandbox: "workspace-write" });
    await collect(
      b.chat(chatReq([user("-v is not a flag")], { model: "gpt-5.5", reasoningEffort: "high" }), new Cancellation()),
    );
    expect(invocations()[0]!.argv).toEqual([
      "exec",
      "--json",
      "--skip-git-repo-check",
      "-s",
      "workspace-write",
      "-m",
      "gpt-5.5",
      "-c",
      'model_reasoning_effort="high"',
      "--ephemeral",
      "--",
      "-v is not a flag",
    ]);
    expect(invocations()[0]!.prompt).toBe("-v is not a flag");
  });

  it("puts exec options before `resume` (the real CLI rejects -s after it)", () => {
    expect(
      execArgs({ sandbox: "read-only", model: "o3", ephemeral: false, resumeThreadId: "t-1", prompt: "go on" }),
    ).toEqual([
      "exec",
      "--json",
      "--skip-git-repo-check",
      "-s",
      "read-only",
      "-m",
      "o3",
      "resume",
      "t-1",
      "--",
      "go on",
    ]);
  });

  it("sends a prompt too long for one argv string through stdin (`-`), then closes it", async () => {
    script({});
    const long = "x".repeat(200_000);
    await collect(backend().chat(chatReq([user(long)]), new Cancellation()));
    const [run] = invocations();
    expect(run!.argv.slice(-2)).toEqual(["--", "-"]);
    expect(run!.stdin).toBe("pipe");
    expect(run!.prompt).toBe(long);
  });
});

describe("prompt rendering", () => {
  it("sends a lone user message as it is", () => {
    expect(renderPrompt([user("Just this")])).toBe("Just this");
  });

  it("puts system text first, then labelled turns separated by blank lines", () => {
    const messages: ChatMessage[] = [
      user("What is 2+2?"),
      { role: "system", content: "Be brief." },
      assistant("4"),
      { role: "tool", content: "42", name: "calc" },
      user("And 3+3?"),
    ];
    expect(renderPrompt(messages)).toBe(
      "Be brief.\n\nUser: What is 2+2?\n\nAssistant: 4\n\nTool result (calc): 42\n\nUser: And 3+3?",
    );
    expect(renderPrompt([{ role: "system", content: "Be brief." }, user("Hi")])).toBe("Be brief.\n\nUser: Hi");
  });

  it("keeps only what follows the last assistant message for a resumed thread", () => {
    expect(messagesAfterLastAnswer([user("a"), assistant("b"), user("c"), user("d")])).toEqual([user("c"), user("d")]);
    expect(messagesAfterLastAnswer([user("a")])).toEqual([user("a")]);
  });

  it("renders the whole conversation into the first exec", async () => {
    script({});
    await collect(
      backend().chat(
        chatReq([{ role: "system", content: "You are terse." }, user("Hi"), assistant("Hello"), user("Bye")]),
        new Cancellation(),
      ),
    );
    expect(invocations()[0]!.argv.at(-1)).toBe("You are terse.\n\nUser: Hi\n\nAssistant: Hello\n\nUser: Bye");
  });
});

describe("streamed answer", () => {
  const turn = {
    reasoning: "Thinking it over",
    messages: ["First part.", "Second part."],
    items: [{ type: "command_execution", command: "ls", aggregated_output: "a\n", exit_code: 0 }],
    usage: { input_tokens: 120, cached_input_tokens: 20, output_tokens: 30, reasoning_output_tokens: 7 },
  };
  const expected: ChatEvent[] = [
    { type: "delta", reasoning: "Thinking it over" },
    { type: "delta", content: "First part." },
    { type: "delta", content: "\n\nSecond part." },
    {
      type: "done",
      finishReason: "stop",
      usage: { promptTokens: 120, completionTokens: 30, totalTokens: 150, cachedTokens: 20, reasoningTokens: 7 },
    },
  ];

  it("maps reasoning and agent messages to deltas and turn.completed to done with usage", async () => {
    script(turn);
    expect(await collect(backend().chat(chatReq([user("q")]), new Cancellation()))).toEqual(expected);
  });

  it("is not thrown by garbage lines or lines split across writes", async () => {
    script({ ...turn, garbage: true, notices: ["Reconnecting... 1/5 (stream disconnected)"] });
    expect(await collect(backend().chat(chatReq([user("q")]), new Cancellation()))).toEqual(expected);
  });

  it("serves text completion as one user message", async () => {
    script({ messages: ["completed text"] });
    const events = await collect(
      backend().complete({ model: "", prompt: "Once upon", options: {} }, new Cancellation()),
    );
    expect(events[0]).toEqual({ type: "delta", text: "completed text" });
    expect(events[1]).toMatchObject({ type: "done", finishReason: "stop" });
    expect(invocations()[0]!.argv.at(-1)).toBe("Once upon");
  });
});

describe("event reader", () => {
  async function* chunks(...parts: (string | Buffer)[]) {
    for (const p of parts) yield typeof p === "string" ? Buffer.from(p) : p;
  }

  it("joins split lines (also inside a UTF-8 character) and skips what is not an event", async () => {
    const line = Buffer.from(
      '{"type":"item.completed","item":{"id":"item_0","type":"agent_message","text":"héllo"}}\n',
    );
    const cut = line.indexOf("é") + 1; // between the two bytes of é
    const events: ExecEvent[] = await collect(
      readExecEvents(
        chunks(
          "2026-01-01T00:00:00Z ERROR something on stdout\n",
          '{"type":"thread.started","thread_id":"t1"}\n{"type":"turn.sta',
          'rted"}\n{"broken": \n{"type":"some.future.event"}\n[1,2]\n',
          line.subarray(0, cut),
          line.subarray(cut),
          '{"type":"turn.completed","usage":{"input_tokens":5,"output_tokens":1}}',
        ),
      ),
    );
    expect(events).toEqual([
      { type: "thread.started", thread_id: "t1" },
      { type: "turn.started" },
      { type: "item.completed", item: { id: "item_0", type: "agent_message", text: "héllo" } },
      {
        type: "turn.completed",
        usage: {
          input_tokens: 5,
          cached_input_tokens: 0,
          cache_write_input_tokens: 0,
          output_tokens: 1,
          reasoning_output_tokens: 0,
        },
      },
    ]);
  });
});

describe("conversations", () => {
  it("records conversation -> thread, resumes it with only the new messages and reports per-turn usage", async () => {
    script(
      { messages: ["Nice to meet you."], usage: { input_tokens: 100, cached_input_tokens: 0, output_tokens: 10 } },
      { messages: ["You said hello."], usage: { input_tokens: 300, cached_input_tokens: 250, output_tokens: 20 } },
    );
    const b = backend();
    const first = await collect(b.chat(chatReq([user("Hello")], { conversationId: "conv-1" }), new Cancellation()));
    expect(first.at(-1)).toMatchObject({ usage: { promptTokens: 100, completionTokens: 10, totalTokens: 110 } });

    const [run1] = invocations();
    expect(run1!.argv).not.toContain("--ephemeral");
    expect(run1!.argv).not.toContain("resume");
    const stored = await getCodexThread(db, "conv-1");
    const rollouts = fs.readdirSync(path.join(codexHome, "sessions"));
    expect(rollouts).toEqual([`fake-rollout-${stored!.threadId}.json`]);
    expect(stored!.totals).toEqual({
      input_tokens: 100,
      cached_input_tokens: 0,
      output_tokens: 10,
      reasoning_output_tokens: 0,
    });

    const second = await collect(
      b.chat(
        chatReq([user("Hello"), assistant("Nice to meet you."), user("What did I say?")], { conversationId: "conv-1" }),
        new Cancellation(),
      ),
    );
    const run2 = invocations()[1]!;
    expect(run2.argv).toEqual([
      "exec",
      "--json",
      "--skip-git-repo-check",
      "-s",
      "read-only",
      "resume",
      stored!.threadId,
      "--",
      "What did I say?",
    ]);
    // Codex reported thread totals 400/250/30; this turn's share is the difference.
    expect(second).toContainEqual({ type: "delta", content: "You said hello." });
    expect(second.at(-1)).toEqual({
      type: "done",
      finishReason: "stop",
      usage: { promptTokens: 300, completionTokens: 20, totalTokens: 320, cachedTokens: 250, reasoningTokens: 0 },
    });
    expect((await getCodexThread(db, "conv-1"))!.totals).toMatchObject({ input_tokens: 400, output_tokens: 30 });
  });

  it("serialises concurrent requests on one conversation: the second resumes the thread the first created", async () => {
    script({ delayMs: 100, messages: ["one"] }, { messages: ["two"] });
    const b = backend();
    const [a, c] = await Promise.all([
      collect(b.chat(chatReq([user("first")], { conversationId: "conv-2" }), new Cancellation())),
      collect(
        b.chat(
          chatReq([user("first"), assistant("one"), user("second")], { conversationId: "conv-2" }),
          new Cancellation(),
        ),
      ),
    ]);
    expect(a).toContainEqual({ type: "delta", content: "one" });
    expect(c).toContainEqual({ type: "delta", content: "two" });
    const [run1, run2] = invocations();
    const thread = (await getCodexThread(db, "conv-2"))!.threadId;
    expect(run1!.argv).not.toContain("resume");
    expect(run2!.argv.slice(-4)).toEqual(["resume", thread, "--", "second"]);
  });

  it("refuses a resumed request with nothing after the last assistant message", async () => {
    script({});
    const b = backend();
    await collect(b.chat(chatReq([user("hi")], { conversationId: "conv-3" }), new Cancellation()));
    const err = await failure(
      b.chat(chatReq([user("hi"), assistant("fake codex answer")], { conversationId: "conv-3" }), new Cancellation()),
    );
    expect(err).toMatchObject({ kind: "invalid_argument", param: "messages" });
    expect(invocations()).toHaveLength(1);
  });

  it("says so when Codex no longer has the conversation's thread", async () => {
    script({});
    const b = backend();
    await collect(b.chat(chatReq([user("hi")], { conversationId: "conv-4" }), new Cancellation()));
    fs.rmSync(path.join(codexHome, "sessions"), { recursive: true });
    const err = await failure(
      b.chat(chatReq([user("hi"), assistant("x"), user("again")], { conversationId: "conv-4" }), new Cancellation()),
    );
    expect(err).toMatchObject({ kind: "failed_precondition", code: "codex_thread_missing" });
    expect(err.message).toMatch(/no rollout found for thread id/);
    expect(err.message).not.toContain("<unknown>");
  });
});

describe("errors", () => {
  it("turns turn.failed into an upstream error with Codex's message", async () => {
    script({ fail: "stream disconnected before completion: boom" });
    const err = await failure(backend().chat(chatReq([user("q")]), new Cancellation()));
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).toMatchObject({ kind: "upstream_error", code: "codex_failed" });
    expect(err.message).toBe("Codex failed: stream disconnected before completion: boom");
  });

  it("tells the user to log in when Codex got a 401 (as measured with 0.169.0 and no login)", async () => {
    const said =
      "unexpected status 401 Unauthorized: You didn't provide an API key. You need to provide your API key in an " +
      "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)., url: https://api.openai.com/v1/responses";
    script({ notices: ["Reconnecting... 1/5 (unexpected status 401 Unauthorized)"], fail: said });
    const err = await failure(backend().chat(chatReq([user("q")]), new Cancellation()));
    expect(err).toMatchObject({ kind: "upstream_error", code: "codex_not_logged_in" });
    expect(err.message).toContain("run `codex login`");
    expect(err.message).toContain(`CODEX_HOME=${codexHome}`);
    expect(err.message).toContain("configure a model provider");
  });

  it("reports an exit without turn.completed with the end of stderr, without the backtrace", async () => {
    script({
      crashAfter: "turn.started",
      exitCode: 101,
      stderr: `${"noise line\n".repeat(500)}thread 'main' panicked at core/src/codex.rs:1:1:\nboom\nStack backtrace:\n   0: <unknown>\n   1: <unknown>`,
    });
    const err = await failure(backend().chat(chatReq([user("q")]), new Cancellation()));
    expect(err).toMatchObject({ kind: "upstream_error" });
    expect(err.message).toContain("exited with code 101 before finishing the turn");
    expect(err.message).toContain("panicked at core/src/codex.rs");
    expect(err.message).not.toContain("<unknown>");
    expect(err.message.length).toBeLessThan(800);
  });

  it("fails with failed_precondition naming @openai/codex and CODEX_BIN when the binary is missing", async () => {
    const err = await failure(backend({ bin: "/nonexistent/codex" }).chat(chatReq([user("q")]), new Cancellation()));
    expect(err).toMatchObject({ kind: "failed_precondition", code: "codex_not_found" });
    expect(err.message).toContain("@openai/codex");
    expect(err.message).toContain("CODEX_BIN");
    await expect(backend({ bin: "no-such-codex-anywhere" }).listModels()).rejects.toMatchObject({
      kind: "failed_precondition",
    });
    const h = await backend({ bin: "/nonexistent/codex" }).health(new Cancellation());
    expect(h.ok).toBe(false);
  });

  it("finds the bundled @openai/codex without CODEX_BIN or PATH", () => {
    const found = locateCodex(undefined, { PATH: "" });
    expect(found.command).toBe(process.execPath);
    expect(found.prefix[0]).toMatch(/@openai[/\\]codex[/\\]bin[/\\]codex\.js$/);
  });

  it("rejects a CODEX_HOME under the temporary directory before starting Codex", async () => {
    script({});
    const b = backend({
      env: { ...process.env, CODEX_HOME: "/tmp/codex-home", TMPDIR: "/tmp", FAKE_CODEX_LOG: logFile },
    });
    const err = await failure(b.chat(chatReq([user("q")]), new Cancellation()));
    expect(err).toMatchObject({ kind: "failed_precondition", code: "codex_home_in_tmp" });
    expect(err.message).toContain("Refusing to create helper binaries under temporary dir");
    expect(invocations()).toHaveLength(0);
  });

  it("rejects client-supplied tools, images and JSON response formats", async () => {
    const b = backend();
    const c = new Cancellation();
    await expect(failure(b.chat(chatReq([user("q")], { tools: [{ name: "get_weather" }] }), c))).resolves.toMatchObject(
      { kind: "invalid_argument", param: "tools" },
    );
    await expect(
      failure(b.chat(chatReq([{ role: "user", content: "q", images: ["aGk="] }]), c)),
    ).resolves.toMatchObject({ kind: "invalid_argument" });
    await expect(
      failure(b.chat(chatReq([user("q")], { responseFormat: { type: "json_object" } }), c)),
    ).resolves.toMatchObject({ kind: "invalid_argument", param: "response_format" });
    await expect(b.embed()).rejects.toMatchObject({ kind: "failed_precondition", code: "unsupported" });
    expect(invocations()).toHaveLength(0);
  });
});

describe("models and health", () => {
  it("lists Codex's default model (empty id) and the configured slugs", async () => {
    const models = await backend().listModels();
    expect(models.map((m) => m.id)).toEqual(["", "gpt-5.5"]);
    expect(models[0]).toMatchObject({ backend: "codex", capabilities: ["chat", "completion"] });
  });

  it("reports the version from `codex --version`", async () => {
    const h = await backend().health(new Cancellation());
    expect(h).toMatchObject({ ok: true });
    expect(h.detail).toContain("codex-cli 0.169.0");
  });
});

describe("stopping a run", () => {
  async function started(): Promise<FakeCodexInvocation> {
    return waitFor(() => invocations()[0]?.grandchildPid !== undefined && invocations()[0]);
  }

  it("cancellation ends the whole process group, grandchildren included", async () => {
    script({ hang: true, spawnGrandchild: true });
    const cancel = new Cancellation();
    const pending = failure(backend().chat(chatReq([user("q")]), cancel));
    const run = await started();
    expect(isAlive(run.pid)).toBe(true);
    expect(isAlive(run.grandchildPid!)).toBe(true);
    cancel.cancel();
    const err = await pending;
    expect((err as Error).name).toBe("AbortError");
    await waitFor(() => !isAlive(run.pid) && !isAlive(run.grandchildPid!));
  });

  it("follows SIGTERM with SIGKILL after the grace period", async () => {
    script({ hang: true, spawnGrandchild: true, ignoreSigterm: true });
    const cancel = new Cancellation();
    const pending = failure(backend({ killGraceMs: 300 }).chat(chatReq([user("q")]), cancel));
    const run = await started();
    const t0 = Date.now();
    cancel.cancel();
    await pending;
    await waitFor(() => !isAlive(run.pid) && !isAlive(run.grandchildPid!));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  });

  it("times out with deadline_exceeded, quoting Codex's last notice, and ends the group", async () => {
    script({ hang: true, spawnGrandchild: true, notices: ["Reconnecting... waiting for network (Connection failed)"] });
    const err = await failure(backend({ timeoutMs: 1_000 }).chat(chatReq([user("q")]), new Cancellation()));
    expect(err).toMatchObject({ kind: "deadline_exceeded" });
    expect(err.message).toContain("within 1000 ms");
    expect(err.message).toContain("Reconnecting... waiting for network");
    const [run] = invocations();
    await waitFor(() => !isAlive(run!.pid) && !isAlive(run!.grandchildPid!));
  });

  it("stops Codex when the consumer stops reading early", async () => {
    script({ messages: ["one", "two"], delayMs: 300, spawnGrandchild: true });
    for await (const e of backend().chat(chatReq([user("q")]), new Cancellation())) {
      if (e.type === "delta") break;
    }
    const [run] = invocations();
    await waitFor(() => !isAlive(run!.pid) && !isAlive(run!.grandchildPid!));
  });
});
