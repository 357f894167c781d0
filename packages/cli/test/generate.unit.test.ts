import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "@safedeploy/cli";
import { DEFAULT_NAMESPACE, natsPermissionsConfig } from "@safedeploy/schema";

const repoRoot = new URL("../../..", import.meta.url).pathname;

async function run(argv: string[], cwd = repoRoot) {
  let stdout = "";
  let stderr = "";
  const code = await runCli({
    argv,
    env: {},
    cwd,
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
  });
  return { code, stdout, stderr };
}

describe("safedeploy generate nats-permissions", () => {
  it("prints the config generated from the schema declaration", async () => {
    const result = await run(["generate", "nats-permissions"]);
    expect(result).toEqual({
      code: 0,
      stdout: natsPermissionsConfig(DEFAULT_NAMESPACE),
      stderr: "",
    });
  });

  it("matches the committed deploy/nats/permissions.conf (regenerate it when this fails)", async () => {
    const committed = readFileSync(join(repoRoot, "deploy/nats/permissions.conf"), "utf8");
    expect((await run(["generate", "nats-permissions"])).stdout).toBe(committed);
  });

  it("writes --out FILE, for another namespace", async () => {
    const dir = mkdtempSync(join(tmpdir(), "sd-generate-"));
    try {
      const result = await run(
        ["generate", "nats-permissions", "--out", "p.conf", "--root", "t1", "--prefix", "T1_"],
        dir,
      );
      expect(result).toEqual({ code: 0, stdout: "", stderr: "wrote p.conf\n" });
      expect(readFileSync(join(dir, "p.conf"), "utf8")).toBe(
        natsPermissionsConfig({ root: "t1", prefix: "T1_" }),
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("exits 2 on an unknown artefact or a bad root", async () => {
    expect((await run(["generate", "openapi"])).code).toBe(2);
    expect((await run(["generate", "nats-permissions", "--root", "A.B"])).code).toBe(2);
  });
});
