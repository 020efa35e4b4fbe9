/** The `retrieval` request extension and the `retrieval_context` answer field of /v1/chat/completions. */
import type { RetrievalOptions, RetrievalResult, RetrievalSource } from "../../retrieval/types.js";
import type { ChatCompletionRequest } from "./schemas.js";

/** Undefined when the request does not ask for retrieval (absent or false). */
export function toRetrievalOptions(r: ChatCompletionRequest["retrieval"]): RetrievalOptions | undefined {
  if (r === undefined || r === false) return undefined;
  if (r === true) return {};
  return {
    query: r.query,
    root: r.root,
    maxContextTokens: r.max_context_tokens,
    maxCitations: r.max_citations,
    sources: r.sources as RetrievalSource[] | undefined,
    pathGlobs: r.path_globs,
    skipArtifact: r.skip_artifact,
  };
}

export function wireRetrievalContext(r: RetrievalResult) {
  return {
    citations: r.citations.map((c) => ({
      label: c.label,
      root: c.root,
      path: c.path,
      start_line: c.startLine,
      end_line: c.endLine,
      sources: c.sources,
      score: c.score,
      symbol: c.symbol,
      text: c.text,
    })),
    tokens_injected: r.contextTokens,
    artifact_id: r.artifactId,
    notices: r.notices,
  };
}
