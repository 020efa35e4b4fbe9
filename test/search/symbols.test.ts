import { readdirSync, readFileSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { SymbolKind, SymbolMatchMode } from "../../gen/agentgate/v1/search_service_pb.js";
import {
  extractSymbols,
  languageForPath,
  matchSymbols,
  parseSymbols,
  type CodeSymbolInfo,
} from "../../src/search/symbols/index.js";

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "../fixtures/search/symbols");
const read = (name: string): string => readFileSync(join(FIXTURES, name), "utf8");

/** "start-end KIND container.name | signature": one line per symbol, so a diff shows what moved. */
function render(s: CodeSymbolInfo): string {
  return `${s.startLine}-${s.endLine} ${SymbolKind[s.kind]} ${s.container ? `${s.container}.` : ""}${s.name} | ${s.signature}`;
}

// Every symbol of every fixture with its exact lines, kind, container and signature (checked by hand
// against the files: decorators/attributes belong to the declaration, doc comments do not).
const EXPECTED: Record<string, string[]> = {
  "sample.ts": [
    "4-4 CONSTANT MAX_RETRIES | export const MAX_RETRIES = 3",
    "5-5 VARIABLE counter | let counter = 0",
    "7-10 INTERFACE Shape | export interface Shape<T extends object = object>",
    "8-8 METHOD Shape.area | area(): number",
    "12-12 TYPE Handler | export type Handler<E> = (event: E) => Promise<void>",
    "14-17 ENUM Color | export enum Color",
    "19-21 FUNCTION sealed | function sealed(target: unknown): void",
    "23-45 CLASS Circle | export class Circle<T extends object> extends EventEmitter implements Shape<T>",
    "26-28 METHOD Circle.constructor | constructor(private readonly radius: number)",
    "30-32 METHOD Circle.area | area(): number",
    '34-40 METHOD Circle.grow | async grow(factor: number, label = "x",): Promise<Circle<T>>',
    "42-44 METHOD Circle.diameter | get diameter(): number",
    "47-49 FUNCTION makeCircle | export default function makeCircle(r: number): Circle<object>",
    "51-53 FUNCTION parseShape | export const parseShape = async (input: string): Promise<Shape | null> =>",
    "55-59 MODULE Geometry | export namespace Geometry",
    "56-58 FUNCTION Geometry.origin | export function origin(): [number, number]",
    "61-63 CLASS Base | abstract class Base",
    "62-62 METHOD Base.describe | abstract describe(): string",
    '65-67 MODULE augment | declare module "augment"',
    "66-66 FUNCTION augment.extra | export function extra(): void",
  ],
  "widget.tsx": [
    "3-3 TYPE Props | type Props = { label: string; onClick?: () => void }",
    "5-7 FUNCTION Button | export function Button({ label, onClick }: Props)",
    "9-16 FUNCTION Counter | export const Counter: React.FC<{ start: number }> = ({ start }) =>",
    "18-22 CLASS Panel | export default class Panel extends React.Component<Props>",
    "19-21 METHOD Panel.render | render()",
  ],
  "lib.js": [
    "3-3 CONSTANT DEFAULT_PORT | const DEFAULT_PORT = 8080",
    "5-7 FUNCTION createServer | function createServer(options = {})",
    "9-22 CLASS Router | class Router",
    "12-15 METHOD Router.add | add(path, handler)",
    "17-21 METHOD Router.from | static from(entries)",
    "24-26 FUNCTION handle | const handle = function namedHandler(req)",
    "28-28 FUNCTION route | export const route = (path) =>",
  ],
  "component.jsx": [
    "1-3 FUNCTION Greeting | export function Greeting({ name })",
    "5-13 CLASS App | export class App extends Component",
    "6-12 METHOD App.render | render()",
  ],
  "models.py": [
    "5-5 CONSTANT MAX_ITEMS | MAX_ITEMS = 100",
    "6-6 VARIABLE _cache | _cache = {}",
    "9-14 FUNCTION log_calls | def log_calls(fn):",
    "10-12 FUNCTION log_calls.wrapper | def wrapper(*args, **kwargs):",
    "17-32 CLASS Item | class Item:",
    "24-26 METHOD Item.label | def label(self) -> str:",
    "28-32 CLASS Item.Meta | class Meta:",
    "31-32 METHOD Meta.describe | def describe(self):",
    "35-44 CLASS Store | class Store(object):",
    "36-37 METHOD Store.__init__ | def __init__(self, items: list[Item] | None = None) -> None:",
    "39-44 METHOD Store.total | async def total(self, discount: float = 0.0,) -> float:",
    "47-48 FUNCTION top_level | def top_level(a, b=2, *rest):",
  ],
  "server.go": [
    "8-8 CONSTANT DefaultPort | const DefaultPort = 8080",
    "11-11 CONSTANT ModeA | ModeA = iota",
    "12-12 CONSTANT ModeB | ModeB",
    '15-15 VARIABLE ErrClosed | var ErrClosed = errors.New("closed")',
    "17-17 TYPE Handler | type Handler func(ctx context.Context) error",
    "19-22 INTERFACE Store | type Store interface",
    "20-20 METHOD Store.Get | Get(key string) (string, error)",
    "21-21 METHOD Store.Put | Put(key, value string) error",
    "24-27 STRUCT Server | type Server struct",
    "29-29 TYPE ID | type ID = string",
    "31-34 STRUCT Pair | type Pair[K comparable, V any] struct",
    "36-38 FUNCTION New | func New(port int) *Server",
    "40-45 METHOD Server.Start | func (s *Server) Start(ctx context.Context) error",
    "47-49 METHOD Pair.Swap | func (p Pair[K, V]) Swap() Pair[K, V]",
    "51-57 FUNCTION Map | func Map[T, U any](in []T, f func(T) U) []U",
  ],
  "shapes.rs": [
    "3-3 CONSTANT ORIGIN | pub const ORIGIN: (i32, i32) = (0, 0)",
    "4-4 VARIABLE COUNTER | static COUNTER: u32 = 0",
    "7-12 TRAIT Shape | pub trait Shape",
    "8-8 METHOD Shape.area | fn area(&self) -> f64",
    "9-11 METHOD Shape.name | fn name(&self) -> String",
    "14-17 STRUCT Circle | pub struct Circle<T>",
    "19-22 ENUM Kind | pub enum Kind",
    "24-24 TYPE Result | pub type Result<T> = std::result::Result<T, String>",
    "27-29 METHOD Circle.area | fn area(&self) -> f64",
    "33-35 METHOD Circle.new | pub fn new(radius: T) -> Self",
    "37-42 METHOD Circle.describe | pub(crate) fn describe(&self) -> String where T: Clone,",
    "45-49 MODULE util | pub mod util",
    "46-48 FUNCTION util.clamp | pub fn clamp(v: f64, lo: f64, hi: f64) -> f64",
    "51-55 MACRO square | macro_rules! square",
    "57-63 FUNCTION fetch | pub async fn fetch<T>(url: &str) -> Result<T> where T: Default,",
  ],
  "Inventory.java": [
    "7-41 CLASS Inventory | @Deprecated public class Inventory<T extends Comparable<T>>",
    "11-12 METHOD Inventory.Inventory | public Inventory()",
    "14-17 METHOD Inventory.toString | @Override public String toString()",
    "19-25 METHOD Inventory.map | public <R> List<R> map(java.util.function.Function<T, R> f)",
    "27-29 INTERFACE Inventory.Listener | interface Listener",
    "28-28 METHOD Listener.onChange | void onChange(Inventory<?> source)",
    "31-38 ENUM Inventory.State | enum State",
    "35-37 METHOD State.isOpen | boolean isOpen()",
    "40-40 CLASS Inventory.Entry | record Entry(String name, int count)",
  ],
  "buffer.c": [
    "3-3 MACRO BUF_SIZE | #define BUF_SIZE 4096",
    "4-4 MACRO MIN | #define MIN(a, b) ((a) < (b) ? (a) : (b))",
    "6-6 TYPE size_type | typedef unsigned long size_type",
    "8-11 STRUCT buffer | struct buffer",
    "13-13 ENUM mode | enum mode",
    "15-17 TYPE point_t | typedef struct",
    "19-25 FUNCTION buffer_new | static struct buffer *buffer_new(size_type cap)",
    "27-30 FUNCTION buffer_free | void buffer_free(struct buffer *b)",
  ],
  "geometry.cpp": [
    "3-28 MODULE geo | namespace geo",
    "5-16 CLASS geo.Vec2 | template <typename T> class Vec2",
    "8-8 METHOD Vec2.Vec2 | Vec2(T x, T y) : x_(x), y_(y)",
    "9-11 METHOD Vec2.dot | T dot(const Vec2& other) const",
    "12-12 METHOD Vec2.length | T length() const",
    "18-20 STRUCT geo.Box | struct Box",
    "22-22 TYPE geo.Points | using Points = std::vector<Vec2<double>>",
    "24-26 FUNCTION geo.area | double area(const Box& b)",
    "30-33 METHOD Vec2.length | template <typename T> T geo::Vec2<T>::length() const",
  ],
  "service.rb": [
    '3-3 CONSTANT VERSION | VERSION = "1.2.0"',
    "5-21 MODULE Billing | module Billing",
    "6-18 CLASS Billing.Invoice | class Invoice < Base",
    "9-11 METHOD Invoice.initialize | def initialize(total)",
    "13-15 METHOD Invoice.parse | def self.parse(json)",
    "17-17 METHOD Invoice.to_s | def to_s =",
    "20-20 METHOD Billing.helper | def helper; end",
    "23-25 FUNCTION main | def main(argv)",
  ],
};

describe("extractSymbols on fixtures", () => {
  for (const [file, expected] of Object.entries(EXPECTED)) {
    it(`${file}: exact lines, kinds, containers and signatures`, async () => {
      const symbols = await extractSymbols(file, read(file));
      expect(symbols.map(render)).toEqual(expected);
      for (const s of symbols) {
        expect(s.path).toBe(file);
        expect(s.language).toBe(languageForPath(file)!.id);
      }
    });
  }

  it("reports languages by extension (TSX as typescript, JSX as javascript)", () => {
    expect(languageForPath("a/b.tsx")?.id).toBe("typescript");
    expect(languageForPath("a/b.JSX")?.id).toBe("javascript");
    expect(languageForPath("x.pyi")?.id).toBe("python");
    expect(languageForPath("README.md")).toBeUndefined();
  });

  it("returns nothing for a path without grammar", async () => {
    expect(await parseSymbols("notes.txt", "function x() {}")).toEqual({
      symbols: [],
      blocks: [],
      status: "unsupported",
    });
  });

  it("reports Rust impl blocks as blocks (no symbol kind), not as symbols", async () => {
    const { blocks } = await parseSymbols("shapes.rs", read("shapes.rs"));
    expect(blocks.map((b) => `${b.startLine}-${b.endLine} ${b.name} ${SymbolKind[b.kind]}`)).toEqual([
      "26-30 Circle UNSPECIFIED",
      "32-43 Circle UNSPECIFIED",
    ]);
  });

  it("keeps exact lines after non-BMP characters and CRLF line ends", async () => {
    const src = 'const s = "😀😀 ünïcödé";\r\n\r\nexport function after(a: string): void {\r\n  return;\r\n}\r\n';
    const [, fn] = await extractSymbols("u.ts", src);
    expect(fn).toMatchObject({
      name: "after",
      startLine: 3,
      endLine: 5,
      signature: "export function after(a: string): void",
    });
  });

  it("caps long signatures", async () => {
    const params = Array.from({ length: 80 }, (_, i) => `p${i}: number`).join(", ");
    const [fn] = await extractSymbols("long.ts", `function big(${params}) {}\n`);
    expect(fn!.signature.length).toBeLessThanOrEqual(200);
    expect(fn!.signature.endsWith("…")).toBe(true);
  });
});

describe("extractSymbols on malformed input", () => {
  const garbage = [
    "",
    "}}}}{{{{ ((((",
    "export class { function ( => ;;; interface < > ",
    "class A {\n  method( {\n    return\n",
    "def f(:\n  class\n\tdef g(self\n",
    "func (s *S Start( {\n type X struct {",
    "impl<T for { fn ( -> ; trait",
    "\u00ff\ufffe\ud800 lone surrogate",
    "x".repeat(200_000),
    "(".repeat(50_000),
  ];
  for (const [i, src] of garbage.entries()) {
    it(`survives garbage #${i} in every language`, async () => {
      for (const file of ["a.ts", "a.tsx", "a.js", "a.py", "a.go", "a.rs", "a.java", "a.c", "a.cpp", "a.rb"]) {
        // Deep nesting ("(" x 50k) makes every grammar's error recovery slow: the budget must stop it.
        const started = performance.now();
        const result = await parseSymbols(file, src, { timeoutMs: 250 });
        expect(performance.now() - started).toBeLessThan(5_000);
        expect(["ok", "timeout"]).toContain(result.status);
        for (const s of result.symbols) expect(s.startLine).toBeLessThanOrEqual(s.endLine);
      }
    });
  }

  it("still finds the intact declarations around a syntax error", async () => {
    const src = "function good() {}\nclass Broken {\n  m( {\n}\nfunction alsoGood() {}\n";
    const names = (await extractSymbols("e.ts", src)).map((s) => s.name);
    expect(names).toContain("good");
  });

  it("refuses binary content and oversized files without parsing", async () => {
    expect((await parseSymbols("b.ts", "const a = 1;\u0000\u0001")).status).toBe("binary");
    const big = await parseSymbols("big.ts", "let a = 1;\n".repeat(20), { maxSourceChars: 100 });
    expect(big).toMatchObject({ status: "too_large", symbols: [] });
  });

  it("gives up on the time budget, then parses the next file normally", async () => {
    const huge = "function f() { return [1, 2, 3]; }\n".repeat(20_000);
    const timedOut = await parseSymbols("t.ts", huge, { timeoutMs: 0 });
    expect(timedOut).toMatchObject({ status: "timeout", symbols: [] });
    // The cancelled parse must not leak into the next one (the parser is reset).
    const next = await extractSymbols("ok.ts", "export function fine() {}\n");
    expect(next.map(render)).toEqual(["1-1 FUNCTION fine | export function fine()"]);
  });
});

describe("matchSymbols", () => {
  const sym = (
    name: string,
    kind = SymbolKind.FUNCTION,
    path = "src/a.ts",
    language = "typescript",
  ): CodeSymbolInfo => ({
    name,
    kind,
    path,
    language,
    startLine: 1,
    endLine: 1,
    signature: name,
    container: "",
  });
  const names = (r: { symbols: { name: string }[] }): string[] => r.symbols.map((s) => s.name);
  const pool = [
    sym("getCircleSize"),
    sym("logicsx"),
    sym("GCSettings", SymbolKind.CLASS, "src/gc/settings.ts"),
    sym("get_circle_size", SymbolKind.FUNCTION, "py/geo.py", "python"),
    sym("Circle", SymbolKind.CLASS, "src/shapes/circle.ts"),
    sym("circle", SymbolKind.VARIABLE, "src/shapes/index.ts"),
    sym("drawCircle", SymbolKind.FUNCTION, "src/draw.ts"),
    sym("CircleOptions", SymbolKind.INTERFACE, "src/shapes/circle.ts"),
    sym("encircled"),
    sym("Crcl"),
  ];

  it("exact: identical name scores 1, case-only difference unless case-sensitive", () => {
    const r = matchSymbols(pool, { query: "Circle", mode: SymbolMatchMode.EXACT });
    expect(r.symbols.map((s) => [s.name, s.score])).toEqual([
      ["Circle", 1],
      ["circle", 0.95],
    ]);
    expect(names(matchSymbols(pool, { query: "Circle", mode: SymbolMatchMode.EXACT, caseSensitive: true }))).toEqual([
      "Circle",
    ]);
  });

  it("substring (the default): exact, then prefix, then word-boundary, then mid-word hits", () => {
    const r = matchSymbols(pool, { query: "circle" });
    expect(names(r)).toEqual([
      "circle",
      "Circle",
      "CircleOptions",
      "drawCircle",
      "getCircleSize",
      "get_circle_size",
      "encircled",
    ]);
    expect(r.symbols[0]!.score).toBe(1);
    for (let i = 1; i < r.symbols.length; i++) expect(r.symbols[i]!.score).toBeLessThanOrEqual(r.symbols[i - 1]!.score);
  });

  it("prefix mode", () => {
    expect(names(matchSymbols(pool, { query: "get", mode: SymbolMatchMode.PREFIX }))).toEqual([
      "getCircleSize",
      "get_circle_size",
    ]);
  });

  it("fuzzy: word-boundary and camelCase hits outrank scattered ones; substrings outrank both", () => {
    const r = matchSymbols(pool, { query: "gcs", mode: SymbolMatchMode.FUZZY });
    expect(names(r)).toEqual(["GCSettings", "getCircleSize", "get_circle_size", "logicsx"]);
    const gcs = r.symbols.find((s) => s.name === "getCircleSize")!;
    const scattered = r.symbols.find((s) => s.name === "logicsx")!;
    expect(gcs.score).toBeGreaterThan(scattered.score);
    expect(gcs.score).toBeLessThan(0.4);
    expect(names(matchSymbols(pool, { query: "crcl", mode: SymbolMatchMode.FUZZY })).slice(0, 2)).toEqual([
      "Crcl",
      "Circle",
    ]);
    expect(names(matchSymbols(pool, { query: "zzz", mode: SymbolMatchMode.FUZZY }))).toEqual([]);
  });

  it("filters by kind, language and path prefix (whole segments), and caps with truncated", () => {
    expect(names(matchSymbols(pool, { query: "circle", kinds: [SymbolKind.CLASS, SymbolKind.INTERFACE] }))).toEqual([
      "Circle",
      "CircleOptions",
    ]);
    expect(names(matchSymbols(pool, { query: "circle", language: "python" }))).toEqual(["get_circle_size"]);
    expect(names(matchSymbols(pool, { query: "circle", pathPrefix: "./src/shapes/" }))).toEqual([
      "circle",
      "Circle",
      "CircleOptions",
    ]);
    expect(
      names(
        matchSymbols([sym("x", SymbolKind.FUNCTION, "src/shapesx/a.ts")], { query: "x", pathPrefix: "src/shapes" }),
      ),
    ).toEqual([]);
    expect(names(matchSymbols(pool, { query: "", pathFilter: (p) => p.endsWith(".py") }))).toEqual(["get_circle_size"]);
    const capped = matchSymbols(pool, { query: "c", limit: 2 });
    expect(capped.symbols).toHaveLength(2);
    expect(capped.truncated).toBe(true);
    expect(matchSymbols(pool, { query: "c", limit: 100 }).truncated).toBe(false);
  });

  it("works over extracted symbols", async () => {
    const symbols = await extractSymbols("sample.ts", read("sample.ts"));
    const r = matchSymbols(symbols, { query: "cir", mode: SymbolMatchMode.FUZZY, kinds: [SymbolKind.CLASS] });
    expect(r.symbols[0]).toMatchObject({ name: "Circle", startLine: 23, endLine: 45 });
  });
});

// Real-world throughput, printed only: the machine is shared, so no timing is asserted.
describe("throughput on real TypeScript sources", () => {
  it("parses a few hundred .ts files from node_modules without failing", async () => {
    const require = createRequire(import.meta.url);
    const roots = [
      join(dirname(require.resolve("openai")), "src"),
      join(dirname(require.resolve("ajv/package.json")), "lib"),
    ];
    const files: string[] = [];
    const walk = (dir: string): void => {
      for (const entry of readdirSync(dir).sort()) {
        const full = join(dir, entry);
        if (statSync(full).isDirectory()) walk(full);
        else if (entry.endsWith(".ts") && !entry.endsWith(".d.ts")) files.push(full);
      }
    };
    for (const root of roots) walk(root);
    expect(files.length).toBeGreaterThan(200);
    let bytes = 0;
    let count = 0;
    const statuses: Record<string, number> = {};
    const started = performance.now();
    for (const file of files) {
      const source = readFileSync(file, "utf8");
      bytes += source.length;
      const result = await parseSymbols(file, source);
      statuses[result.status] = (statuses[result.status] ?? 0) + 1;
      count += result.symbols.length;
    }
    const seconds = (performance.now() - started) / 1000;
    console.log(
      `symbols throughput: ${files.length} files, ${(bytes / 1e6).toFixed(2)} MB, ${count} symbols in ${seconds.toFixed(2)} s = ` +
        `${Math.round(files.length / seconds)} files/s, ${(bytes / 1e6 / seconds).toFixed(2)} MB/s (${JSON.stringify(statuses)})`,
    );
    expect(statuses.ok).toBe(files.length);
    expect(count).toBeGreaterThan(files.length);
  }, 120_000);
});
