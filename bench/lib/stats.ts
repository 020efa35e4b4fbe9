/** Percentiles and small formatting helpers for the benches. */

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile of an ascending array (p in 0..100). */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function summarize(samples: readonly number[]): Summary {
  const s = [...samples].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / (s.length || 1);
  return {
    n: s.length,
    min: s[0] ?? Number.NaN,
    p50: percentile(s, 50),
    p90: percentile(s, 90),
    p99: percentile(s, 99),
    max: s[s.length - 1] ?? Number.NaN,
    mean,
  };
}

/** Milliseconds with 3 decimals (microsecond resolution) for JSON. */
export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

export function roundSummary(s: Summary): Summary {
  return {
    n: s.n,
    min: round3(s.min),
    p50: round3(s.p50),
    p90: round3(s.p90),
    p99: round3(s.p99),
    max: round3(s.max),
    mean: round3(s.mean),
  };
}

export function ms(x: number | undefined, digits = 3): string {
  if (x === undefined || Number.isNaN(x)) return "-";
  return x.toFixed(digits);
}

export function signedMs(x: number | undefined, digits = 3): string {
  if (x === undefined || Number.isNaN(x)) return "-";
  return `${x >= 0 ? "+" : ""}${x.toFixed(digits)}`;
}

/** A plain-text table with right-aligned cells except the first column. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
  return [line(header), widths.map((w) => "-".repeat(w)).join("  "), ...rows.map(line)].join("\n");
}
