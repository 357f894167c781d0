import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "@safedeploy/cli";
import { provision, publishEvent } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import { createEnvelope, messageId, qualifiedName } from "@safedeploy/schema";
import type { Envelope, SliWindow } from "@safedeploy/schema";
import { budgetService } from "@safedeploy/service-budget";
import { incidentService } from "@safedeploy/service-incident";
import { policyService } from "@safedeploy/service-policy";
import { createTestBus, sliSnapshotEvent, testServiceEnv, waitUntil } from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";

const catalog = new URL("../fixtures/catalog/governance", import.meta.url).pathname;
const WINDOWS = ["5m", "30m", "1h", "6h", "3d", "30d"];
let harness: TestBus;
let env: Record<string, string>;
const services: ServiceHandle[] = [];
let since: string;
// Evidence from now on, 5 s apart (the policy service judges each at its own time).
let clock = Date.now();

/** An SLI snapshot: `shortErrors` of 1000 requests failing in the short windows, 0.05% over 30d. */
function snapshot(shortErrors: number): Envelope<"metrics.snapshot"> {
  clock += 5_000;
  const at = new Date(clock).toISOString();
  const windows: SliWindow[] = WINDOWS.map((window) => ({
    window,
    errorQuery: "errors",
    totalQuery: "total",
    errors: window === "30d" || window === "3d" ? 0.5 : shortErrors,
    total: 1000,
    status: "ok",
  }));
  return sliSnapshotEvent("checkout", at, windows);
}

async function settled() {
  const idle = async (stream: string, durable: string) => {
    const info = await harness.bus.jsm.consumers.info(
      qualifiedName(harness.bus.ns, stream),
      qualifiedName(harness.bus.ns, durable),
    );
    return info.num_pending === 0 && info.num_ack_pending === 0;
  };
  await waitUntil(
    async () =>
      (await idle("METRICS", "budget")) &&
      (await idle("BUDGET", "incident")) &&
      (await idle("BUDGET", "policy")),
    20_000,
    () => "the services did not settle",
  );
}

async function replay(...args: string[]) {
  let stdout = "";
  let stderr = "";
  const code = await runCli({
    argv: ["replay", "--service", "checkout", "--since", since, ...args],
    env,
    stdout: (text) => (stdout += text),
    stderr: (text) => (stderr += text),
  });
  return { code, stdout, stderr };
}

beforeAll(async () => {
  harness = await createTestBus();
  await provision(harness.bus);
  // An hourly poll interval: the policy service's clock does not tick during the test.
  env = testServiceEnv(harness, { SAFEDEPLOY_CATALOG: catalog, SAFEDEPLOY_POLL_INTERVAL: "1h" });
  for (const definition of [budgetService, incidentService, policyService]) {
    services.push(await startService(definition, { env }));
  }
  since = new Date(Date.now() - 1_000).toISOString();
  // Healthy, then burning fast, then healthy again.
  for (const errors of [0, 0, 0, 100, 100, 100, 0, 0]) {
    await publishEvent(harness.bus, snapshot(errors));
  }
  await settled();
});

afterAll(async () => {
  for (const service of services) await service.shutdown("test");
  await harness.cleanup();
});

describe("safedeploy replay", () => {
  it("re-derives every recorded decision: budget evaluations, the incident and the verdicts", async () => {
    const result = await replay();
    expect(result.stderr).toBe("");
    expect(result.stdout).toMatch(
      /^identical: checkout from .* \(\d+ messages\): 8 budget evaluations, 2 incident decisions, 0 exhaustion freezes, 3 verdicts re-derived as recorded\n$/,
    );
    expect(result.code).toBe(0);
  });

  it("under a laxer policy, reports which decisions would have changed (what-if)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sd-whatif-"));
    const policy = join(dir, "lax.yaml");
    await writeFile(
      policy,
      `apiVersion: safedeploy.dev/v1
kind: Policy
metadata: { name: lax }
spec:
  maxPromotionBurnRate: 200
  openIncidentOn: [exhausted]
  burnRates:
    - { severity: fast-burn, factor: 500, long: 1h, short: 5m }
`,
    );
    const result = await replay("--policy", policy, "--json");
    expect(result.code).toBe(1);
    const report = JSON.parse(result.stdout) as {
      changes: { before: { summary: string } | null; after: { summary: string } | null }[];
    };
    const summaries = report.changes.map((c) => `${c.before?.summary} → ${c.after?.summary}`);
    expect(summaries).toContain("opened slo incident on availability: fast-burn P1 → undefined");
    expect(summaries.some((s) => s.startsWith("availability: fast-burn"))).toBe(true);
  });

  it("names the first decision that differs from what was recorded", async () => {
    // A budget evaluation recorded wrong (as a buggy budget replica would): stored first, so the
    // real one, with the same message id, is deduplicated away.
    const next = snapshot(0);
    const forged = createEnvelope(
      {
        type: "budget.evaluated",
        id: messageId("budget.evaluated", next.id),
        service: "checkout",
        data: {
          snapshotId: next.id,
          evaluatedAt: next.data.evaluatedAt,
          slos: [
            {
              slo: "availability",
              evaluatedAt: next.data.evaluatedAt,
              objective: 99.9,
              severity: "slow-burn",
              burn: "slow-burn",
              budget: "ok",
              budgetRemaining: 0.5,
              errorRatio: 0.0005,
              burnRates: [],
              rules: [],
              explanation: "forged",
              windows: next.data.slos[0]?.windows ?? [],
            },
          ],
        },
      },
      { source: "budget", time: next.data.evaluatedAt },
    );
    await publishEvent(harness.bus, forged);
    await publishEvent(harness.bus, next);
    await settled();
    const result = await replay();
    expect(result.code).toBe(1);
    expect(result.stderr).toContain("differs: checkout");
    expect(result.stderr).toContain("at budget decision #9");
    expect(result.stderr).toContain("recorded: ");
    expect(result.stderr).toContain(
      "slow-burn (burn slow-burn, budget ok), budget 0.500000 (forged)",
    );
    expect(result.stderr).toContain(`[${forged.id}]`);
  });

  it("refuses bad arguments with exit 2", async () => {
    expect((await replay("--since", "yesterday-ish")).code).toBe(2);
    const unknown = await runCli({
      argv: ["replay", "--service", "nobody", "--since", "1h"],
      env,
      stdout: () => undefined,
      stderr: () => undefined,
    });
    expect(unknown).toBe(2);
  });
});
