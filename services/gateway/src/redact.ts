/** What a secret's value is replaced with in an answer. */
export const REDACTED = "[redacted]";

/**
 * A copy of `value` with the value of every HTTP hook header (`{ http: { headers } }`, as the
 * catalog's strategy hooks carry them: tokens, API keys) replaced by `[redacted]`, so a viewer
 * reading a service's spec sees which headers a hook sends but not their secrets.
 */
export function redactHookHeaders<T>(value: T): T {
  return redact(value, false) as T;
}

function redact(value: unknown, inHttpHook: boolean): unknown {
  if (Array.isArray(value)) return value.map((item) => redact(item, false));
  if (typeof value !== "object" || value === null) return value;
  const out: Record<string, unknown> = {};
  for (const [key, inner] of Object.entries(value) as [string, unknown][]) {
    if (inHttpHook && key === "headers" && typeof inner === "object" && inner !== null) {
      out[key] = Object.fromEntries(Object.keys(inner).map((name) => [name, REDACTED]));
    } else {
      out[key] = redact(inner, key === "http");
    }
  }
  return out;
}
