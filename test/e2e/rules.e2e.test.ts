import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { main as cli } from "@safedeploy/cli";
import { findExecutable } from "@safedeploy/testing";

const run = promisify(execFile);
const catalog = new URL("../fixtures/catalog/valid", import.meta.url).pathname;

it("promtool accepts the recording rules safedeploy generates", async () => {
  const promtool = findExecutable("promtool");
  if (promtool === undefined)
    throw new Error("promtool not found: apt-get install prometheus (bash .ci/run does)");
  let rules = "";
  const code = await cli(["rules", "generate", catalog], {
    stdout: (text) => (rules += text),
    stderr: (text) => {
      throw new Error(text);
    },
    env: {},
    cwd: process.cwd(),
  });
  expect(code).toBe(0);
  const file = join(mkdtempSync(join(tmpdir(), "sd-rules-")), "rules.yml");
  writeFileSync(file, rules);
  const { stdout } = await run(promtool, ["check", "rules", file]);
  // Four SLOs (checkout has two), six windows, two records per window, plus the objective each.
  expect(stdout).toContain("SUCCESS: 52 rules found");
});
