/**
 * Chat messages -> one Codex prompt (Codex takes a single prompt per turn and keeps the history itself).
 *
 * - A lone user message is sent as it is.
 * - Otherwise: system (and developer) texts first, in order, then every other message as a labelled
 *   turn ("User: …", "Assistant: …", "Tool result (name): …"), parts separated by a blank line.
 *
 * On a resumed conversation only the messages after the last assistant message are rendered: Codex
 * already holds everything before it.
 */
import type { ChatMessage } from "../../completion/types.js";

export function renderPrompt(messages: ChatMessage[]): string {
  const system = messages.filter((m) => m.role === "system" && m.content.trim());
  const turns = messages.filter((m) => m.role !== "system");
  if (system.length === 0 && turns.length === 1 && turns[0]!.role === "user") return turns[0]!.content;
  return [...system.map((m) => m.content), ...turns.map(renderTurn)].join("\n\n");
}

function renderTurn(m: ChatMessage): string {
  switch (m.role) {
    case "user":
      return `User: ${m.content}`;
    case "assistant": {
      const calls = (m.toolCalls ?? []).map((c) => `[called ${c.name}(${c.arguments})]`);
      return `Assistant: ${[m.content, ...calls].filter(Boolean).join("\n")}`;
    }
    default:
      return `Tool result (${m.name || m.toolCallId || "tool"}): ${m.content}`;
  }
}

/** The messages after the last assistant message (all of them when there is none). */
export function messagesAfterLastAnswer(messages: ChatMessage[]): ChatMessage[] {
  for (let i = messages.length - 1; i >= 0; i--) if (messages[i]!.role === "assistant") return messages.slice(i + 1);
  return messages;
}
