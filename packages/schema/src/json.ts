/**
 * JSON with object keys sorted at every level and no whitespace: the same value serialises the
 * same way whether it came from a message, a KV entry or back from jsonb (which reorders keys).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    // undefined, functions and symbols have no JSON form; they stand for null as in arrays.
    if (value === undefined || typeof value === "function" || typeof value === "symbol") {
      return "null";
    }
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((key) => record[key] !== undefined)
    .sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`).join(",")}}`;
}
