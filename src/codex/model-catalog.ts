/**
 * Agentgate's model list as a Codex CLI model catalog: the `models` array Codex reads from its
 * provider's `model_catalog_url` (`GET /v1/models?client_version=…`, which also carries OpenAI's
 * `data`). Without an entry for its model Codex warns "Model metadata for `X` not found", offers no
 * apply_patch tool and sends its 17 KB default prompt; with one it uses `base_instructions` instead.
 *
 * Codex 0.169.0 rejects the WHOLE catalog ("failed to decode models response") if any entry lacks
 * slug, display_name, supported_reasoning_levels, shell_type, visibility, supported_in_api, priority,
 * base_instructions, experimental_supported_tools, truncation_policy or support_verbosity, or has an
 * unknown enum value, so every entry carries every field (test/codex/real-codex-config.test.ts).
 */
import type { ModelInfo } from "../completion/types.js";

/** Codex's `ReasoningEffort` values that agentgate can honour (Ollama: `think` on/off or a level). */
export type CodexReasoningEffort = "none" | "low" | "medium" | "high";

export interface CodexModelEntry {
  slug: string;
  display_name: string;
  description: string;
  /** Only for thinking models: Codex then sends `reasoning.effort`; without it only `{summary:"auto"}`. */
  default_reasoning_level?: CodexReasoningEffort;
  supported_reasoning_levels: { effort: CodexReasoningEffort; description: string }[];
  /** Any value but "disabled" gets the `exec_command`/`write_stdin` tools; this one names them. */
  shell_type: "unified_exec";
  visibility: "list";
  supported_in_api: true;
  /** Picker order. */
  priority: number;
  /** "freeform": Codex offers apply_patch as a `custom` grammar tool. Absent: no apply_patch tool. */
  apply_patch_tool_type?: "freeform";
  truncation_policy: { mode: "tokens"; limit: number };
  supports_parallel_tool_calls: boolean;
  context_window: number;
  experimental_supported_tools: string[];
  supports_reasoning_summaries: boolean;
  support_verbosity: boolean;
  base_instructions: string;
}

export interface CodexModelCatalog {
  models: CodexModelEntry[];
}

export interface CodexCatalogOptions {
  /**
   * Upper bound on every model's window: the `num_ctx` agentgate asks Ollama for (OLLAMA_NUM_CTX).
   * Ollama reports the trained length, but a request only gets num_ctx; overstating it would stop
   * Codex from compacting before Ollama silently truncates. 0 or unset: no cap.
   */
  maxContextWindow?: number;
  /** Listed first (highest priority): the model agentgate uses when a request names none. */
  defaultModel?: string;
}

/** For models whose backend reports no context length (OpenAI-compatible upstreams). */
export const DEFAULT_CONTEXT_WINDOW = 32_768;

/**
 * Replaces Codex's 17 KB default prompt: small models follow a short, concrete prompt better, and
 * every token of it is paid on every turn. The tool names and the patch grammar are the ones Codex
 * 0.169.0 offers (`exec_command`, the freeform `apply_patch`).
 */
export const AGENT_INSTRUCTIONS = `You are a coding agent in the Codex CLI, working in the user's current directory on their machine.

Tools:
- exec_command runs a shell command: {"cmd": "ls -la"}. Use "workdir" instead of cd. Inspect before you change anything (ls, rg -n PATTERN, sed -n 1,120p FILE), and read each output before the next step.
- apply_patch edits files. Its input is the raw patch text, not JSON:
*** Begin Patch
*** Add File: src/hello.txt
+first line of the new file
*** Update File: src/app.py
@@ def greet():
-    print("hi")
+    print("hello")
*** Delete File: old.txt
*** End Patch
  Paths are relative to the working directory. In an update, every line starts with " " (unchanged context), "-" (remove) or "+" (add); start each change with an @@ line and keep about 3 lines of context around it. New files need "+" on every line.

Rules:
- Do what was asked, nothing more. Never claim a result you have not seen in a tool output.
- After editing code, run the relevant test or a quick check when there is one.
- If a command fails, read the error and fix the cause instead of repeating the same call.
- Be concise: no preamble, no restating the task.
- Finish with a short summary: what you changed (which files) and how you checked it, or what is left.`;

/** For models that cannot call tools: Codex still offers them, so say plainly not to try. */
export const CHAT_ONLY_INSTRUCTIONS = `You are a helpful coding assistant in the Codex CLI. This model cannot call tools: do not try to run commands or edit files. Answer from the conversation, concisely; show code or patches inline for the user to apply.`;

/** Ollama's `think` is a level only for GPT-OSS; other thinking models switch it on or off. */
function reasoningLevels(m: ModelInfo): CodexModelEntry["supported_reasoning_levels"] {
  if (!m.capabilities.includes("thinking")) return [];
  if (/gpt-?oss/i.test(m.id) || /gpt-?oss/i.test(m.family ?? "")) {
    return [
      { effort: "low", description: "Brief reasoning: fastest answers" },
      { effort: "medium", description: "Balanced reasoning" },
      { effort: "high", description: "Longest reasoning for hard problems" },
    ];
  }
  return [
    { effort: "none", description: "Thinking off: fastest answers" },
    { effort: "medium", description: "Thinking on" },
  ];
}

function describe(m: ModelInfo, tools: boolean): string {
  const facts = [m.family, m.parameterSize, m.quantization].filter(Boolean).join(", ");
  const what = facts ? `${facts} via agentgate (${m.backend})` : `via agentgate (${m.backend})`;
  return tools ? what : `${what}; no tool calling, so it cannot run commands or edit files`;
}

/** One catalog entry per chat model; embedding-only models are left out. Pure. */
export function codexModelCatalog(models: ModelInfo[], options: CodexCatalogOptions = {}): CodexModelCatalog {
  const cap = options.maxContextWindow || Infinity;
  const listed = models.filter((m) => !(m.capabilities.includes("embedding") && !m.capabilities.includes("chat")));
  // Stable sort: the default model first, the rest in the backend's order.
  const ordered = [...listed].sort(
    (a, b) => Number(b.id === options.defaultModel) - Number(a.id === options.defaultModel),
  );
  return {
    models: ordered.map((m, i) => {
      const tools = m.capabilities.includes("tools");
      const levels = reasoningLevels(m);
      const contextWindow = Math.min(m.contextWindow || DEFAULT_CONTEXT_WINDOW, cap);
      return {
        slug: m.id,
        display_name: m.id,
        description: describe(m, tools),
        ...(levels.length > 0 ? { default_reasoning_level: "medium" as const } : {}),
        supported_reasoning_levels: levels,
        shell_type: "unified_exec",
        visibility: "list",
        supported_in_api: true,
        priority: i,
        ...(tools ? { apply_patch_tool_type: "freeform" as const } : {}),
        // Tool output kept in the history: an eighth of the window, at most Codex's usual 10k tokens,
        // so a few long command outputs cannot fill a 32k window.
        truncation_policy: { mode: "tokens", limit: Math.min(10_000, Math.floor(contextWindow / 8)) },
        // Codex sends parallel_tool_calls:true regardless (0.169.0); this only shapes its prompt.
        supports_parallel_tool_calls: false,
        context_window: contextWindow,
        experimental_supported_tools: [],
        supports_reasoning_summaries: false,
        support_verbosity: false,
        base_instructions: tools ? AGENT_INSTRUCTIONS : CHAT_ONLY_INSTRUCTIONS,
      };
    }),
  };
}
