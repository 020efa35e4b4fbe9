/**
 * A random secret generated once per installation and kept in `kv_settings`, shared by every
 * replica on the same database (the first to write it wins; the others read that one).
 */
import { randomBytes } from "node:crypto";
import type { Queryable } from "./database.js";

export async function installationSecret(db: Queryable, key: string): Promise<string> {
  const fresh = randomBytes(32).toString("base64url");
  await db.query(`INSERT INTO kv_settings (key, value) VALUES ($1, $2::jsonb) ON CONFLICT (key) DO NOTHING`, [
    key,
    JSON.stringify(fresh),
  ]);
  const r = await db.query<{ value: unknown }>(`SELECT value FROM kv_settings WHERE key = $1`, [key]);
  const v = r.rows[0]?.value;
  return typeof v === "string" ? (v.startsWith('"') ? (JSON.parse(v) as string) : v) : fresh;
}
