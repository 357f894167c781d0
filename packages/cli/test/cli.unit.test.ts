import { describe, expect, it } from "vitest";
import { COMMANDS, EXIT, main, runCli } from "@safedeploy/cli";

const repoRoot = new URL("../../..", import.meta.url).pathname;
const FIVE = "test/fixtures/catalog/five-mistakes";
const VALID = "test/fixtures/catalog/valid";

/** Runs the CLI in-process from the repository root, capturing what it writes. */
async function run(argv: string[], env: Record<string, string> = {}) {
  let stdout = "";
  let stderr = "";
  const code = await runCli({
    argv,
    env,
    cwd: repoRoot,
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
  });
  return { code, stdout, stderr };
}

describe("safedeploy validate", () => {
  it("exits 0 on a valid catalog and summarises it", async () => {
    expect(await run(["validate", VALID])).toEqual({
      code: 0,
      stdout: `${VALID}: valid (3 services, 1 policy, 1 release train)\n`,
      stderr: "",
    });
  });

  it("prints each of five mistakes as file#document: field path: message, then a count, exit 1", async () => {
    const result = await run(["validate", FIVE]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr.split("\n")).toEqual([
      `${FIVE}/services.yaml#0: spec.slos[0].objective: must be less than 100`,
      `${FIVE}/services.yaml#1: metadata.owner: is required`,
      `${FIVE}/services.yaml#2: spec.deployment.canary.bakeTime: must be a positive duration such as 30s, 5m, 1h or 30d`,
      `${FIVE}/team-payments.yaml#0: metadata.name: duplicate Service "checkout" (first defined in ${FIVE}/services.yaml#0)`,
      `${FIVE}/team-payments.yaml#1: spec.maxPromotionBurnRat: unknown field`,
      `${FIVE}: invalid (5 errors)`,
      "",
    ]);
  });

  it("validates a single file", async () => {
    const result = await run(["validate", `${VALID}/train.yaml`]);
    // Alone, the train names services defined elsewhere.
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      `${VALID}/train.yaml#0: spec.steps[0].service: unknown service "checkout"`,
    );
    expect(result.stderr).toContain("invalid (2 errors)");
  });

  it("reads $SAFEDEPLOY_CATALOG, else ./catalog, when no path is given", async () => {
    expect((await run(["validate"], { SAFEDEPLOY_CATALOG: VALID })).code).toBe(0);
    const fallback = await run(["validate"]);
    expect(fallback.code).toBe(1);
    expect(fallback.stderr).toBe(
      "./catalog#0: cannot read catalog: no such file or directory\n./catalog: invalid (1 error)\n",
    );
  });

  it("prints a machine-readable result with --json", async () => {
    const invalid = await run(["validate", "--json"], { SAFEDEPLOY_CATALOG: FIVE });
    expect(invalid.code).toBe(1);
    expect(invalid.stderr).toBe("");
    const body = JSON.parse(invalid.stdout) as {
      valid: boolean;
      errors: { file: string; document: number; path: string; message: string }[];
    };
    expect(body.valid).toBe(false);
    expect(body.errors).toHaveLength(5);
    expect(body.errors[0]).toEqual({
      file: `${FIVE}/services.yaml`,
      document: 0,
      path: "spec.slos[0].objective",
      message: "must be less than 100",
    });

    const valid = await run(["validate", VALID, "--json"]);
    expect(valid.code).toBe(0);
    expect(JSON.parse(valid.stdout)).toEqual({
      valid: true,
      errors: [],
      services: ["cart", "checkout", "search"],
      policies: ["default"],
      trains: ["train-42"],
    });
  });

  it("says clearly when the path does not exist", async () => {
    const result = await run(["validate", "no/such/catalog"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(
      "no/such/catalog#0: cannot read catalog: no such file or directory\n",
    );
  });

  it("refuses extra arguments and unknown options with its usage, exit 2", async () => {
    for (const argv of [
      ["validate", "a", "b"],
      ["validate", "--bogus"],
    ]) {
      const result = await run(argv);
      expect(result.code).toBe(EXIT.usage);
      expect(result.stderr).toMatch(/^safedeploy validate: .+\n\nUsage: safedeploy validate/);
    }
  });
});

describe("safedeploy rules generate", () => {
  it("prints Sloth-named recording rules for every SLO and window", async () => {
    const result = await run(["rules", "generate", VALID]);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain("record: slo:sli_error:ratio_rate5m");
    expect(result.stdout).toContain("sloth_service: checkout");
    expect(result.stdout).toContain("record: safedeploy:sli_total:rate30d");
    expect(result.stdout).not.toContain("{{.window}}");
  });

  it("prints the catalog's errors for an invalid catalog, exit 1", async () => {
    const result = await run(["rules", "generate", FIVE]);
    expect(result.code).toBe(1);
    expect(result.stderr.trim().split("\n")).toHaveLength(5);
  });

  it("refuses an unknown action with its usage", async () => {
    const result = await run(["rules", "delete"]);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("usage: safedeploy rules generate");
  });
});

describe("the command line", () => {
  it("prints the tool's help, listing every command, with --help, -h or help", async () => {
    for (const argv of [["--help"], ["-h"], ["help"]]) {
      const result = await run(argv);
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(/^safedeploy: reliability governance control plane\n/);
      for (const command of COMMANDS) expect(result.stdout).toContain(`  ${command.name}  `);
    }
  });

  it("prints each command's help", async () => {
    for (const command of COMMANDS) {
      for (const argv of [
        [command.name, "--help"],
        ["help", command.name],
        [command.name, "x", "-h"],
      ]) {
        expect(await run(argv)).toEqual({ code: 0, stdout: `${command.usage}\n`, stderr: "" });
      }
    }
    expect((await run(["validate", "--help"])).stdout).toContain(
      "FILE#DOCUMENT: FIELD.PATH: MESSAGE",
    );
  });

  it("exits 2 with the help for no command, an unknown command or an unknown option", async () => {
    const none = await run([]);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("Usage: safedeploy COMMAND");
    const unknown = await run(["frobnicate"]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/^safedeploy: unknown command "frobnicate"\n\n.*Commands:/s);
    const option = await run(["--verbose", "validate"]);
    expect(option.code).toBe(2);
    expect(option.stderr).toMatch(/^safedeploy: unknown option --verbose\n/);
    expect((await run(["help", "frobnicate"])).code).toBe(2);
  });

  it("release is a command: a missing manifest is a negative answer, not 'not built yet'", async () => {
    const release = await run(["release", "plan", "train.yaml"]);
    expect(release.code).toBe(1);
    expect(release.stderr).toContain("train.yaml: cannot read the manifest");
  });

  it("has the positional form main(argv, io)", async () => {
    let stdout = "";
    const code = await main(["validate", VALID], {
      env: {},
      cwd: repoRoot,
      stdout: (text) => (stdout += text),
      stderr: () => undefined,
    });
    expect(code).toBe(0);
    expect(stdout).toContain("valid (3 services");
  });
});
