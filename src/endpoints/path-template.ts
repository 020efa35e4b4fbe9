/**
 * Path templates of dream endpoints ("/images/{id}/thumbnail") and matching request paths against them.
 *
 * Pure helpers: routing keeps a map from `key` (params replaced by "{}") to endpoint and looks a request
 * up with `candidateKeys`, most specific first, then extracts values with `matchPath`.
 */
import { GatewayError } from "../errors/gateway-error.js";

export type PathSegment = { literal: string } | { param: string };

export interface PathTemplate {
  /** The template as given, e.g. "/images/{id}/thumbnail". */
  template: string;
  segments: PathSegment[];
  /** Parameter names in path order. */
  params: string[];
  /** The template with each parameter replaced by "{}": equal keys mean the templates match the same paths. */
  key: string;
}

export const MAX_PATH_SEGMENTS = 8;
export const MAX_PATH_LENGTH = 1024;
/** Where the OpenAPI document of all endpoints is served, so no endpoint may claim it. */
export const RESERVED_PATHS: readonly string[] = ["/openapi.json"];

// RFC 3986 pchar without pct-encoded: literals are stored (and compared) in decoded form, so a template
// literal never needs percent-encoding; "{" and "}" are excluded, which keeps keys unambiguous.
const LITERAL_RE = /^[A-Za-z0-9._~!$&'()*+,;=:@-]+$/;
const PARAM_RE = /^\{([A-Za-z_][A-Za-z0-9_]{0,63})\}$/;

function invalid(message: string): GatewayError {
  return new GatewayError("invalid_argument", message, { param: "path" });
}

const isDotSegment = (s: string) => s === "." || s === "..";

export function parsePathTemplate(path: string): PathTemplate {
  if (typeof path !== "string") throw invalid("path must be a string");
  if (path.length > MAX_PATH_LENGTH) {
    throw invalid(`path is ${path.length} characters long; at most ${MAX_PATH_LENGTH} are allowed`);
  }
  if (!path.startsWith("/")) throw invalid(`path must start with "/": ${JSON.stringify(path)}`);
  if (path === "/") throw invalid(`path must have at least one segment; "/" alone is not allowed`);
  if (path.endsWith("/")) throw invalid(`path must not end with "/": ${JSON.stringify(path)}`);
  const raw = path.slice(1).split("/");
  if (raw.length > MAX_PATH_SEGMENTS) {
    throw invalid(`path has ${raw.length} segments; at most ${MAX_PATH_SEGMENTS} are allowed`);
  }
  if (RESERVED_PATHS.includes(path)) throw invalid(`path ${path} is reserved for the OpenAPI document`);

  const segments: PathSegment[] = [];
  const params: string[] = [];
  raw.forEach((seg, i) => {
    const where = `segment ${i + 1} (${JSON.stringify(seg)})`;
    if (seg === "") throw invalid(`path must not contain empty segments ("//"): ${JSON.stringify(path)}`);
    if (isDotSegment(seg)) throw invalid(`path ${where} must not be "." or ".."`);
    if (seg.includes("{") || seg.includes("}")) {
      const m = PARAM_RE.exec(seg);
      if (!m) {
        throw invalid(
          `path ${where}: a parameter must be a whole segment "{name}" with name matching [A-Za-z_][A-Za-z0-9_]{0,63}`,
        );
      }
      const name = m[1];
      // Values end up as object keys in handler input; "__proto__" would be silently dropped there.
      if (name === "__proto__") throw invalid(`path parameter name "__proto__" is not allowed`);
      if (params.includes(name)) throw invalid(`path parameter "${name}" appears more than once`);
      params.push(name);
      segments.push({ param: name });
      return;
    }
    if (seg.includes("%")) {
      throw invalid(`path ${where} must not use percent-encoding; write the characters themselves`);
    }
    if (!LITERAL_RE.test(seg)) {
      const bad = [...seg].find((c) => !LITERAL_RE.test(c));
      throw invalid(
        `path ${where} contains ${JSON.stringify(bad)}; literal segments may only use A-Z a-z 0-9 and . _ ~ ! $ & ' ( ) * + , ; = : @ -`,
      );
    }
    segments.push({ literal: seg });
  });
  return { template: path, segments, params, key: keyOf(segments) };
}

function keyOf(segments: PathSegment[]): string {
  return "/" + segments.map((s) => ("literal" in s ? s.literal : "{}")).join("/");
}

/**
 * Splits a request path into decoded segments. `literal` is false when the decoded segment could not be a
 * template literal (e.g. "%2F" decoding to "/", or "%2E%2E" to ".."), so it may only fill a parameter.
 * undefined when the path cannot match any template: not 1..8 non-empty segments, bad percent-encoding,
 * or a raw "." / ".." segment (an unnormalised path; refusing it keeps handlers from seeing traversal).
 */
function splitRequestPath(requestPath: string): Array<{ value: string; literal: boolean }> | undefined {
  if (typeof requestPath !== "string" || !requestPath.startsWith("/") || requestPath.length > 8 * 1024) {
    return undefined;
  }
  const raw = requestPath.slice(1).split("/");
  if (raw.length > MAX_PATH_SEGMENTS) return undefined;
  const out: Array<{ value: string; literal: boolean }> = [];
  for (const seg of raw) {
    if (seg === "" || isDotSegment(seg)) return undefined;
    let value: string;
    try {
      value = decodeURIComponent(seg);
    } catch {
      return undefined;
    }
    out.push({ value, literal: LITERAL_RE.test(value) && !isDotSegment(value) });
  }
  return out;
}

/**
 * Every key a template could have to match `requestPath` (no "/dream" prefix, no query string; may be
 * percent-encoded), most specific first: fewer parameters first, and among those, literals earlier in the
 * path first (so "/a/b/{}" beats "/a/{}/c"). [] when nothing can match. At most 2^8 = 256 keys.
 */
export function candidateKeys(requestPath: string): string[] {
  const segs = splitRequestPath(requestPath);
  if (!segs) return [];
  const n = segs.length;
  const masks: number[] = []; // bit i set = segment i is a parameter
  for (let mask = 0; mask < 1 << n; mask++) {
    if (segs.every((s, i) => s.literal || mask & (1 << i))) masks.push(mask);
  }
  const popcount = (m: number) => {
    let c = 0;
    for (; m; m &= m - 1) c++;
    return c;
  };
  // Reversing the bits makes segment 0 the most significant, so a smaller value has its first
  // parameter later in the path, i.e. keeps literals earlier.
  const rev = (m: number) => {
    let r = 0;
    for (let i = 0; i < n; i++) if (m & (1 << i)) r |= 1 << (n - 1 - i);
    return r;
  };
  masks.sort((a, b) => popcount(a) - popcount(b) || rev(a) - rev(b));
  return masks.map((mask) => "/" + segs.map((s, i) => (mask & (1 << i) ? "{}" : s.value)).join("/"));
}

/** The decoded parameter values when `requestPath` matches `t`, else undefined. Values may contain "/". */
export function matchPath(t: PathTemplate, requestPath: string): Record<string, string> | undefined {
  const segs = splitRequestPath(requestPath);
  if (!segs || segs.length !== t.segments.length) return undefined;
  const entries: Array<[string, string]> = [];
  for (let i = 0; i < segs.length; i++) {
    const s = t.segments[i];
    if ("literal" in s) {
      if (!segs[i].literal || segs[i].value !== s.literal) return undefined;
    } else {
      entries.push([s.param, segs[i].value]);
    }
  }
  return Object.fromEntries(entries);
}
