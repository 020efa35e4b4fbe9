/** Waits on SearchService.WatchIndex (never a fixed sleep) until the index is idle after a run. */
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { IndexState, type AgentgateClients, type IndexRootStatus } from "../../clients/index.js";

const ms = (t: IndexRootStatus["runFinishedAt"]) => (t ? timestampMs(t) : 0);

export const isIdle = (s: IndexRootStatus | undefined) => s?.state === IndexState.IDLE && s.filesQueued === 0;

/** WatchIndex until the root is idle after a run that finished at or after `since` (ms). */
export async function untilIdle(client: AgentgateClients, since = 0, timeoutMs = 30_000): Promise<IndexRootStatus> {
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  try {
    for await (const f of client.search.watchIndex({}, { signal: ac.signal }))
      if (isIdle(f.status) && ms(f.status!.runFinishedAt) > 0 && ms(f.status!.runFinishedAt) >= since) return f.status!;
  } finally {
    clearTimeout(timer);
    ac.abort();
  }
  throw new Error("WatchIndex ended before the index was idle");
}
