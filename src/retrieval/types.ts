/** Retrieval-augmented chat (the earlier codex-context): options, citations, recorded exchanges. */
import type { ChatMessage, FinishReason, Usage } from "../completion/types.js";

export type RetrievalSource = "search" | "symbols" | "grep";
export const RETRIEVAL_SOURCES: readonly RetrievalSource[] = ["search", "symbols", "grep"];

export interface RetrievalOptions {
  /** Empty: the last user message. */
  query?: string;
  /** Search root name; empty: every root. */
  root?: string;
  /** Estimated tokens (4 characters each); 0: 2048. */
  maxContextTokens?: number;
  /** 0: 16. */
  maxCitations?: number;
  /** Empty: all three. */
  sources?: RetrievalSource[];
  pathGlobs?: string[];
  skipArtifact?: boolean;
}

export interface Citation {
  /** "path:start-end", as the prompt cites it. */
  label: string;
  /** Root name. */
  root: string;
  path: string;
  startLine: number;
  endLine: number;
  sources: RetrievalSource[];
  /** Fused reciprocal-rank score; higher is better. */
  score: number;
  /** The declaration the range covers, "" when unknown. */
  symbol: string;
  /** The lines as read from disk when retrieved. */
  text: string;
}

export interface RetrievedContext {
  query: string;
  citations: Citation[];
  /** The system message that carries the citations. */
  prompt: string;
  /** Estimated tokens of `prompt`. */
  tokens: number;
  /** Sources that failed or found nothing usable, and why. */
  notices: string[];
}

export interface RetrievalResult {
  citations: Citation[];
  contextTokens: number;
  /** "" when the exchange is not recorded. */
  artifactId: string;
  notices: string[];
}

export type ArtifactStatus = "completed" | "failed" | "canceled";

/** One recorded exchange (table completion_artifacts). */
export interface Artifact {
  id: string;
  createdAt: Date;
  completionId: string;
  /** Model id as the client sent it. */
  model: string;
  backend: string;
  query: string;
  /** The client's messages, without the injected context ([] in listings). */
  messages: ChatMessage[];
  /** The injected system message ("" in listings). */
  contextPrompt: string;
  /** Texts are "" in listings. */
  citations: Citation[];
  contextTokens: number;
  answer: ChatMessage;
  finishReason?: FinishReason;
  usage?: Usage;
  status: ArtifactStatus;
  error: string;
}
