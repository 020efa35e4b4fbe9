/**
 * A keep-alive POST client for JSON and SSE answers that keeps the whole body, so each answer can
 * be parsed and checked after its timing was taken, plus the checks themselves for OpenAI chat
 * completions and the Responses API (JSON bodies and streams). A bench that checks every answer
 * cannot report the speed of error pages.
 *
 * Same transport as http-client.ts: node:http, one keep-alive Agent per target.
 */
import http from "node:http";

export interface Answer {
  status: number;
  /** The whole body, utf-8. */
  text: string;
  /** ms from the call to the first body bytes that match `firstContent` (NaN when none did). */
  ttfcMs: number;
  /** ms from the call to the end of the body (time to last byte). */
  totalMs: number;
}

export interface PostTarget {
  /**
   * Sends `payload` (JSON) and resolves with the whole answer. Does not reject on a non-2xx status
   * (the checks do); rejects on transport errors.
   */
  send(payload: Buffer, firstContent?: RegExp): Promise<Answer>;
  close(): void;
}

export function postTarget(baseUrl: string, path: string, maxSockets = 64): PostTarget {
  const url = new URL(path, baseUrl);
  const agent = new http.Agent({ keepAlive: true, maxSockets, maxFreeSockets: maxSockets });
  return {
    send(payload, firstContent) {
      return new Promise<Answer>((resolve, reject) => {
        const t0 = performance.now();
        let ttfc = Number.NaN;
        const parts: string[] = [];
        let tail = "";
        const req = http.request(
          {
            host: url.hostname,
            port: url.port,
            path: url.pathname,
            method: "POST",
            agent,
            headers: { "content-type": "application/json", "content-length": payload.length, accept: "*/*" },
          },
          (res) => {
            res.setEncoding("utf8");
            res.on("data", (c: string) => {
              parts.push(c);
              if (firstContent && Number.isNaN(ttfc)) {
                // The marker may straddle two reads: test it on the end of the last one too.
                if (firstContent.test(tail + c)) ttfc = performance.now() - t0;
                else tail = c.slice(-256);
              }
            });
            res.on("error", reject);
            res.on("end", () => {
              const totalMs = performance.now() - t0;
              resolve({ status: res.statusCode ?? 0, text: parts.join(""), ttfcMs: ttfc, totalMs });
            });
          },
        );
        req.on("error", reject);
        req.end(payload);
      });
    },
    close() {
      agent.destroy();
    },
  };
}

/** First content in a chat SSE chunk (not the empty role chunk). */
export const CHAT_CONTENT = /"content":"[^"]/;
/** First text delta of a Responses stream. */
export const RESPONSES_CONTENT = /"type":"response\.output_text\.delta"/;

/** What a correct answer carries. */
export interface Expected {
  /** The whole generated text. */
  text: string;
  /** Streams: the number of content deltas (one per upstream chunk); undefined = not checked. */
  deltas?: number;
}

export class AnswerError extends Error {
  override readonly name = "AnswerError";
}

function fail(what: string, answer: Answer, why: string): never {
  throw new AnswerError(`${what}: ${why} (HTTP ${answer.status}): ${answer.text.slice(0, 300)}`);
}

function ok(what: string, answer: Answer): void {
  if (answer.status !== 200) fail(what, answer, "status is not 200");
}

/** Splits an SSE body into events (`event:` name, if any, and the joined `data:` lines). */
export function parseSse(text: string): { event?: string; data: string }[] {
  const out: { event?: string; data: string }[] = [];
  for (const block of text.split("\n\n")) {
    if (!block.trim()) continue;
    let event: string | undefined;
    const data: string[] = [];
    for (const line of block.split("\n")) {
      if (line.startsWith("event:")) event = line.slice(6).trim();
      else if (line.startsWith("data:")) data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
    }
    out.push({ event, data: data.join("\n") });
  }
  return out;
}

/** A non-streaming chat completion: content and finish reason. */
export function checkChatBody(answer: Answer, expected: Expected): void {
  const what = "chat completion";
  ok(what, answer);
  const body = JSON.parse(answer.text) as {
    object?: string;
    choices?: { message?: { content?: string }; finish_reason?: string }[];
  };
  const choice = body.choices?.[0];
  if (body.object !== "chat.completion" || !choice) fail(what, answer, "not a chat.completion");
  if (choice.message?.content !== expected.text) fail(what, answer, "unexpected content");
  if (choice.finish_reason !== "stop") fail(what, answer, `finish_reason ${choice.finish_reason}`);
}

/** A non-streaming Response: status completed, one message with the text. */
export function checkResponsesBody(answer: Answer, expected: Expected): void {
  const what = "response";
  ok(what, answer);
  const body = JSON.parse(answer.text) as {
    object?: string;
    status?: string;
    output?: { type?: string; content?: { type?: string; text?: string }[] }[];
  };
  if (body.object !== "response") fail(what, answer, "not a response object");
  if (body.status !== "completed") fail(what, answer, `status ${body.status}`);
  const message = body.output?.find((o) => o.type === "message");
  const text = message?.content?.find((p) => p.type === "output_text")?.text;
  if (text !== expected.text) fail(what, answer, "unexpected output text");
}

/**
 * A chat SSE stream: every event a chat.completion.chunk until a last `[DONE]`, the content
 * deltas add up to the text (one non-empty delta per upstream chunk), finish_reason stop.
 * Returns the number of events.
 */
export function checkChatStream(answer: Answer, expected: Expected): number {
  const what = "chat stream";
  ok(what, answer);
  const events = parseSse(answer.text);
  if (events.at(-1)?.data !== "[DONE]") fail(what, answer, "does not end with [DONE]");
  let text = "";
  let deltas = 0;
  let finish: string | undefined;
  for (const e of events.slice(0, -1)) {
    const chunk = JSON.parse(e.data) as {
      object?: string;
      choices?: { delta?: { content?: string }; finish_reason?: string | null }[];
    };
    if (chunk.object !== "chat.completion.chunk") fail(what, answer, `unexpected event ${e.data.slice(0, 120)}`);
    const choice = chunk.choices?.[0];
    const c = choice?.delta?.content;
    if (c) {
      text += c;
      deltas++;
    }
    if (choice?.finish_reason) finish = choice.finish_reason;
  }
  if (text !== expected.text) fail(what, answer, "content deltas do not add up to the expected text");
  if (expected.deltas !== undefined && deltas !== expected.deltas)
    fail(what, answer, `${deltas} content deltas, expected ${expected.deltas}`);
  if (finish !== "stop") fail(what, answer, `finish_reason ${finish}`);
  return events.length;
}

/**
 * A Responses SSE stream: named events whose data `type` matches, sequence numbers 0, 1, 2 …,
 * `response.created` first and `response.completed` (status completed) last, the text deltas add
 * up to the text (one per upstream chunk) and the completed response holds the same text.
 * Returns the number of events.
 */
export function checkResponsesStream(answer: Answer, expected: Expected): number {
  const what = "responses stream";
  ok(what, answer);
  const events = parseSse(answer.text);
  let text = "";
  let deltas = 0;
  let last: { type?: string; response?: { status?: string; output?: unknown[] } } | undefined;
  events.forEach((e, i) => {
    const data = JSON.parse(e.data) as {
      type?: string;
      sequence_number?: number;
      delta?: string;
      response?: { status?: string; output?: unknown[] };
    };
    if (data.type !== e.event) fail(what, answer, `event ${e.event} carries type ${data.type}`);
    if (data.sequence_number !== i) fail(what, answer, `event ${i} has sequence_number ${data.sequence_number}`);
    if (data.type === "response.output_text.delta") {
      text += data.delta ?? "";
      deltas++;
    }
    last = data;
  });
  if (events[0]?.event !== "response.created") fail(what, answer, "does not start with response.created");
  if (last?.type !== "response.completed") fail(what, answer, `ends with ${last?.type}, not response.completed`);
  if (last.response?.status !== "completed") fail(what, answer, `completed with status ${last.response?.status}`);
  if (text !== expected.text) fail(what, answer, "text deltas do not add up to the expected text");
  if (expected.deltas !== undefined && deltas !== expected.deltas)
    fail(what, answer, `${deltas} text deltas, expected ${expected.deltas}`);
  const output = last.response.output as { type?: string; content?: { text?: string }[] }[] | undefined;
  if (output?.find((o) => o.type === "message")?.content?.[0]?.text !== expected.text)
    fail(what, answer, "response.completed does not hold the text");
  return events.length;
}
