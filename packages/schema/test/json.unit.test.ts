// canonicalJson is covered by every audit row's hash: its output must stay exactly what the plain
// recursive form below produced when the rows were written.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { canonicalJson } from "../src/json.js";

/** The form every stored hash was computed with (before canonicalJson was written as loops). */
function reference(value: unknown): string {
  if (value === null || typeof value !== "object") {
    if (value === undefined || typeof value === "function" || typeof value === "symbol") {
      return "null";
    }
    return JSON.stringify(value);
  }
  if (Array.isArray(value)) return `[${value.map(reference).join(",")}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record)
    .filter((key) => record[key] !== undefined)
    .sort();
  return `{${keys.map((key) => `${JSON.stringify(key)}:${reference(record[key])}`).join(",")}}`;
}

describe("canonicalJson", () => {
  it("serialises every value exactly as the form the stored hashes were computed with", () => {
    const anything = fc.anything({
      withNullPrototype: true,
      withSparseArray: true,
      withObjectString: true,
      withBoxedValues: false,
      maxDepth: 4,
    });
    fc.assert(
      fc.property(anything, (value) => {
        expect(canonicalJson(value)).toBe(reference(value));
      }),
      { numRuns: 2_000 },
    );
  });

  it("sorts keys at every level and leaves no whitespace", () => {
    expect(canonicalJson({ b: [{ d: 1, c: null }], a: "x", skipped: undefined })).toBe(
      '{"a":"x","b":[{"c":null,"d":1}]}',
    );
    expect(canonicalJson([undefined, () => 1, Symbol("s")])).toBe("[null,null,null]");
  });
});
