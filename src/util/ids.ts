import { randomFillSync } from "node:crypto";

const ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

// Ids are minted on the hot path (request ids, completion ids, tool-call ids); one
// randomFillSync per 4 KiB instead of one per id keeps that cheap.
const pool = Buffer.alloc(4096);
let offset = pool.length;

function randomByte(): number {
  if (offset === pool.length) {
    randomFillSync(pool);
    offset = 0;
  }
  return pool[offset++]!;
}

/**
 * A random id with a readable prefix, e.g. `chatcmpl-3k9...` (24 base62 chars, ~142 bits). The
 * Responses API writes its prefixes with an underscore (`resp_`, `msg_`): pass the prefix with it.
 */
export function newId(prefix: string, length = 24): string {
  let out = prefix.endsWith("_") ? prefix : `${prefix}-`;
  // Rejection sampling keeps every character uniform (248 = 4 * 62).
  for (let i = 0; i < length;) {
    const b = randomByte();
    if (b < 248) {
      out += ALPHABET[b % 62];
      i++;
    }
  }
  return out;
}
