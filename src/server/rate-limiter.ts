/**
 * RATE_LIMIT_RPM: a token bucket per caller (token digest, or client address when
 * auth is off). Capacity is one minute's worth, refilled continuously.
 */
import { createHash } from "node:crypto";
import { GatewayError } from "../errors/gateway-error.js";

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();
  private readonly perMs: number;

  constructor(
    private readonly rpm: number,
    private readonly now: () => number = Date.now,
  ) {
    this.perMs = rpm / 60_000;
  }

  get enabled(): boolean {
    return this.rpm > 0;
  }

  /** Callers are keyed by a digest so raw tokens are never kept as map keys. */
  static callerKey(token: string | undefined, address: string | undefined): string {
    return token ? `t:${createHash("sha256").update(token).digest("base64url").slice(0, 22)}` : `a:${address ?? "?"}`;
  }

  /** Takes one request from the caller's bucket or throws resource_exhausted. */
  take(key: string): void {
    if (!this.enabled) return;
    const now = this.now();
    const b = this.buckets.get(key) ?? { tokens: this.rpm, at: now };
    b.tokens = Math.min(this.rpm, b.tokens + (now - b.at) * this.perMs);
    b.at = now;
    if (b.tokens < 1) {
      this.buckets.set(key, b);
      const waitS = Math.ceil((1 - b.tokens) / this.perMs / 1000);
      throw new GatewayError(
        "resource_exhausted",
        `rate limit of ${this.rpm} requests per minute reached; try again in ${waitS}s`,
        {
          code: "rate_limit_exceeded",
          retryAfterSeconds: waitS,
        },
      );
    }
    b.tokens -= 1;
    this.buckets.set(key, b);
    if (this.buckets.size > 10_000) this.evictFull(now);
  }

  /** Drops buckets that have refilled completely: they carry no state. */
  private evictFull(now: number): void {
    for (const [k, b] of this.buckets) if (b.tokens + (now - b.at) * this.perMs >= this.rpm) this.buckets.delete(k);
  }
}
