import { describe, expect, it } from "vitest";
import { main } from "@safedeploy/cli";
import type { CliIo } from "@safedeploy/cli";

const repoRoot = new URL("../../..", import.meta.url).pathname;

function run(argv: string[], env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = {
    stdout: (text) => out.push(text),
    stderr: (text) => err.push(text),
    env,
    cwd: repoRoot,
  };
  return main(argv, io).then((code) => ({ code, stdout: out.join(""), stderr: err.join("") }));
}

describe("safedeploy validate", () => {
  it("exits 0 on a valid catalog and summarises it", async () => {
    const result = await run(["validate", "test/fixtures/catalog/valid"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      "test/fixtures/catalog/valid: valid (3 services, 1 policy, 1 release train)\n",
    );
  });

  it("prints five errors for five mistakes, each with file, document and field path, and exits 1", async () => {
    const result = await run(["validate", "test/fixtures/catalog/five-mistakes"]);
    expect(result.code).toBe(1);
    const lines = result.stderr.trim().split("\n");
    expect(lines.at(-1)).toBe("5 errors in test/fixtures/catalog/five-mistakes");
    expect(lines.slice(0, -1)).toEqual([
      "test/fixtures/catalog/five-mistakes/more.yaml#1: spec.maxPromotionBurnRat: unknown field",
      "test/fixtures/catalog/five-mistakes/services.yaml#0: spec.slos[0].objective: must be less than 100",
      'test/fixtures/catalog/five-mistakes/services.yaml#0: metadata.name: duplicate Service "checkout" (first defined in test/fixtures/catalog/five-mistakes/more.yaml#0)',
      "test/fixtures/catalog/five-mistakes/services.yaml#1: metadata.owner: is required",
      "test/fixtures/catalog/five-mistakes/services.yaml#2: spec.deployment.canary.bakeTime: must be a positive duration such as 30s, 5m, 1h or 30d",
    ]);
  });

  it("reads SAFEDEPLOY_CATALOG when no path is given, and prints JSON on request", async () => {
    const result = await run(["validate", "--json"], {
      SAFEDEPLOY_CATALOG: "test/fixtures/catalog/five-mistakes",
    });
    expect(result.code).toBe(1);
    const body = JSON.parse(result.stdout) as {
      valid: boolean;
      errors: { file: string; document: number; path: string }[];
    };
    expect(body.valid).toBe(false);
    expect(body.errors).toHaveLength(5);
    expect(body.errors[1]).toMatchObject({
      file: "test/fixtures/catalog/five-mistakes/services.yaml",
      document: 0,
      path: "spec.slos[0].objective",
    });
  });

  it("says clearly when the path does not exist", async () => {
    const result = await run(["validate", "no/such/catalog"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      "no/such/catalog#0: cannot read catalog: no such file or directory",
    );
  });
});

describe("safedeploy rules generate", () => {
  it("prints Sloth-named recording rules for every SLO and window", async () => {
    const result = await run(["rules", "generate", "test/fixtures/catalog/valid"]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("record: slo:sli_error:ratio_rate5m");
    expect(result.stdout).toContain("sloth_service: checkout");
    expect(result.stdout).toContain("record: safedeploy:sli_total:rate30d");
    expect(result.stdout).not.toContain("{{.window}}");
  });

  it("refuses an unknown action with its usage", async () => {
    const result = await run(["rules", "delete"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("usage: safedeploy rules generate");
  });
});

describe("the command line", () => {
  it("prints help, and usage errors exit 2", async () => {
    expect((await run(["--help"])).stdout).toContain("validate");
    expect((await run([])).code).toBe(2);
    const unknown = await run(["frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown command "frobnicate"');
    expect((await run(["validate", "--bogus"])).code).toBe(2);
    expect((await run(["validate", "a", "b"])).code).toBe(2);
    expect((await run(["validate", "--help"])).stdout).toContain(
      "FILE#DOCUMENT: FIELD.PATH: MESSAGE",
    );
    const planned = await run(["gate", "checkout"]);
    expect(planned.code).toBe(2);
    expect(planned.stderr).toContain("not built yet");
  });
});
