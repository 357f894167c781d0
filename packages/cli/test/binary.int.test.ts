import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { beforeAll, expect, it } from "vitest";

const run = promisify(execFile);
const repoRoot = new URL("../../..", import.meta.url).pathname;
const binary = "packages/cli/bin/safedeploy.js";

beforeAll(async () => {
  // `pnpm test` builds first; a lone `vitest run` may not have.
  if (!existsSync(`${repoRoot}packages/cli/dist/bin.js`)) {
    await run("npx", ["tsc", "-b", "packages/cli"], { cwd: repoRoot });
  }
}, 120_000);

it("the installed binary validates a catalog with the contract's exit codes", async () => {
  const ok = await run(process.execPath, [binary, "validate", "test/fixtures/catalog/valid"], {
    cwd: repoRoot,
  });
  expect(ok.stdout).toContain("valid (3 services");
  const failed = await run(
    process.execPath,
    [binary, "validate", "test/fixtures/catalog/five-mistakes"],
    {
      cwd: repoRoot,
    },
  ).catch((error: unknown) => error as { code: number; stderr: string });
  expect("code" in failed && failed.code).toBe(1);
  expect((failed as { stderr: string }).stderr.trim().split("\n")).toHaveLength(6);
});

it("pnpm exec safedeploy resolves to the same binary from the repository root", () => {
  expect(existsSync(`${repoRoot}node_modules/.bin/safedeploy`)).toBe(true);
});
