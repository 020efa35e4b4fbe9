/** agentgate.v1 retrieval messages (RetrievalOptions, Citation, Artifact) <-> src/retrieval types. */
import { create } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import {
  ArtifactSchema,
  ArtifactStatus as PbArtifactStatus,
  CitationSchema,
  RetrievalResultSchema,
  RetrievalSource as PbSource,
  type Artifact as PbArtifact,
  type Citation as PbCitation,
  type RetrievalOptions as PbRetrievalOptions,
  type RetrievalResult as PbRetrievalResult,
} from "../../gen/agentgate/v1/completion_service_pb.js";
import { invalidArgument } from "../errors/gateway-error.js";
import type {
  Artifact,
  ArtifactStatus,
  Citation,
  RetrievalOptions,
  RetrievalResult,
  RetrievalSource,
} from "../retrieval/types.js";
import { pbFinishReason, pbMessage, pbUsage } from "./completion-convert.js";

const SOURCES: Partial<Record<PbSource, RetrievalSource>> = {
  [PbSource.SEARCH]: "search",
  [PbSource.SYMBOLS]: "symbols",
  [PbSource.GREP]: "grep",
};
const PB_SOURCES: Record<RetrievalSource, PbSource> = {
  search: PbSource.SEARCH,
  symbols: PbSource.SYMBOLS,
  grep: PbSource.GREP,
};
const PB_STATUS: Record<ArtifactStatus, PbArtifactStatus> = {
  completed: PbArtifactStatus.COMPLETED,
  failed: PbArtifactStatus.FAILED,
  canceled: PbArtifactStatus.CANCELED,
};

/** Undefined when the request carries no retrieval message. */
export function toRetrievalOptions(o: PbRetrievalOptions | undefined): RetrievalOptions | undefined {
  if (!o) return undefined;
  return {
    query: o.query,
    root: o.root,
    maxContextTokens: o.maxContextTokens,
    maxCitations: o.maxCitations,
    sources: o.sources.map((s, i) => {
      const source = SOURCES[s];
      if (!source)
        throw invalidArgument(
          `retrieval.sources[${i}] must be RETRIEVAL_SOURCE_SEARCH, _SYMBOLS or _GREP`,
          `retrieval.sources[${i}]`,
        );
      return source;
    }),
    pathGlobs: o.pathGlobs,
    skipArtifact: o.skipArtifact,
  };
}

export function pbCitation(c: Citation): PbCitation {
  return create(CitationSchema, { ...c, sources: c.sources.map((s) => PB_SOURCES[s]) });
}

export function pbRetrievalResult(r: RetrievalResult): PbRetrievalResult {
  return create(RetrievalResultSchema, { ...r, citations: r.citations.map(pbCitation) });
}

export function pbArtifact(a: Artifact): PbArtifact {
  return create(ArtifactSchema, {
    id: a.id,
    created: timestampFromDate(a.createdAt),
    completionId: a.completionId,
    model: a.model,
    backend: a.backend,
    query: a.query,
    messages: a.messages.map(pbMessage),
    contextPrompt: a.contextPrompt,
    citations: a.citations.map(pbCitation),
    contextTokens: a.contextTokens,
    answer: pbMessage(a.answer),
    finishReason: a.finishReason ? pbFinishReason(a.finishReason) : undefined,
    usage: pbUsage(a.usage),
    status: PB_STATUS[a.status],
    error: a.error,
  });
}
