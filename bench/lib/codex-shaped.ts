/**
 * A synthetic first-turn request of the shape Codex CLI 0.169.0 sends to `/v1/responses`
 * (notes/codex.md §1-2), and the /v1/chat/completions request with the same content.
 *
 * Responses body: `model`, `stream`, four `message` input items with `input_text` parts (a ~17 KB
 * developer base prompt, a developer skills/sandbox message, the user `<environment_context>`, the
 * user prompt), flat function tools (exec_command, write_stdin, request_user_input, view_image,
 * get_goal, create_goal, update_goal), a `namespace` tool (multi_agent_v1 with four functions), a
 * `custom` apply_patch tool with a lark grammar and `web_search`, plus `tool_choice`,
 * `parallel_tool_calls`, `reasoning`, `store`, `include`, `prompt_cache_key`, `text`. The second
 * developer message is padded so that the whole body is `targetBytes` long.
 *
 * Chat body: what the Responses translation hands on (src/rest/responses/request.ts), written as a
 * chat request: developer messages as system messages, namespace tools flattened to
 * `<namespace>__<name>`, the custom tool as a function with one string parameter `input` whose
 * description carries the grammar, web_search dropped. Both reach the upstream as (nearly) the same
 * request, so the difference between the two is the Responses layer.
 *
 * The text is made up (no Codex prompt text is copied); only sizes and shapes follow Codex.
 */

const PARAGRAPHS = [
  "You are a coding agent running in a terminal-based assistant. You are expected to be precise, safe, and helpful.",
  "Your capabilities:\n- Receive user prompts and other context provided by the harness, such as files in the workspace.\n- Communicate with the user by streaming thinking & responses, and by making & updating plans.\n- Emit function calls to run terminal commands and apply patches.",
  "## How you work\n\nBefore making tool calls, send a brief preamble to the user explaining what you're about to do. Keep it concise: 1-2 sentences, focused on immediate, tangible next steps. Group related actions; don't send a note for every trivial read.",
  "## Planning\n\nYou have access to a `update_plan` tool which tracks steps and progress. A good plan breaks the task into meaningful, logically ordered steps that are easy to verify as you go. Do not repeat the full contents of the plan after a call; the harness already displays it.",
  "## Task execution\n\nKeep going until the query is completely resolved before ending your turn. Only terminate your turn when you are sure that the problem is solved. Autonomously resolve the query to the best of your ability, using the tools available to you.",
  '- Fix the problem at the root cause rather than applying surface-level patches.\n- Avoid unneeded complexity in your solution.\n- Do not attempt to fix unrelated bugs or broken tests.\n- Keep changes consistent with the style of the existing codebase: "minimal", focused, idiomatic.',
  "## Sandbox and approvals\n\nThe command line tool runs commands in a sandbox. Filesystem sandboxing defines which files can be read or written; network sandboxing defines whether network can be accessed without approval. When you need to run a command that requires escalated permissions, set `sandbox_permissions` and provide a one-sentence `justification`.",
  "## Validating your work\n\nIf the codebase has tests or the ability to build or run, consider using them to verify that your work is complete. Start as specific as possible to the code you changed, then make your way to broader tests as you build confidence.",
  "## Presenting your work\n\nYour final message should read naturally, like an update from a concise teammate. Use headers only when they improve scanability, wrap commands and paths in backticks, and reference files as `src/app.ts:42` so the user can open them.",
  "- Use `rg` or `rg --files` for searching text or files because it is much faster than alternatives like `grep`.\n- Prefer small, reviewable diffs.\n- Never use destructive commands such as `git reset --hard` unless the user explicitly asks for it.",
];

/** Deterministic prose of at least `bytes` bytes (ASCII), numbered sections with markdown. */
function prose(bytes: number, seed = 0): string {
  const out: string[] = [];
  let size = 0;
  for (let i = 0; size < bytes; i++) {
    const p = `${PARAGRAPHS[(i + seed) % PARAGRAPHS.length]} (${i + 1})`;
    out.push(p);
    size += p.length + 2;
  }
  return out.join("\n\n").slice(0, bytes);
}

const str = (description: string) => ({ type: "string", description });
const num = (description: string) => ({ type: "number", description });
const bool = (description: string) => ({ type: "boolean", description });

interface FunctionTool {
  type: "function";
  name: string;
  description: string;
  strict: boolean;
  parameters: Record<string, unknown>;
}

function fn(name: string, description: string, properties: Record<string, unknown>, required: string[]): FunctionTool {
  return {
    type: "function",
    name,
    description,
    strict: false,
    parameters: { type: "object", properties, required, additionalProperties: false },
  };
}

const FLAT_TOOLS: FunctionTool[] = [
  fn(
    "exec_command",
    "Runs a command in a PTY, returning output or a session ID for ongoing interaction. Long-running commands keep running in the background; poll them with write_stdin. Output beyond max_output_tokens is truncated from the middle.",
    {
      cmd: str("Shell command to execute."),
      workdir: str("Optional working directory to run the command in; defaults to the turn cwd."),
      shell: str("Shell binary to launch. Defaults to the user's default shell."),
      login: bool("Whether to run the shell with -l/-i semantics. Defaults to true."),
      tty: bool("Whether to allocate a TTY for the command. Defaults to false (plain pipes)."),
      yield_time_ms: num("How long to wait (in milliseconds) for output before yielding."),
      max_output_tokens: num("Maximum number of tokens to return. Excess output will be truncated."),
      sandbox_permissions: str(
        'Sandbox permissions for the command. Set to "require_escalated" to request running without sandbox restrictions; defaults to "use_default".',
      ),
      justification: str(
        "Only set if sandbox_permissions is require_escalated. A one-sentence question asking the user for approval.",
      ),
      prefix_rule: {
        type: "array",
        items: { type: "string" },
        description:
          "Only specify when sandbox_permissions is require_escalated. A prefix of the command that similar future commands may run without asking again.",
      },
    },
    ["cmd"],
  ),
  fn(
    "write_stdin",
    "Writes characters to an existing exec_command session and returns recent output. Send an empty string to poll for output without writing.",
    {
      session_id: num("Identifier of the running exec_command session."),
      chars: str("Bytes to write to stdin (may be empty to poll)."),
      yield_time_ms: num("How long to wait (in milliseconds) for output before yielding."),
      max_output_tokens: num("Maximum number of tokens to return. Excess output will be truncated."),
    },
    ["session_id"],
  ),
  fn(
    "request_user_input",
    "Asks the user one to three short questions and waits for the answers. Use only when the task cannot continue without a decision from the user.",
    {
      questions: {
        type: "array",
        description: "Questions to show to the user.",
        items: {
          type: "object",
          properties: {
            id: str("Stable identifier for mapping answers (snake_case)."),
            header: str("Short header label shown in the UI (12 or fewer chars)."),
            question: str("Single-sentence prompt shown to the user."),
            options: {
              type: "array",
              items: {
                type: "object",
                properties: { label: str("User-facing label."), description: str("One short sentence.") },
                required: ["label", "description"],
                additionalProperties: false,
              },
            },
          },
          required: ["id", "header", "question", "options"],
          additionalProperties: false,
        },
      },
    },
    ["questions"],
  ),
  fn(
    "view_image",
    "Attach a local image (by filesystem path) to the conversation context for this turn.",
    { path: str("Local filesystem path to an image file.") },
    ["path"],
  ),
  fn("get_goal", "Returns the current goal of this thread, its status and its progress notes.", {}, []),
  fn(
    "create_goal",
    "Sets a long-running goal for this thread. The goal stays visible across turns until it is completed or replaced.",
    {
      objective: str("What has to be true when the goal is reached, in one or two sentences."),
      success_criteria: { type: "array", items: { type: "string" }, description: "Checks that prove the goal." },
    },
    ["objective"],
  ),
  fn(
    "update_goal",
    "Updates the status of the current goal, with a short note on progress or on why it is blocked.",
    {
      status: { type: "string", enum: ["in_progress", "blocked", "completed", "abandoned"] },
      note: str("One or two sentences on what changed."),
    },
    ["status"],
  ),
];

const NAMESPACE_TOOL = {
  type: "namespace",
  name: "multi_agent_v1",
  description: "Tools to run sub-agents in parallel and collect their results.",
  tools: [
    fn(
      "spawn_agent",
      "Starts a sub-agent with its own context on a well-scoped task and returns its id at once.",
      {
        task: str("The task, self-contained: the sub-agent does not see this conversation."),
        model: str("Optional model override."),
        sandbox_mode: { type: "string", enum: ["read-only", "workspace-write"] },
      },
      ["task"],
    ),
    fn(
      "send_input",
      "Sends a follow-up message to a running sub-agent.",
      { id: str("Agent id from spawn_agent."), message: str("The message.") },
      ["id", "message"],
    ),
    fn(
      "wait",
      "Waits until one of the given sub-agents finishes or the timeout passes; returns their final messages.",
      { ids: { type: "array", items: { type: "string" } }, timeout_ms: num("Maximum wait in milliseconds.") },
      ["ids"],
    ),
    fn("close_agent", "Stops a sub-agent and frees its resources.", { id: str("Agent id from spawn_agent.") }, ["id"]),
  ],
};

const APPLY_PATCH_GRAMMAR = `start: begin_patch hunk+ end_patch
begin_patch: "*** Begin Patch" LF
end_patch: "*** End Patch" LF?

hunk: add_hunk | delete_hunk | update_hunk
add_hunk: "*** Add File: " filename LF add_line+
delete_hunk: "*** Delete File: " filename LF
update_hunk: "*** Update File: " filename LF change_move? change?

filename: /(.+)/
add_line: "+" /(.*)/ LF -> line

change_move: "*** Move to: " filename LF
change: (change_context | change_line)+ eof_line?
change_context: ("@@" | "@@ " /(.+)/) LF
change_line: ("+" | "-" | " ") /(.*)/ LF
eof_line: "*** End of File" LF

%import common.LF
`;

const APPLY_PATCH_DESCRIPTION =
  "Use the `apply_patch` tool to edit files. This is a FREEFORM tool, so do not wrap the patch in JSON. Each file operation starts with an action header (Add File, Delete File or Update File); an update may be followed by a Move to line and by hunks that start with @@ and show three lines of context around each change.";

const CUSTOM_TOOL = {
  type: "custom",
  name: "apply_patch",
  description: APPLY_PATCH_DESCRIPTION,
  format: { type: "grammar", syntax: "lark", definition: APPLY_PATCH_GRAMMAR },
};

const WEB_SEARCH = { type: "web_search", external_web_access: false, search_content_types: ["text"] };

const ENVIRONMENT = `<environment_context>
  <cwd>/home/user/projects/agentgate</cwd>
  <approval_policy>never</approval_policy>
  <sandbox_mode>workspace-write</sandbox_mode>
  <network_access>restricted</network_access>
  <writable_roots>
    <root>/home/user/projects/agentgate</root>
    <root>/tmp</root>
  </writable_roots>
  <shell>bash</shell>
  <current_date>2026-11-22</current_date>
  <timezone>Etc/UTC</timezone>
</environment_context>`;

export interface CodexShaped {
  /** The /v1/responses body (stream as given). */
  responses: Record<string, unknown>;
  /** The /v1/chat/completions body with the same content. */
  chat: Record<string, unknown>;
}

/**
 * Both bodies for `model`, whose last user message is `prompt`; the Responses body is padded to
 * `targetBytes` (UTF-8 JSON) by growing the second developer message.
 */
export function codexShaped(model: string, prompt: string, stream: boolean, targetBytes = 40_960): CodexShaped {
  const base = prose(17_000);
  const build = (skills: string) => {
    const texts = { base, skills, environment: ENVIRONMENT, prompt };
    const responses = {
      model,
      stream,
      input: [
        { type: "message", id: "msg_0b9c4a3e-1f2d-4c5b-9a8e-000000000001", role: "developer", content: [] },
        { type: "message", id: "msg_0b9c4a3e-1f2d-4c5b-9a8e-000000000002", role: "developer", content: [] },
        { type: "message", id: "msg_0b9c4a3e-1f2d-4c5b-9a8e-000000000003", role: "user", content: [] },
        { type: "message", id: "msg_0b9c4a3e-1f2d-4c5b-9a8e-000000000004", role: "user", content: [] },
      ].map((m, i) => ({
        ...m,
        content: [{ type: "input_text", text: Object.values(texts)[i]! }],
      })),
      tools: [...FLAT_TOOLS, NAMESPACE_TOOL, CUSTOM_TOOL, WEB_SEARCH],
      tool_choice: "auto",
      parallel_tool_calls: true,
      reasoning: { summary: "auto" },
      store: false,
      include: ["reasoning.encrypted_content"],
      prompt_cache_key: "0b9c4a3e-1f2d-4c5b-9a8e-7d6c5b4a3f2e",
      text: { verbosity: "low" },
    };
    const asChatTool = (t: FunctionTool, name = t.name) => ({
      type: "function",
      function: { name, description: t.description, parameters: t.parameters, strict: t.strict },
    });
    const chat = {
      model,
      stream,
      messages: [
        { role: "system", content: base },
        { role: "system", content: skills },
        { role: "user", content: ENVIRONMENT },
        { role: "user", content: prompt },
      ],
      tools: [
        ...FLAT_TOOLS.map((t) => asChatTool(t)),
        ...NAMESPACE_TOOL.tools.map((t) => asChatTool(t, `${NAMESPACE_TOOL.name}__${t.name}`)),
        {
          type: "function",
          function: {
            name: CUSTOM_TOOL.name,
            description: `${APPLY_PATCH_DESCRIPTION}\nPass the tool's whole input as the string parameter "input".\nThe input must follow this lark grammar:\n${APPLY_PATCH_GRAMMAR}`,
            parameters: {
              type: "object",
              properties: { input: { type: "string", description: "The tool's complete input" } },
              required: ["input"],
            },
          },
        },
      ],
      tool_choice: "auto",
      parallel_tool_calls: true,
    };
    return { responses, chat };
  };
  const unpadded = Buffer.byteLength(JSON.stringify(build("").responses));
  const skills = prose(Math.max(0, targetBytes - unpadded), 3);
  // prose() is ASCII, but JSON escapes its newlines (2 bytes each): cut what that adds.
  const bodies = build(skills);
  const over = Buffer.byteLength(JSON.stringify(bodies.responses)) - targetBytes;
  return over > 0 ? build(skills.slice(0, skills.length - over)) : bodies;
}
