// Recurring freeze windows in the policy service on a real NATS: the gate and the published
// verdict name the window; an override outlives a restart of the service and is published.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { provision, requestCommand } from "@safedeploy/jetstream";
import { startService } from "@safedeploy/runtime";
import type { ServiceHandle } from "@safedeploy/runtime";
import {
  createTestBus,
  readStream,
  serviceYaml,
  testServiceEnv,
  waitUntil,
} from "@safedeploy/testing";
import type { TestBus } from "@safedeploy/testing";
import { policyService } from "../src/service.js";

/** Every day, all day: always frozen while not overridden. */
const ALWAYS = `apiVersion: safedeploy.dev/v1
kind: FreezeWindow
metadata: { name: always }
spec:
  effect: deny
  dtstart: "2026-01-01T00:00:00"
  timeZone: UTC
  rrule: FREQ=DAILY
  duration: 1d
  services: ["*"]
  reason: permanent freeze
`;

let harness: TestBus;
let root: string;
let replica: ServiceHandle;
let env: Record<string, string>;

const gate = async () => {
  const reply = await requestCommand(harness.bus, "gate.query", { service: "checkout" });
  if (!reply.ok) throw new Error(reply.error.message);
  return reply.result;
};
const recurringReason = async () =>
  (await gate()).reasons.find((r) => r.code === "freeze-active" && r.value === "recurring:always");

beforeAll(async () => {
  harness = await createTestBus();
  await provision(harness.bus);
  root = await mkdtemp(join(tmpdir(), "policy-freeze-windows-"));
  await writeFile(join(root, "catalog.yaml"), `${serviceYaml("checkout")}---\n${ALWAYS}`);
  env = testServiceEnv(harness, { SAFEDEPLOY_CATALOG: join(root, "catalog.yaml") });
  replica = await startService(policyService, { env });
});

afterAll(async () => {
  await replica.shutdown("test");
  await harness.cleanup();
  await rm(root, { recursive: true, force: true });
});

describe("recurring freeze windows in the policy service", () => {
  it("fail closed: a window with no opening in the search horizon says so", async () => {
    const reason = await recurringReason();
    expect(reason?.message).toContain("deny window always");
    expect(reason?.message).toContain("no opening found within 400 days");
    // The startup verdict carries it too.
    await waitUntil(
      async () =>
        (await readStream(harness.bus, "GOVERNANCE")).some(
          (e) =>
            e.type === "governance.verdict" &&
            e.data.reasons.some((r) => r.value === "recurring:always"),
        ),
      10_000,
      () => "no verdict named the window",
    );
  });

  it("refuses an override in the past, and an override outlives a restart", async () => {
    const past = await requestCommand(harness.bus, "freeze.override", {
      service: "checkout",
      until: new Date(Date.now() - 1_000).toISOString(),
      reason: "too late",
      actor: "root",
    });
    expect(past.ok).toBe(false);
    const until = new Date(Date.now() + 3_600_000).toISOString();
    const reply = await requestCommand(harness.bus, "freeze.override", {
      service: "checkout",
      until,
      reason: "emergency",
      actor: "root",
    });
    expect(reply.ok && reply.result.windows).toEqual(["always"]);
    expect(await recurringReason()).toBeUndefined();
    await replica.shutdown("test");
    replica = await startService(policyService, { env });
    expect(await recurringReason()).toBeUndefined();
    const events = (await readStream(harness.bus, "GOVERNANCE")).filter(
      (e) => e.type === "governance.freeze-overridden",
    );
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ service: "checkout", data: { actor: "root", until } });
  });
});
