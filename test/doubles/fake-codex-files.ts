/**
 * The two files test/doubles/fake-codex.mjs works with: the script it follows (FAKE_CODEX_SCRIPT)
 * and the log of its invocations (FAKE_CODEX_LOG), one JSON line each.
 */
import fs from "node:fs";

/** One `codex exec` run as the fake recorded it. */
export interface FakeCodexInvocation {
  kind: string;
  argv: string[];
  cwd: string;
  stdin: string;
  prompt: string;
  codexHome: string | null;
  pid: number;
  pgid: number;
  grandchildPid?: number;
}

/** Scripts the next runs: one entry per turn (messages, reasoning, usage, fail, hang ...). */
export function writeFakeCodexScript(file: string, ...turns: Record<string, unknown>[]): void {
  fs.writeFileSync(file, JSON.stringify({ turns }));
}

/** The `exec` runs logged so far (none when the log does not exist yet). */
export function fakeCodexInvocations(logFile: string): FakeCodexInvocation[] {
  if (!fs.existsSync(logFile)) return [];
  return fs
    .readFileSync(logFile, "utf8")
    .split("\n")
    .filter(Boolean)
    .map((l) => JSON.parse(l) as FakeCodexInvocation)
    .filter((r) => r.kind === "exec");
}
