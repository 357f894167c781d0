import { execFile } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { expect, it } from "vitest";
import { findExecutable } from "@safedeploy/testing";
import { generateRules } from "./generate-rules.js";

const run = promisify(execFile);
const catalog = new URL("../fixtures/catalog/valid", import.meta.url).pathname;

it("promtool accepts the recording rules safedeploy generates", async () => {
  const promtool = findExecutable("promtool");
  if (promtool === undefined)
    throw new Error("promtool not found: apt-get install prometheus (bash .ci/run does)");
  const rules = await generateRules(catalog);
  const file = join(mkdtempSync(join(tmpdir(), "sd-rules-")), "rules.yml");
  writeFileSync(file, rules);
  const { stdout } = await run(promtool, ["check", "rules", file]);
  // Four SLOs (checkout has two), six windows, two records per window, plus the objective each.
  expect(stdout).toContain("SUCCESS: 52 rules found");
});
