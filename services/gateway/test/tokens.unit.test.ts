import { describe, expect, it } from "vitest";
import { TokenFileError, parseTokens, roleAllows, tokenHash } from "../src/index.js";

const hash = tokenHash("s3cret");

describe("tokens file", () => {
  it("authenticates by the token's SHA-256 and knows roles in order", () => {
    const store = parseTokens(
      `- { name: ana, role: approver, sha256: ${hash} }\n- { name: ci, role: viewer, sha256: ${tokenHash("ci")} }\n`,
    );
    expect(store.authenticate("s3cret")).toEqual({ name: "ana", role: "approver" });
    expect(store.authenticate("ci")).toEqual({ name: "ci", role: "viewer" });
    expect(store.authenticate("nope")).toBeNull();
    expect(roleAllows("admin", "approver")).toBe(true);
    expect(roleAllows("viewer", "approver")).toBe(false);
  });

  it("names the entry and the field of every problem, never the hash", () => {
    const check = () =>
      parseTokens(
        `- { name: ana, role: root, sha256: ${hash} }\n- { name: bo, role: viewer, sha256: abc }\n- { role: admin, sha256: ${hash} }\n`,
        "tokens.yaml",
      );
    expect(check).toThrow(TokenFileError);
    expect(check).toThrow(/entry 1 \(ana\) field role: must be one of viewer, approver, admin/);
    expect(check).toThrow(/entry 2 \(bo\) field sha256: must be the hex SHA-256/);
    expect(check).toThrow(/entry 3 field name/);
    expect(() => parseTokens("name: ana")).toThrow(/list of \{name, role, sha256\}/);
    expect(() =>
      parseTokens(
        `- { name: a, role: viewer, sha256: ${hash} }\n- { name: a, role: admin, sha256: ${hash} }`,
      ),
    ).toThrow(/a appears twice/);
  });
});
