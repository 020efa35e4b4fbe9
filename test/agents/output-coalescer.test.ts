import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { OutputCoalescer } from "../../src/agents/output-coalescer.js";

describe("OutputCoalescer", () => {
  let clock = 0;
  let delivered: Buffer[];
  const make = () =>
    new OutputCoalescer((c) => delivered.push(c), {
      floodBytes: 1000,
      windowMs: 10,
      delayMs: 2,
      maxBytes: 5000,
      now: () => clock,
    });

  beforeEach(() => {
    vi.useFakeTimers();
    clock = 0;
    delivered = [];
  });
  afterEach(() => vi.useRealTimers());

  it("passes interactive output through at once", () => {
    const c = make();
    for (let i = 0; i < 50; i++) {
      c.push(Buffer.from("x"));
      clock += 0.4;
    }
    expect(delivered).toHaveLength(50);
  });

  it("merges a flood into fewer, larger chunks, in order and without loss", () => {
    const c = make();
    const sent: Buffer[] = [];
    for (let i = 0; i < 200; i++) {
      const chunk = Buffer.alloc(300, i % 256);
      sent.push(chunk);
      c.push(chunk);
      clock += 0.05;
      if (i % 20 === 19) vi.advanceTimersByTime(2);
    }
    c.flush();
    expect(Buffer.concat(delivered).equals(Buffer.concat(sent))).toBe(true);
    expect(delivered.length).toBeLessThan(40);
    expect(Math.max(...delivered.map((d) => d.length))).toBeLessThanOrEqual(5000 + 300);
  });

  it("delivers held output after the delay even when nothing else arrives", () => {
    const c = make();
    c.push(Buffer.alloc(1200)); // crosses the flood threshold: the next chunk is held
    c.push(Buffer.from("tail"));
    expect(delivered.map((d) => d.length)).toEqual([1200]);
    vi.advanceTimersByTime(1);
    expect(delivered).toHaveLength(1);
    vi.advanceTimersByTime(1);
    expect(delivered.map((d) => d.toString())).toContain("tail");
  });

  it("returns to pass-through once the program is quiet", () => {
    const c = make();
    c.push(Buffer.alloc(1200));
    c.push(Buffer.from("held"));
    clock += 50;
    c.push(Buffer.from("a"));
    // The held chunk goes first, then the new one, both at once.
    expect(delivered.map((d) => d.toString()).slice(1)).toEqual(["held", "a"]);
  });
});
