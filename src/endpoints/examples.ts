/** Reads examples written by Codex (`output/examples.json`, snake_case; camelCase accepted too). */
import type { EndpointExample } from "./types.js";

const MAX_EXAMPLES = 50;

export function parseExamples(
  value: unknown,
  label: string,
): { ok: true; examples: EndpointExample[] } | { ok: false; error: string } {
  if (value instanceof Error) return { ok: false, error: `${label} is not JSON: ${value.message}` };
  const list = Array.isArray(value)
    ? value
    : typeof value === "object" && value !== null && Array.isArray((value as { examples?: unknown }).examples)
      ? (value as { examples: unknown[] }).examples
      : undefined;
  if (!list) return { ok: false, error: `${label} is not a JSON array of examples` };
  if (list.length > MAX_EXAMPLES)
    return { ok: false, error: `${label} holds ${list.length} examples; at most ${MAX_EXAMPLES}` };
  const examples: EndpointExample[] = [];
  for (let i = 0; i < list.length; i++) {
    const x = list[i] as Record<string, unknown>;
    if (typeof x !== "object" || x === null || Array.isArray(x))
      return { ok: false, error: `${label}[${i}] is not an object` };
    const pick = (...names: string[]) => names.map((n) => x[n]).find((v) => v !== undefined);
    const pathParams = stringMap(pick("path_params", "pathParams") ?? {});
    const query = stringMap(pick("query") ?? {});
    if (!pathParams) return { ok: false, error: `${label}[${i}].path_params must be an object of strings` };
    if (!query) return { ok: false, error: `${label}[${i}].query must be an object of strings` };
    const status = pick("response_status", "responseStatus") ?? 0;
    if (typeof status !== "number" || !Number.isInteger(status) || status < 0 || status > 599)
      return { ok: false, error: `${label}[${i}].response_status must be an HTTP status` };
    const description = pick("description") ?? "";
    examples.push({
      description: typeof description === "string" ? description : JSON.stringify(description),
      pathParams,
      query,
      requestBody: pick("request_body", "requestBody", "body"),
      responseStatus: status,
      responseBody: pick("response_body", "responseBody", "response"),
    });
  }
  return { ok: true, examples };
}

/** Values may be numbers or booleans in hand-written JSON; they travel as strings like any URL part. */
function stringMap(v: unknown): Record<string, string> | undefined {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return undefined;
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v)) {
    if (typeof val === "string") out[k] = val;
    else if (typeof val === "number" || typeof val === "boolean") out[k] = String(val);
    else return undefined;
  }
  return out;
}
