/** Builds retrieval-augmented chat over the completion gateway and the search domain. */
import type { Logger } from "pino";
import type { CompletionGateway } from "../completion/completion-gateway.js";
import type { SearchDomain } from "../search/search-module.js";
import type { Database } from "../storage/database.js";
import { ArtifactStore } from "./artifact-store.js";
import { ContextRetriever } from "./context-retriever.js";
import { RetrievalChat } from "./retrieval-chat.js";

export interface RetrievalDomain {
  retrievalChat: RetrievalChat;
  artifacts: ArtifactStore;
}

export function openRetrieval(deps: {
  gateway: CompletionGateway;
  search: SearchDomain;
  db: Database;
  logger?: Logger;
}): RetrievalDomain {
  const artifacts = new ArtifactStore(deps.db);
  const retriever = new ContextRetriever(deps.search);
  return {
    artifacts,
    retrievalChat: new RetrievalChat({ gateway: deps.gateway, retriever, artifacts, logger: deps.logger }),
  };
}
