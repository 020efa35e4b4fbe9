/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by function, inclusive
 * time by function, and self time by package, idle time excluded.
 *
 *   npx tsx bench/lib/cpuprofile-top.ts <file.cpuprofile> [--top 25]
 */
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
export interface CpuProfile {
  startTime: number;
  endTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileRow {
  name: string;
  ms: number;
  pct: number;
}

export interface ProfileSummary {
  busyMs: number;
  idleMs: number;
  /** Self time charged to the innermost frame on the stack that belongs to a known component. */
  byComponent: ProfileRow[];
  selfByFunction: ProfileRow[];
  inclusiveByFunction: ProfileRow[];
  selfByPackage: ProfileRow[];
}

function shortUrl(url: string): string {
  const nm = url.lastIndexOf("node_modules/");
  if (nm >= 0) return url.slice(nm + "node_modules/".length);
  return url.replace(/^file:\/\/.*?\/(src|gen|clients|bin|test|bench)\//, "$1/").replace(/^file:\/\//, "");
}

export function packageOf(url: string, fn: string): string {
  if (!url) return fn.startsWith("(") ? fn : "(native)";
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) {
    const all = [...url.matchAll(/node_modules\/((?:@[^/]+\/)?[^/]+)/g)];
    return all[all.length - 1]![1]!;
  }
  if (url.startsWith("node:")) {
    const seg = url.slice(5).split("/");
    return `node:${seg[0] === "internal" ? seg.slice(1, 2).join("/") : seg[0]}`;
  }
  const s = /\/(src|gen|clients|bin)\/([^/]+)/.exec(url);
  if (s) return `agentgate ${s[1]}/${s[2]!.replace(/\.[jt]s$/, "")}`;
  return url;
}

/**
 * `window` restricts the summary to samples taken between two CLOCK_MONOTONIC instants in
 * microseconds (V8's profile clock; `process.hrtime.bigint() / 1000n` in any process).
 */
/** Components, tried from the sampled frame outwards; the first match owns the sample. */
const COMPONENTS: [RegExp, string][] = [
  [
    /node:internal\/deps\/undici|node:internal\/webstreams|\/ollama\//,
    "upstream client: ollama + fetch (undici, web streams)",
  ],
  [/@connectrpc\/|@bufbuild\//, "Connect + protobuf"],
  [
    /\/(fastify|find-my-way|avvio|fast-json-stringify|ajv|@fastify\/[^/]+|light-my-request)\//,
    "Fastify (routing, hooks, schemas)",
  ],
  [/\/pino|\/thread-stream\//, "logging (pino)"],
  [/\/prom-client\//, "metrics (prom-client)"],
  [/\/(src|gen|clients)\//, "agentgate src"],
  [/^node:(_http_|http|internal\/http|internal\/http2)/, "node http/h2 server"],
];

export function summarizeProfile(profile: CpuProfile, top = 25, window?: readonly [number, number]): ProfileSummary {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const self = new Map<number, number>();
  let t = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    const dt = profile.timeDeltas[i] ?? 0;
    t += dt;
    if (window && (t < window[0] || t > window[1])) continue;
    const id = profile.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + dt / 1000);
  }
  const key = (n: ProfileNode) =>
    `${n.callFrame.functionName || "(anonymous)"} ${shortUrl(n.callFrame.url)}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ""}`;
  let idle = 0;
  const selfFn = new Map<string, number>();
  const selfPkg = new Map<string, number>();
  const comp = new Map<string, number>();
  for (const [id, t] of self) {
    const n = byId.get(id)!;
    if (n.callFrame.functionName === "(idle)") {
      idle += t;
      continue;
    }
    selfFn.set(key(n), (selfFn.get(key(n)) ?? 0) + t);
    const pkg = packageOf(n.callFrame.url, n.callFrame.functionName);
    selfPkg.set(pkg, (selfPkg.get(pkg) ?? 0) + t);
    let owner = n.callFrame.functionName.startsWith("(") && !n.callFrame.url ? n.callFrame.functionName : "";
    for (let x: number | undefined = id; !owner && x !== undefined; x = parent.get(x)) {
      const url = byId.get(x)!.callFrame.url;
      owner = COMPONENTS.find(([re]) => re.test(url))?.[1] ?? "";
    }
    owner ||= "other (event loop, streams, timers)";
    comp.set(owner, (comp.get(owner) ?? 0) + t);
  }
  const busy = [...selfFn.values()].reduce((a, b) => a + b, 0);
  // Inclusive time: each node's self time counts once for every distinct function on its stack.
  const incl = new Map<string, number>();
  const root = profile.nodes[0]!;
  const walk = (n: ProfileNode, stack: Set<string>): number => {
    let total = n.callFrame.functionName === "(idle)" ? 0 : (self.get(n.id) ?? 0);
    const k = key(n);
    const added = !stack.has(k);
    if (added) stack.add(k);
    for (const c of n.children ?? []) total += walk(byId.get(c)!, stack);
    if (added) {
      stack.delete(k);
      incl.set(k, (incl.get(k) ?? 0) + total);
    }
    return total;
  };
  walk(root, new Set());
  const rows = (m: Map<string, number>, skip?: (k: string) => boolean) =>
    [...m.entries()]
      .filter(([k]) => !skip?.(k))
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, t]) => ({ name, ms: Math.round(t * 10) / 10, pct: Math.round((t / busy) * 1000) / 10 }));
  return {
    busyMs: Math.round(busy),
    idleMs: Math.round(idle),
    byComponent: rows(comp),
    selfByFunction: rows(selfFn),
    inclusiveByFunction: rows(incl, (k) => k.startsWith("(root)") || k.startsWith("(program)")),
    selfByPackage: rows(selfPkg),
  };
}

export function formatProfile(s: ProfileSummary): string {
  const fmt = (title: string, rs: ProfileRow[]) =>
    [title, ...rs.map((r) => `  ${r.pct.toFixed(1).padStart(5)}%  ${r.ms.toFixed(0).padStart(7)} ms  ${r.name}`)].join(
      "\n",
    );
  return [
    `busy ${s.busyMs} ms, idle ${s.idleMs} ms`,
    fmt("self time by component (innermost known frame on the stack):", s.byComponent),
    fmt("self time by package:", s.selfByPackage),
    fmt("self time by function:", s.selfByFunction),
    fmt("inclusive time by function:", s.inclusiveByFunction),
  ].join("\n");
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values, positionals } = parseArgs({ allowPositionals: true, options: { top: { type: "string" } } });
  const file = positionals[0];
  if (!file) {
    console.error("usage: cpuprofile-top.ts <file.cpuprofile> [--top N]");
    process.exit(2);
  }
  console.log(
    formatProfile(summarizeProfile(JSON.parse(readFileSync(file, "utf8")) as CpuProfile, Number(values.top ?? 25))),
  );
}
