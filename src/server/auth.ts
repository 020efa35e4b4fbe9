/**
 * The one bearer check shared by the REST hook and the Connect interceptor.
 * Tokens are compared as SHA-256 digests with timingSafeEqual, so neither the
 * content nor the length of the expected token leaks through timing.
 */
import { createHash, timingSafeEqual } from "node:crypto";
import { GatewayError } from "../errors/gateway-error.js";

export interface HeaderSource {
  get(name: string): string | null | undefined;
}

const digest = (s: string) => createHash("sha256").update(s, "utf8").digest();

/** The presented credential: `Authorization: Bearer x` or `X-AppHub-Proxy-Token: x`. */
export function presentedToken(headers: HeaderSource): string | undefined {
  const auth = headers.get("authorization");
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  return headers.get("x-apphub-proxy-token") || undefined;
}

export class TokenAuth {
  private readonly expected: Buffer | undefined;

  constructor(token: string | undefined) {
    this.expected = token ? digest(token) : undefined;
  }

  get enabled(): boolean {
    return this.expected !== undefined;
  }

  /** Throws `unauthenticated` unless auth is off or the token matches. */
  check(headers: HeaderSource): void {
    if (!this.expected) return;
    const given = presentedToken(headers);
    if (given === undefined) {
      throw new GatewayError("unauthenticated", "missing credentials: send Authorization: Bearer <token>", {
        code: "missing_token",
      });
    }
    if (!timingSafeEqual(digest(given), this.expected)) {
      throw new GatewayError("unauthenticated", "invalid token", { code: "invalid_api_key" });
    }
  }
}

/** Adapts Node's header object to HeaderSource. */
export function nodeHeaders(h: Record<string, string | string[] | undefined>): HeaderSource {
  return {
    get(name) {
      const v = h[name];
      return Array.isArray(v) ? v[0] : v;
    },
  };
}
