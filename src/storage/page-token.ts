/**
 * Keyset paging tokens: the (created_at, id) of a page's last row, opaque to callers. Lists are
 * ordered newest first, so the next page is `(created_at, id) < token`.
 */
import { invalidArgument } from "../errors/gateway-error.js";

export function encodePageToken(createdAt: Date, id: string): string {
  return Buffer.from(JSON.stringify([createdAt.getTime(), id])).toString("base64url");
}

export function decodePageToken(token: string): [Date, string] {
  try {
    const v = JSON.parse(Buffer.from(token, "base64url").toString("utf8")) as unknown;
    if (Array.isArray(v) && typeof v[0] === "number" && typeof v[1] === "string") return [new Date(v[0]), v[1]];
  } catch {
    // fall through
  }
  throw invalidArgument("page_token is not a token this server issued", "page_token");
}
