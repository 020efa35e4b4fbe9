/**
 * Keyset paging over a table's (created_at, id): the token is the last row's key, opaque to callers.
 * `newest` lists go `(created_at, id) < token`, `oldest` ones `> token`.
 */
import { invalidArgument } from "../errors/gateway-error.js";
import type { Queryable } from "./database.js";

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

export interface KeysetQuery<R, T> {
  /** `SELECT <columns> FROM <from>`. */
  columns: string;
  from: string;
  /** Filters already written with $1..$n of `params`. */
  where: string[];
  params: unknown[];
  pageToken?: string;
  pageSize: number;
  order: "newest" | "oldest";
  toRecord(row: R): T;
}

export async function keysetPage<R, T extends { createdAt: Date; id: string }>(
  db: Queryable,
  q: KeysetQuery<R, T>,
): Promise<{ items: T[]; nextPageToken: string }> {
  const where = [...q.where];
  const params = [...q.params];
  if (q.pageToken) {
    const [at, id] = decodePageToken(q.pageToken);
    params.push(at, id);
    where.push(`(created_at, id) ${q.order === "newest" ? "<" : ">"} ($${params.length - 1}, $${params.length})`);
  }
  params.push(q.pageSize + 1);
  const dir = q.order === "newest" ? "DESC" : "ASC";
  const r = await db.query<R>(
    `SELECT ${q.columns} FROM ${q.from} ${where.length ? `WHERE ${where.join(" AND ")}` : ""}
      ORDER BY created_at ${dir}, id ${dir} LIMIT $${params.length}`,
    params,
  );
  const items = r.rows.slice(0, q.pageSize).map((row) => q.toRecord(row));
  const last = items.at(-1);
  return {
    items,
    nextPageToken: r.rows.length > q.pageSize && last ? encodePageToken(last.createdAt, last.id) : "",
  };
}
