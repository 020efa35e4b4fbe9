import { randomBytes } from "node:crypto";

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** A random id with a readable prefix, e.g. `chatcmpl-3k9...` (24 base62 chars, ~143 bits). */
export function newId(prefix: string, length = 24): string {
  const bytes = randomBytes(length);
  let out = "";
  // 256 % 62 bias is negligible for ids that only need to be unique.
  for (let i = 0; i < length; i++) out += ALPHABET[bytes[i]! % 62];
  return `${prefix}-${out}`;
}
