// DORA metrics end to end: a known history (deploys reported by Argo CD and Argo Rollouts,
// incidents, a rollback) published onto JetStream, stored by the real audit service in
// PostgreSQL, read back by the gateway on loopback (`GET /v1/dora`) and by `safedeploy dora`;
// the examples of docs/dora.md (and of the README's DORA section, once merged) are run as written.
import { readFile } from "node:fs/promises";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "@safedeploy/cli";
import { TOKENS, bearer } from "./gateway-harness.js";
import { NOW, startDoraPlane } from "./dora-history.js";
import type { DoraPlane } from "./dora-history.js";

const DOCS = new URL("../../docs/dora.md", import.meta.url);
const README = new URL("../../README.md", import.meta.url);

let plane: DoraPlane;

beforeAll(async () => {
  plane = await startDoraPlane();
}, 90_000);
afterAll(async () => plane.stop());

async function dora(query: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${plane.url}/v1/dora${query}`, { headers: bearer("viewer") });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function cli(argv: readonly string[]) {
  let stdout = "";
  let stderr = "";
  const code = await runCli({
    argv,
    env: { SAFEDEPLOY_API: plane.url, SAFEDEPLOY_TOKEN: TOKENS.viewer },
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
  });
  return { code, stdout, stderr };
}

const SINCE_30D = new Date(NOW.getTime() - 30 * 86_400_000).toISOString();

describe("GET /v1/dora", () => {
  it("computes the four keys of the known history per service, team and overall", async () => {
    const { status, body } = await dora("?since=30d");
    expect(status).toBe(200);
    expect(body).toMatchObject({
      since: SINCE_30D,
      until: NOW.toISOString(),
      failureWindow: "24h",
    });
    expect(body.overall).toEqual({
      deploys: 4,
      deploysPerDay: 4 / 30,
      // 30 min (c2), 1 h (c3), 2 h (c1); legacy's deploy carried no commit time.
      leadTime: { samples: 3, medianSeconds: 3600, p90Seconds: 7200, meanSeconds: 4200 },
      failedDeploys: 2,
      changeFailureRate: 0.5,
      incidents: 2,
      unresolvedIncidents: 1,
      timeToRestore: { samples: 1, medianSeconds: 2700, p90Seconds: 2700, meanSeconds: 2700 },
    });
    const services = body.services as { service: string; team: string; deploys: number }[];
    expect(services.map((s) => [s.service, s.team, s.deploys])).toEqual([
      ["checkout", "team-payments", 3],
      ["legacy", "team-platform", 1],
    ]);
    const teams = body.teams as { team: string; failedDeploys: number }[];
    expect(teams.map((t) => [t.team, t.failedDeploys])).toEqual([
      ["team-payments", 2],
      ["team-platform", 0],
    ]);
  });

  it("filters by service and team, and narrows failures with a shorter window", async () => {
    const checkout = await dora("?service=checkout&since=30d");
    expect(checkout.body.overall).toMatchObject({ deploys: 3, failedDeploys: 2, incidents: 1 });
    const platform = await dora("?team=team-platform&since=30d");
    expect(platform.body.overall).toMatchObject({ deploys: 1, failedDeploys: 0, incidents: 1 });
    // The incident came 1 h after c1, the rollback 2 h after c3: a 90 min window keeps only c1.
    const narrow = await dora("?since=30d&failureWindow=90m");
    expect(narrow.body.overall).toMatchObject({ failedDeploys: 1, changeFailureRate: 0.25 });
    // Only the last 4 days: c3 (rolled back) and INC-D2.
    const recent = await dora(`?since=4d&until=${NOW.toISOString()}`);
    expect(recent.body.overall).toMatchObject({ deploys: 1, failedDeploys: 1, incidents: 1 });
  });

  it("refuses what makes no range, naming the field, and a team no service has", async () => {
    for (const query of [
      "?since=yesterday",
      "?since=1d&until=2d",
      "?since=500d",
      "?failureWindow=90d",
      "?since=0000-01-01T00:00:00Z&until=0000-06-01T00:00:00Z",
      "?since=99999999y",
    ]) {
      const { status, body } = await dora(query);
      expect(status, query).toBe(400);
      expect(JSON.stringify(body.details), query).toMatch(
        /"in":"querystring".*(since|failureWindow)/,
      );
    }
    expect((await dora("?team=team-nobody")).status).toBe(404);
    const anonymous = await fetch(`${plane.url}/v1/dora`);
    expect(anonymous.status).toBe(401);
  });
});

describe("hostile input", () => {
  // What the fuzzer of the whole API sends, aimed at the history routes: every answer is below
  // 500, and every 4xx names the field it refuses.
  const text = fc.oneof(
    fc.string({ maxLength: 40 }),
    fc.constantFrom(
      "0000-01-01T00:00:00Z",
      "9999-12-31T23:59:59Z",
      "99999999y",
      "1ms",
      "30d",
      "-1d",
    ),
    fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  );
  const params = fc.dictionary(
    fc.constantFrom("since", "until", "service", "team", "failureWindow", "points"),
    text,
  );
  const paths = fc.constantFrom(
    "/v1/dora",
    "/v1/services/checkout/slos/availability/history",
    "/v1/services/checkout/slos/nope/history",
    "/v1/incidents/INC-D1/timeline",
    "/v1/incidents/INC-NONE/timeline",
  );

  it("answers below 500 and names the field of every 4xx", async () => {
    await fc.assert(
      fc.asyncProperty(paths, params, async (path, query) => {
        const search = new URLSearchParams(query).toString();
        const response = await fetch(`${plane.url}${path}?${search}`, {
          headers: bearer("viewer"),
        });
        const body = (await response.json()) as { details?: { in?: string }[] };
        const shown = `${path}?${search} → ${response.status} ${JSON.stringify(body).slice(0, 200)}`;
        expect(response.status, shown).toBeLessThan(500);
        if (response.status >= 400) {
          expect(
            (body.details ?? []).some((d) => typeof d.in === "string"),
            shown,
          ).toBe(true);
        }
      }),
      { numRuns: 150 },
    );
  }, 60_000);
});

describe("safedeploy dora", () => {
  it("prints a table per service, team and overall, and the API's JSON with --json", async () => {
    const table = await cli(["dora", "--since", "30d"]);
    expect(table.code, table.stderr).toBe(0);
    const lines = table.stdout.split("\n");
    expect(lines.find((l) => l.startsWith("checkout"))).toMatch(
      /checkout\s+team-payments\s+3\s+0\.10\s+1h\s+67% \(2\/3\)\s+45m\s+1/,
    );
    expect(lines.find((l) => l.startsWith("all"))).toMatch(
      /all\s+4\s+0\.13\s+1h\s+50% \(2\/4\)\s+45m\s+2 \(1 open\)/,
    );
    const json = await cli(["dora", "--service", "legacy", "--json"]);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({
      overall: { deploys: 1, changeFailureRate: 0 },
    });
    const refused = await cli(["dora", "--since", "nope"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/since/);
  });
});

/** The `safedeploy dora` and `curl …/v1/dora` lines of the sh blocks of a markdown text. */
function examples(markdown: string): { commands: string[][]; paths: string[] } {
  const blocks = [...markdown.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] ?? "");
  const lines = blocks.flatMap((block) => block.split("\n").map((l) => l.trim()));
  return {
    commands: lines
      .filter((l) => /^(pnpm exec |\.\/)?safedeploy dora\b/.test(l))
      .map((l) =>
        l
          .replace(/#.*$/, "")
          .replace(/^(pnpm exec |\.\/)/, "")
          .trim()
          .split(/\s+/)
          .slice(1),
      ),
    paths: lines.flatMap((l) => /\$SAFEDEPLOY_API(\/v1\/dora[^"\s]*)/.exec(l)?.[1] ?? []),
  };
}

describe("documented examples", () => {
  it("docs/dora.md: every command and request runs, and the example answer has the real shape", async () => {
    const text = await readFile(DOCS, "utf8");
    const { commands, paths } = examples(text);
    expect(commands.length).toBeGreaterThanOrEqual(3);
    expect(paths.length).toBeGreaterThanOrEqual(2);
    for (const argv of commands) {
      const run = await cli(argv);
      expect(run.code, `safedeploy ${argv.join(" ")}: ${run.stderr}`).toBe(0);
    }
    for (const path of paths) {
      const response = await fetch(`${plane.url}${path}`, { headers: bearer("viewer") });
      expect(response.status, path).toBe(200);
    }
    const example = JSON.parse(/```json\n([\s\S]*?)```/.exec(text)?.[1] ?? "null") as {
      overall: Record<string, unknown>;
    };
    const real = await dora("?service=checkout&since=30d");
    expect(Object.keys(example).sort()).toEqual(Object.keys(real.body).sort());
    // The example is the checkout answer of this very history.
    expect(example.overall).toEqual(real.body.overall);
  });

  it("README.md: the DORA section's examples run too (when it has one)", async () => {
    const readme = await readFile(README, "utf8");
    const section = /^## DORA[^\n]*\n([\s\S]*?)(?=^## )/m.exec(readme)?.[1] ?? "";
    const { commands, paths } = examples(section);
    for (const argv of commands) {
      const run = await cli(argv);
      expect(run.code, `safedeploy ${argv.join(" ")}: ${run.stderr}`).toBe(0);
    }
    for (const path of paths) {
      const response = await fetch(`${plane.url}${path}`, { headers: bearer("viewer") });
      expect(response.status, path).toBe(200);
    }
  });
});
