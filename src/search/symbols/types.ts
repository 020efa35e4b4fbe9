import type { SymbolKind } from "../../../gen/agentgate/v1/search_service_pb.js";

/** One declaration found in a file; lines are 1-based and inclusive. */
export interface CodeSymbolInfo {
  name: string;
  kind: SymbolKind;
  /** The path as given to extractSymbols (root-relative in the indexer). */
  path: string;
  /** Language id from the registry ("typescript", "python" ...). */
  language: string;
  /** First line of the declaration, decorators/attributes included, doc comments excluded. */
  startLine: number;
  endLine: number;
  /** The declaration's header up to its body, whitespace-collapsed and capped. */
  signature: string;
  /** Name of the enclosing declaration ("Circle" for a method), "" at top level. */
  container: string;
}
