// The two commands the Kubernetes install runs: `safedeploy kubernetes-secrets` (the Secret files
// of the overlays) and `safedeploy migrate` (the migration Job), against real files and a real
// PostgreSQL.
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { createHash } from "node:crypto";
import { DEFAULT_NAMESPACE, passwordVariable, servicePermissions } from "@safedeploy/schema";
import { createTestDatabase } from "@safedeploy/testing";
import type { TestDatabase } from "@safedeploy/testing";
import { runCli } from "@safedeploy/cli";
import { safedeploy } from "./render.js";

const envOf = (text: string) =>
  Object.fromEntries(
    text
      .split("\n")
      .filter((line) => line !== "" && !line.startsWith("#"))
      .map((line) => [line.slice(0, line.indexOf("=")), line.slice(line.indexOf("=") + 1)]),
  );

describe("safedeploy kubernetes-secrets", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "sd-kube-secrets-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("writes one env file per NATS user, matching the NATS server's passwords", async () => {
    const result = await safedeploy(dir, ["kubernetes-secrets", "--out", "secrets"]);
    expect(result.code, result.stderr).toBe(0);
    expect((await stat(join(dir, "secrets"))).mode & 0o777).toBe(0o700);
    const server = envOf(await readFile(join(dir, "secrets/nats-server.env"), "utf8"));
    for (const { user } of servicePermissions(DEFAULT_NAMESPACE)) {
      const path = join(dir, "secrets", `${user}.env`);
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      const url = new URL(envOf(await readFile(path, "utf8")).NATS_URL ?? "");
      expect([url.username, url.host]).toEqual([user, "nats:4222"]);
      expect(url.password).toBe(server[passwordVariable(user)]);
      expect(url.password).toMatch(/^p[0-9a-f]{48}$/);
    }
    const pg = envOf(await readFile(join(dir, "secrets/postgres.env"), "utf8"));
    const audit = new URL(
      envOf(await readFile(join(dir, "secrets/audit.env"), "utf8")).DATABASE_URL ?? "",
    );
    expect([audit.username, audit.password]).toEqual([
      "safedeploy_audit",
      pg.SAFEDEPLOY_PG_AUDIT_PASSWORD,
    ]);
    expect(pg.POSTGRES_PASSWORD).not.toBe(pg.SAFEDEPLOY_PG_MIGRATOR_PASSWORD);
    // The admin token is printed once; the file keeps only its sha256.
    const token = /admin API token[^:]*: (\S+)/.exec(result.stdout)?.[1] ?? "";
    const tokens = parse(await readFile(join(dir, "secrets/tokens.yaml"), "utf8")) as unknown;
    expect(tokens).toEqual([
      { name: "admin", role: "admin", sha256: createHash("sha256").update(token).digest("hex") },
    ]);
  });

  it("never replaces passwords unless --force, and never the operator's git.env or tokens", async () => {
    const before = await readFile(join(dir, "secrets/collector.env"), "utf8");
    const again = await safedeploy(dir, ["kubernetes-secrets", "--out", "secrets"]);
    expect(again.code).toBe(1);
    expect(await readFile(join(dir, "secrets/collector.env"), "utf8")).toBe(before);
    await writeFile(
      join(dir, "secrets/git.env"),
      "SAFEDEPLOY_ENV_REPO=https://example.com/env.git\n",
    );
    const tokens = await readFile(join(dir, "secrets/tokens.yaml"), "utf8");
    const forced = await safedeploy(dir, ["kubernetes-secrets", "--out", "secrets", "--force"]);
    expect(forced.code, forced.stderr).toBe(0);
    expect(await readFile(join(dir, "secrets/collector.env"), "utf8")).not.toBe(before);
    expect(await readFile(join(dir, "secrets/git.env"), "utf8")).toContain("example.com/env.git");
    expect(await readFile(join(dir, "secrets/tokens.yaml"), "utf8")).toBe(tokens);
  });

  it("takes the servers' URLs, and refuses URLs that carry credentials", async () => {
    const out = join(dir, "custom");
    const result = await safedeploy(dir, [
      "kubernetes-secrets",
      "--out",
      out,
      "--nats",
      "tls://a.nats:4222,tls://b.nats:4222",
      "--postgres",
      "postgres://db.internal:6432/sd?sslmode=require",
    ]);
    expect(result.code, result.stderr).toBe(0);
    const gateway = envOf(await readFile(join(out, "gateway.env"), "utf8"));
    expect(gateway.NATS_URL).toMatch(
      /^tls:\/\/gateway:p\w+@a\.nats:4222,tls:\/\/gateway:p\w+@b\.nats:4222$/,
    );
    expect(gateway.DATABASE_URL).toMatch(
      /^postgres:\/\/safedeploy_gateway:p\w+@db\.internal:6432\/sd\?sslmode=require$/,
    );
    const refused = await safedeploy(dir, [
      "kubernetes-secrets",
      "--out",
      out,
      "--nats",
      "nats://u:p@nats:4222",
    ]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("--nats must not carry credentials");
  });
});

describe("safedeploy migrate", () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestDatabase();
  });
  afterAll(async () => {
    await database.drop();
  });

  const migrate = async (env: Record<string, string>) => {
    let stdout = "";
    let stderr = "";
    const code = await runCli({
      argv: ["migrate", "--json"],
      env,
      stdout: (text) => (stdout += text),
      stderr: (text) => (stderr += text),
    });
    return { code, stdout, stderr };
  };

  it("applies the audit migrations once; a second run applies none", async () => {
    const first = await migrate({ DATABASE_URL: database.url });
    expect(first.code, first.stderr).toBe(0);
    const report = JSON.parse(first.stdout) as { applied: string[]; alreadyApplied: string[] };
    expect(report.applied.length).toBeGreaterThan(0);
    const second = await migrate({ DATABASE_URL: database.url });
    expect(JSON.parse(second.stdout)).toEqual({ applied: [], alreadyApplied: report.applied });
  });

  it("is a usage error without DATABASE_URL", async () => {
    const result = await migrate({});
    expect(result.code).toBe(2);
    expect(result.stderr).toContain("DATABASE_URL is not set");
  });
});
