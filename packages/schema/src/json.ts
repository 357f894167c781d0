/**
 * JSON with object keys sorted at every level and no whitespace: the same value serialises the
 * same way whether it came from a message, a KV entry or back from jsonb (which reorders keys).
 * Every audit row's hash covers it, so its output must never change (a property test holds it to
 * the plain recursive form); it is written as loops because the audit service runs it on every
 * message it stores.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== "object") {
    // undefined, functions and symbols have no JSON form; they stand for null as in arrays.
    if (value === undefined || typeof value === "function" || typeof value === "symbol") {
      return "null";
    }
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) {
    let text = "[";
    for (let index = 0; index < value.length; index += 1) {
      if (index > 0) text += ",";
      // A hole stays empty, as `map` and `join` left it (JSON and jsonb never have one).
      if (index in value) text += canonicalJson(value[index]);
    }
    return `${text}]`;
  }
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort();
  let text = "{";
  let first = true;
  for (const key of keys) {
    const field = record[key];
    if (field === undefined) continue;
    if (!first) text += ",";
    first = false;
    text += JSON.stringify(key);
    text += ":";
    text += canonicalJson(field);
  }
  return `${text}}`;
}
