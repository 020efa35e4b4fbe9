/**
 * The system message that puts retrieved context in front of the model: an instruction to cite, then
 * each excerpt under its `path:start-end` label in a code fence. Tokens are estimated at 4 characters
 * each (no tokenizer for every backend's model; the estimate errs high for code).
 */
import type { Citation } from "./types.js";

export const CHARS_PER_TOKEN = 4;

export const CONTEXT_INSTRUCTIONS =
  "You are answering a question about a code repository. The excerpts below were retrieved for it; " +
  "each is headed by its citation, path:start-end (1-based, inclusive line numbers). Use them where they " +
  "are relevant and cite the ones you use as path:start-end. If they do not contain the answer, say so " +
  "rather than guessing.";

export interface PromptEntry {
  citation: Citation;
  /** Language id for the code fence ("" when unknown). */
  language: string;
}

export function estimateTokens(text: string): number {
  return Math.ceil(text.length / CHARS_PER_TOKEN);
}

/** Characters left for excerpts once the instructions are counted. */
export function contextBudgetChars(budgetTokens: number): number {
  return Math.max(0, budgetTokens * CHARS_PER_TOKEN - CONTEXT_INSTRUCTIONS.length - 2);
}

export function citationLabel(path: string, startLine: number, endLine: number): string {
  return `${path}:${startLine}-${endLine}`;
}

export function buildContextPrompt(entries: readonly PromptEntry[]): string {
  if (!entries.length) return `${CONTEXT_INSTRUCTIONS}\n\nNo excerpts were found for this question in the repository.`;
  const blocks = entries.map(({ citation: c, language }, i) => {
    // A fence longer than any backtick run in the text, so an excerpt cannot close it early.
    const longest = Math.max(0, ...[...c.text.matchAll(/`+/g)].map((m) => m[0].length));
    const fence = "`".repeat(Math.max(3, longest + 1));
    const heading = `[${i + 1}] ${c.label}${c.symbol ? ` (${c.symbol})` : ""}`;
    return `${heading}\n${fence}${language}\n${c.text}\n${fence}`;
  });
  return `${CONTEXT_INSTRUCTIONS}\n\n${blocks.join("\n\n")}`;
}
