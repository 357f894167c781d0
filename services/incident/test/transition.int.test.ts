import { afterAll, beforeAll, expect, it } from "vitest";
import { openKv, publishEvent, requestCommand } from "@safedeploy/jetstream";
import type { ServiceHandle } from "@safedeploy/runtime";
import type { TestBus } from "@safedeploy/testing";
import { ServiceRecord } from "../src/store.js";
import { budgetEvaluation, startIncidents } from "./fixtures.js";

let harness: TestBus;
let replica: ServiceHandle;

beforeAll(async () => {
  const started = await startIncidents();
  harness = started.harness;
  replica = started.replicas[0]!;
});

afterAll(async () => {
  await replica.shutdown("test");
  await harness.cleanup();
});

it("people move an incident through its lifecycle; illegal moves are refused with the reason", async () => {
  const at = "2026-11-24T09:00:00.000Z";
  await publishEvent(harness.bus, budgetEvaluation("checkout", at, "fast-burn"));
  const records = await openKv(harness.bus, "incidents-active", ServiceRecord);
  let id: string | undefined;
  for (let i = 0; i < 200 && id === undefined; i++) {
    const record = await records.get("checkout");
    if (record !== null && record.value.outbox.length === 0) id = record.value.incident?.id;
    else await new Promise((resolve) => setTimeout(resolve, 25));
  }
  expect(id).toMatch(/^INC-[0-9A-F]{12}$/);
  const move = (
    to: "investigating" | "resolved" | "postmortem-complete" | "detected" | "mitigated",
    link?: string,
  ) =>
    requestCommand(harness.bus, "incident.transition", {
      incidentId: id!,
      to,
      actor: "ana",
      reason: `moving to ${to}`,
      ...(link === undefined ? {} : { link }),
    });

  expect(await move("investigating")).toMatchObject({
    ok: true,
    result: { state: "investigating" },
  });
  expect(await move("detected")).toMatchObject({
    ok: false,
    error: { code: "conflict", message: "an incident cannot go from investigating to detected" },
  });
  expect(await move("resolved")).toMatchObject({ ok: true, result: { state: "resolved" } });
  expect(await move("postmortem-complete")).toMatchObject({
    ok: false,
    error: { code: "conflict" },
  });
  const done = await move("postmortem-complete", "https://wiki.example/postmortems/42");
  expect(done).toMatchObject({ ok: true, result: { state: "postmortem-complete" } });
  if (done.ok) {
    expect(done.result.transitions.map((t) => [t.from, t.to, t.actor])).toEqual([
      [null, "detected", "system"],
      ["detected", "investigating", "ana"],
      ["investigating", "resolved", "ana"],
      ["resolved", "postmortem-complete", "ana"],
    ]);
  }
  expect(
    await requestCommand(harness.bus, "incident.transition", {
      incidentId: "INC-NOPE",
      to: "resolved",
      actor: "ana",
      reason: "x",
    }),
  ).toMatchObject({ ok: false, error: { code: "not_found" } });
});
