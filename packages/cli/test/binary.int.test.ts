import { execFile } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";

const exec = promisify(execFile);
const repoRoot = new URL("../../..", import.meta.url).pathname;
const binary = "packages/cli/bin/safedeploy.js";
const built = join(repoRoot, "packages/cli/dist/main.js");
/** tsc -b rewrites this on every build of the CLI, even when no output changed. */
const buildInfo = join(repoRoot, "packages/cli/dist/.tsbuildinfo");

/** The newest modification time of any source the binary is built from. */
function newestSource(): number {
  let newest = 0;
  for (const pkg of ["schema", "core", "catalog", "cli"]) {
    const src = join(repoRoot, "packages", pkg, "src");
    for (const file of readdirSync(src, { recursive: true, encoding: "utf8" })) {
      newest = Math.max(newest, statSync(join(src, file)).mtimeMs);
    }
  }
  return newest;
}

/** Runs the real binary in a child process; a non-zero exit is a result, not an exception. */
async function safedeploy(...args: string[]) {
  try {
    const { stdout, stderr } = await exec(process.execPath, [binary, ...args], { cwd: repoRoot });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const { code, stdout, stderr } = error as { code: number; stdout: string; stderr: string };
    return { code, stdout, stderr };
  }
}

beforeAll(async () => {
  // `pnpm test` builds first; a lone `vitest run` may find no dist, or a stale one.
  const stale = !existsSync(buildInfo) || statSync(buildInfo).mtimeMs < newestSource();
  if (!existsSync(built) || stale) {
    const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
    await exec(process.execPath, [tsc, "-b", "packages/cli"], { cwd: repoRoot });
  }
}, 180_000);

describe("the safedeploy binary", () => {
  it("reports the five mistakes of a catalog, one line each, and exits 1", async () => {
    const result = await safedeploy("validate", "test/fixtures/catalog/five-mistakes");
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    const lines = result.stderr.trimEnd().split("\n");
    expect(lines).toHaveLength(6);
    for (const line of lines.slice(0, 5)) {
      expect(line).toMatch(
        /^test\/fixtures\/catalog\/five-mistakes\/[\w-]+\.yaml#\d: [\w.[\]]+: .+$/,
      );
    }
    expect(lines[5]).toBe("test/fixtures/catalog/five-mistakes: invalid (5 errors)");
  });

  it("exits 0 on a valid catalog and 2 on a usage error", async () => {
    const valid = await safedeploy("validate", "test/fixtures/catalog/valid");
    expect(valid).toEqual({
      code: 0,
      stdout: "test/fixtures/catalog/valid: valid (3 services, 1 policy, 1 release train)\n",
      stderr: "",
    });
    expect((await safedeploy("frobnicate")).code).toBe(2);
  });

  it("is what pnpm exec safedeploy runs from the repository root", () => {
    expect(existsSync(join(repoRoot, "node_modules/.bin/safedeploy"))).toBe(true);
  });
});
