// codexModelCatalog: agentgate's model list as Codex's catalog. What Codex 0.169.0 itself accepts is
// checked with the real CLI in real-codex-config.test.ts; this pins the mapping rules.
import { describe, expect, it } from "vitest";
import type { ModelInfo } from "../../src/completion/types.js";
import {
  AGENT_INSTRUCTIONS,
  CHAT_ONLY_INSTRUCTIONS,
  DEFAULT_CONTEXT_WINDOW,
  codexModelCatalog,
} from "../../src/codex/model-catalog.js";

const model = (id: string, over: Partial<ModelInfo> = {}): ModelInfo => ({
  id,
  backend: "ollama",
  ownedBy: "library",
  created: 0,
  capabilities: ["chat", "completion", "tools"],
  ...over,
});

const MODELS: ModelInfo[] = [
  model("llama3.2:3b", { contextWindow: 131_072, family: "llama", parameterSize: "3.2B", quantization: "Q4_K_M" }),
  model("qwen3:8b", { contextWindow: 40_960, capabilities: ["chat", "completion", "tools", "thinking"] }),
  model("gpt-oss:20b", { contextWindow: 131_072, capabilities: ["chat", "completion", "tools", "thinking"] }),
  model("gemma3:1b", { contextWindow: 32_768, capabilities: ["chat", "completion"] }),
  model("nomic-embed-text", { capabilities: ["embedding"] }),
  model("vllm/some-model", { backend: "vllm", capabilities: ["chat", "completion"] }),
];

// The fields Codex 0.169.0 refuses a catalog without (measured by deleting each one in turn).
const REQUIRED = [
  "slug",
  "display_name",
  "supported_reasoning_levels",
  "shell_type",
  "visibility",
  "supported_in_api",
  "priority",
  "base_instructions",
  "experimental_supported_tools",
  "truncation_policy",
  "support_verbosity",
];
const EFFORTS = ["none", "minimal", "low", "medium", "high", "xhigh"];

describe("codexModelCatalog", () => {
  const { models } = codexModelCatalog(MODELS, { maxContextWindow: 65_536, defaultModel: "qwen3:8b" });
  const bySlug = (slug: string) => models.find((m) => m.slug === slug)!;

  it("lists every chat model, not embedding-only ones, with the default model first", () => {
    expect(models.map((m) => m.slug)).toEqual([
      "qwen3:8b",
      "llama3.2:3b",
      "gpt-oss:20b",
      "gemma3:1b",
      "vllm/some-model",
    ]);
    expect(models.map((m) => m.priority)).toEqual([0, 1, 2, 3, 4]);
  });

  it("gives every entry every field Codex requires, with values from Codex's enums", () => {
    for (const m of models) {
      for (const key of REQUIRED) expect(m, `${m.slug}.${key}`).toHaveProperty(key);
      expect(m.shell_type).toBe("unified_exec");
      expect(m.visibility).toBe("list");
      expect(m.supported_in_api).toBe(true);
      expect(m.truncation_policy.mode).toBe("tokens");
      expect(m.truncation_policy.limit).toBeGreaterThan(0);
      expect(Number.isInteger(m.context_window)).toBe(true);
      for (const l of m.supported_reasoning_levels) expect(EFFORTS).toContain(l.effort);
      if (m.default_reasoning_level) {
        expect(m.supported_reasoning_levels.map((l) => l.effort)).toContain(m.default_reasoning_level);
      }
      expect(m.display_name).toBe(m.slug);
      expect(m.description.length).toBeGreaterThan(0);
    }
    // Plain JSON: nothing undefined that would vanish or differ when served.
    expect(JSON.parse(JSON.stringify(models))).toEqual(models);
  });

  it("offers reasoning levels only for thinking models: levels for GPT-OSS, on/off for the others", () => {
    expect(bySlug("llama3.2:3b").supported_reasoning_levels).toEqual([]);
    expect(bySlug("llama3.2:3b")).not.toHaveProperty("default_reasoning_level");
    expect(bySlug("qwen3:8b").supported_reasoning_levels.map((l) => l.effort)).toEqual(["none", "medium"]);
    expect(bySlug("qwen3:8b").default_reasoning_level).toBe("medium");
    expect(bySlug("gpt-oss:20b").supported_reasoning_levels.map((l) => l.effort)).toEqual(["low", "medium", "high"]);
    expect(bySlug("gpt-oss:20b").default_reasoning_level).toBe("medium");
  });

  it("uses the model's context window, capped at the num_ctx agentgate requests, else a default", () => {
    expect(bySlug("qwen3:8b").context_window).toBe(40_960);
    expect(bySlug("llama3.2:3b").context_window).toBe(65_536);
    expect(bySlug("vllm/some-model").context_window).toBe(DEFAULT_CONTEXT_WINDOW);
    const uncapped = codexModelCatalog(MODELS).models;
    expect(uncapped.find((m) => m.slug === "llama3.2:3b")!.context_window).toBe(131_072);
    // Tool output kept in the history scales with the window, up to 10k tokens.
    expect(bySlug("llama3.2:3b").truncation_policy.limit).toBe(8_192);
    expect(uncapped.find((m) => m.slug === "llama3.2:3b")!.truncation_policy.limit).toBe(10_000);
  });

  it("gives tool-calling models the freeform apply_patch and the agent prompt; others neither", () => {
    for (const slug of ["qwen3:8b", "llama3.2:3b", "gpt-oss:20b"]) {
      expect(bySlug(slug).apply_patch_tool_type).toBe("freeform");
      expect(bySlug(slug).base_instructions).toBe(AGENT_INSTRUCTIONS);
    }
    for (const slug of ["gemma3:1b", "vllm/some-model"]) {
      expect(bySlug(slug)).not.toHaveProperty("apply_patch_tool_type");
      expect(bySlug(slug).base_instructions).toBe(CHAT_ONLY_INSTRUCTIONS);
      expect(bySlug(slug).description).toMatch(/no tool calling/);
    }
    expect(bySlug("llama3.2:3b").description).toBe("llama, 3.2B, Q4_K_M via agentgate (ollama)");
  });

  it("keeps the agent prompt short and teaches exec_command and the patch grammar", () => {
    expect(AGENT_INSTRUCTIONS.length).toBeLessThan(2_500); // Codex's own is about 17 KB
    for (const s of ["exec_command", "apply_patch", "*** Begin Patch", "*** Add File: ", "*** Update File: ", "@@"]) {
      expect(AGENT_INSTRUCTIONS).toContain(s);
    }
    expect(AGENT_INSTRUCTIONS).toContain("*** End Patch");
    expect(AGENT_INSTRUCTIONS).toMatch(/summary/);
  });

  it("is empty for no models and leaves its input alone", () => {
    expect(codexModelCatalog([])).toEqual({ models: [] });
    const copy = structuredClone(MODELS);
    codexModelCatalog(MODELS, { defaultModel: "gemma3:1b" });
    expect(MODELS).toEqual(copy);
  });
});
