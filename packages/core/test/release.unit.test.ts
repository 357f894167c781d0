import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { EVENT_DATA, ReleaseTrainDocument, ServiceDocument } from "@safedeploy/schema";
import {
  DEPLOY_PROBE_INTERVAL_MS,
  attributeFailure,
  decideTrain,
  deployProbeDelayMs,
  planTrain,
  releaseManifest,
  startTrain,
} from "@safedeploy/core";
import type {
  CheckResult,
  StepReport,
  TrainAction,
  TrainDecision,
  TrainEvent,
  TrainPlan,
  TrainState,
} from "@safedeploy/core";

const service = (name: string, spec: Record<string, unknown> = {}) =>
  ServiceDocument.parse({
    apiVersion: "safedeploy.dev/v1",
    kind: "Service",
    metadata: { name, owner: "team" },
    spec: { slos: [], rollback: { strategy: "git-revert", path: `envs/prod/${name}` }, ...spec },
  });

const services = [
  service("checkout", {
    deployment: { strategy: "canary", canary: { steps: [10, 50, 100], bakeTime: "10m" } },
  }),
  service("cart", { deployment: { strategy: "blue_green" } }),
  service("search", { deployment: { strategy: "rolling", rolling: { maxUnavailable: 2 } } }),
  service("email"),
];

const trainDoc = (steps: unknown[], extra: Record<string, unknown> = {}) =>
  ReleaseTrainDocument.parse({
    apiVersion: "safedeploy.dev/v1",
    kind: "ReleaseTrain",
    metadata: { name: "train-42" },
    spec: { steps, ...extra },
  });

const fourSteps = trainDoc(
  [
    {
      service: "checkout",
      image: "registry.example.com/shop/checkout:v1.6.0",
      guardWindow: "10m",
      checks: [
        { http: "http://checkout.internal/healthz", expect: { json: { "$.status": "ok" } } },
      ],
      regression: { maxErrorRatioIncrease: 2 },
    },
    { service: "cart", patch: { replicas: 3 }, guardWindow: "5m" },
    { service: "search", image: "registry.example.com/shop/search:v2", guardWindow: "1m" },
    { service: "email", image: "registry.example.com/shop/email:v9" },
  ],
  { finalChecks: [{ http: "http://shop.internal/healthz" }] },
);

function plan(doc = fourSteps): TrainPlan {
  const result = planTrain(doc, services);
  if (!result.ok) throw new Error(result.errors.map((e) => e.message).join("; "));
  return result.plan;
}

const t0 = "2026-11-24T09:00:00.000Z";
const at = (minutes: number) => new Date(Date.parse(t0) + minutes * 60_000).toISOString();

const okCheck = (url = "http://x.internal/"): CheckResult => ({
  url,
  severity: "fatal",
  outcome: "ok",
  failures: [],
  status: 200,
  latencyMs: 5,
});
const badCheck = (
  outcome: "fatal" | "warning" = "fatal",
  url = "http://x.internal/",
): CheckResult => ({
  url,
  severity: outcome,
  outcome,
  failures: [
    { expectation: "json $.status", expected: "ok", got: "down", message: '$.status is "down"' },
  ],
  status: 200,
  latencyMs: 5,
});
const report = (state: TrainState, step: number, check: CheckResult = okCheck()): StepReport => ({
  step,
  service: state.plan.steps[step]?.service ?? "?",
  checks: [check],
  regression: null,
});

/** Feeds events in order; returns the last decision and every action and event on the way. */
function run(state: TrainState, events: readonly [TrainEvent, string][]) {
  let current = state;
  const actions: TrainAction[] = [];
  const published: TrainDecision["events"][number][] = [];
  let last: TrainDecision | undefined;
  for (const [event, now] of events) {
    last = decideTrain(current, event, now);
    current = last.state;
    actions.push(...last.actions);
    published.push(...last.events);
  }
  return { state: current, actions, published, last };
}

/** Promote, guard and check one step, all healthy unless a report is given. */
function stepThrough(state: TrainState, step: number, start: number, reports?: StepReport[]) {
  const guard = state.plan.steps[step]?.guardWindowMs ?? 0;
  const end = start + guard / 60_000;
  return run(state, [
    [{ type: "step-promoted", step, commit: `c${step}` }, at(start)],
    [{ type: "guard-elapsed", step }, at(end)],
    [{ type: "checks-reported", step, reports: reports ?? [report(state, step)] }, at(end)],
  ]);
}

describe("planTrain", () => {
  it("plans each step with its strategy, change at the rollback path, guard, checks and rule", () => {
    const p = plan();
    expect(p.train).toBe("train-42");
    expect(p.steps.map((s) => [s.service, s.strategy.kind, s.summary, s.guardWindowMs])).toEqual([
      [
        "checkout",
        "canary",
        "image registry.example.com/shop/checkout:v1.6.0 → envs/prod/checkout",
        600_000,
      ],
      ["cart", "blue_green", "patch replicas → envs/prod/cart", 300_000],
      ["search", "rolling", "image registry.example.com/shop/search:v2 → envs/prod/search", 60_000],
      ["email", "rolling", "image registry.example.com/shop/email:v9 → envs/prod/email", 600_000],
    ]);
    expect(p.steps[0]?.strategy).toEqual({
      kind: "canary",
      stages: [
        { weight: 10, bakeTime: "10m" },
        { weight: 50, bakeTime: "10m" },
        { weight: 100, bakeTime: "10m" },
      ],
      bakeTimeMs: 600_000,
      promoteHook: null,
      rollbackHook: null,
    });
    expect(p.steps[1]?.strategy).toEqual({ kind: "blue_green", cutoverHook: null });
    expect(p.steps[2]?.strategy).toEqual({ kind: "rolling", maxUnavailable: 2 });
    expect(p.steps[1]?.change).toEqual({
      kind: "patch",
      patch: { replicas: 3 },
      path: "envs/prod/cart",
    });
    expect(p.steps[0]?.regression).toEqual({ maxErrorRatioIncrease: 2, minBaselineRatio: 0.001 });
    expect(p.steps[1]?.regression).toBeNull();
    expect(p.finalChecks).toHaveLength(1);
    expect(p.followUps).toEqual([
      { after: "1h", afterMs: 3_600_000 },
      { after: "4h", afterMs: 14_400_000 },
      { after: "12h", afterMs: 43_200_000 },
    ]);
  });

  it("names every step that cannot be planned", () => {
    const doc = trainDoc([
      { service: "nope", image: "x:1" },
      { service: "checkout", image: "x:2" },
      { service: "bare", image: "x:3" },
    ]);
    const bare = ServiceDocument.parse({
      apiVersion: "safedeploy.dev/v1",
      kind: "Service",
      metadata: { name: "bare", owner: "team" },
      spec: { slos: [] },
    });
    const loaded = services.map((s) => ({ name: s.metadata.name, spec: s.spec }));
    expect(planTrain(doc, [...loaded, bare])).toEqual({
      ok: false,
      errors: [
        {
          step: 0,
          service: "nope",
          code: "unknown-service",
          message: 'step 1: service "nope" is not in the catalog',
        },
        {
          step: 2,
          service: "bare",
          code: "no-rollback-path",
          message: 'step 3: service "bare" has no rollback.path to change',
        },
      ],
    });
  });
});

describe("the train state machine", () => {
  const started = () => startTrain({ trainId: "t1", plan: plan(), dryRun: false, now: t0 });

  it("starts by promoting step 1 and announcing the train", () => {
    const decision = started();
    expect(decision.state.steps.map((s) => s.phase)).toEqual([
      "promoting",
      "pending",
      "pending",
      "pending",
    ]);
    expect(decision.actions).toEqual([
      expect.objectContaining({ kind: "promote", step: 0, service: "checkout" }),
    ]);
    expect(decision.events.map((e) => [e.type, e.id])).toEqual([
      ["governance.train-started", "governance.train-started:t1"],
      ["governance.train-step", "governance.train-step:t1:0:promoting"],
    ]);
    for (const event of decision.events)
      expect(() => EVENT_DATA[event.type].parse(event.data)).not.toThrow();
  });

  it("all healthy: promotes every step in order with its guard window, then final checks, then follow-ups", () => {
    let { state } = started();
    let minute = 0;
    const promotions: number[] = [];
    for (let step = 0; step < 4; step++) {
      const result = stepThrough(state, step, minute);
      state = result.state;
      minute += (state.plan.steps[step]?.guardWindowMs ?? 0) / 60_000;
      promotions.push(...result.actions.filter((a) => a.kind === "promote").map((a) => a.step));
      const wait = result.actions.find((a) => a.kind === "wait");
      expect(wait).toMatchObject({ step, until: at(minute) });
    }
    expect(promotions).toEqual([1, 2, 3]);
    const finalAction = run(state, []).state.final;
    expect(finalAction.phase).toBe("checking");
    const done = decideTrain(
      state,
      { type: "final-checks-reported", checks: [okCheck()], reports: [] },
      at(minute),
    );
    expect(done.state.status).toBe("completed");
    expect(done.state.followUps.map((f) => f.dueAt)).toEqual([
      at(minute + 60),
      at(minute + 240),
      at(minute + 720),
    ]);
    expect(done.actions).toEqual([
      { kind: "schedule-follow-up", index: 0, dueAt: at(minute + 60) },
      { kind: "schedule-follow-up", index: 1, dueAt: at(minute + 240) },
      { kind: "schedule-follow-up", index: 2, dueAt: at(minute + 720) },
    ]);
    expect(done.events.map((e) => e.type)).toEqual([
      "governance.train-finished",
      "governance.follow-up",
      "governance.follow-up",
      "governance.follow-up",
    ]);
    for (const event of done.events)
      expect(() => EVENT_DATA[event.type].parse(event.data)).not.toThrow();
    const manifest = releaseManifest(done.state);
    expect(manifest.promoted.map((e) => [e.service, e.commit, e.promotedAt])).toEqual([
      ["checkout", "c0", at(0)],
      ["cart", "c1", at(10)],
      ["search", "c2", at(15)],
      ["email", "c3", at(16)],
    ]);
    expect(manifest).toMatchObject({
      status: "completed",
      train: "train-42",
      finishedAt: at(minute),
    });
  });

  it("a guard is not over before its window: guard-elapsed too early changes nothing", () => {
    const { state } = run(started().state, [
      [{ type: "step-promoted", step: 0, commit: "c0" }, at(0)],
    ]);
    const early = decideTrain(state, { type: "guard-elapsed", step: 0 }, at(9));
    expect(early).toMatchObject({
      changed: false,
      ignored: expect.stringContaining("guards until") as string,
    });
    const onTime = decideTrain(state, { type: "guard-elapsed", step: 0 }, at(10));
    expect(onTime.actions).toEqual([
      {
        kind: "run-checks",
        step: 0,
        targets: [
          {
            step: 0,
            service: "checkout",
            checks: state.plan.steps[0]?.checks,
            regression: { maxErrorRatioIncrease: 2, minBaselineRatio: 0.001 },
            deployedAt: at(0),
          },
        ],
      },
    ]);
  });

  it("service 3 fails its content check: halts after step 3, revert of step 3 only", () => {
    let { state } = started();
    state = stepThrough(state, 0, 0).state;
    state = stepThrough(state, 1, 10).state;
    const failing = stepThrough(state, 2, 15, [
      report(state, 0),
      report(state, 1),
      report(state, 2, badCheck()),
    ]);
    expect(failing.state.status).toBe("halted");
    expect(failing.state.steps.map((s) => s.phase)).toEqual([
      "checked",
      "checked",
      "checked",
      "pending",
    ]);
    expect(failing.actions.filter((a) => a.kind === "promote")).toEqual([]);
    expect(failing.last?.actions).toEqual([
      expect.objectContaining({
        kind: "propose-revert",
        step: 2,
        service: "search",
        path: "envs/prod/search",
        commit: "c2",
      }),
    ]);
    expect(failing.last?.events.map((e) => e.type)).toEqual([
      "governance.train-step",
      "governance.train-finished",
    ]);
    expect(failing.last?.events[1]?.data).toMatchObject({ outcome: "halted" });
    expect(releaseManifest(failing.state).promoted.map((e) => e.service)).toEqual([
      "checkout",
      "cart",
      "search",
    ]);
  });

  it("two services failing at once: manual triage, nothing reverted", () => {
    let { state } = started();
    state = stepThrough(state, 0, 0).state;
    state = stepThrough(state, 1, 10).state;
    const failing = stepThrough(state, 2, 15, [
      report(state, 0),
      report(state, 1, badCheck()),
      report(state, 2, badCheck()),
    ]);
    expect(failing.state.status).toBe("needs-triage");
    expect(failing.last?.actions).toEqual([
      expect.objectContaining({
        kind: "manual-triage",
        evidence: expect.arrayContaining([
          expect.stringContaining("2 services failing at once"),
        ]) as string[],
      }),
    ]);
    expect(failing.actions.some((a) => a.kind === "propose-revert")).toBe(false);
  });

  it("warnings halt only with haltOn warning", () => {
    const lenient = startTrain({ trainId: "t1", plan: plan(), dryRun: false, now: t0 }).state;
    const strict = startTrain({
      trainId: "t1",
      plan: plan(),
      dryRun: false,
      haltOn: "warning",
      now: t0,
    }).state;
    const warn = (state: TrainState) =>
      stepThrough(state, 0, 0, [report(state, 0, badCheck("warning"))]);
    expect(warn(lenient).state.steps[1]?.phase).toBe("promoting");
    expect(warn(lenient).state.steps[0]?.outcome).toBe("warning");
    expect(warn(strict).state.status).toBe("halted");
  });

  it("a regression or a blocked gate fails the step", () => {
    const { state } = started();
    const regressed: StepReport = {
      ...report(state, 0),
      regression: {
        regressed: true,
        findings: [
          {
            kind: "new-error-series",
            labels: { code: "502" },
            errors: 4,
            message: "new error series",
          },
        ],
        before: { errors: 0, total: 100, ratio: 0 },
        after: { errors: 4, total: 100, ratio: 0.04 },
      },
    };
    expect(stepThrough(state, 0, 0, [regressed]).state.status).toBe("halted");
    const blocked: StepReport = { ...report(state, 0), gate: { allowed: false, reasons: [] } };
    const halted = stepThrough(state, 0, 0, [blocked]);
    expect(halted.state.attribution).toMatchObject({
      kind: "step",
      evidence: ["step 1 checkout: gate blocks: no reason given"],
    });
  });

  it("a failed promotion halts without a revert", () => {
    const failed = decideTrain(
      started().state,
      { type: "step-failed", step: 0, reason: "push rejected" },
      at(1),
    );
    expect(failed.state).toMatchObject({
      status: "halted",
      reason: expect.stringContaining("push rejected") as string,
    });
    expect(failed.actions).toEqual([]);
    expect(failed.events[0]?.data).toMatchObject({ outcome: "halted" });
  });

  it("ignores events that do not fit: wrong phase, missing report, after the end", () => {
    const { state } = started();
    expect(decideTrain(state, { type: "guard-elapsed", step: 0 }, at(0)).changed).toBe(false);
    expect(
      decideTrain(state, { type: "checks-reported", step: 0, reports: [] }, at(0)).changed,
    ).toBe(false);
    expect(decideTrain(state, { type: "step-promoted", step: 7, commit: "x" }, at(0)).changed).toBe(
      false,
    );
    expect(
      decideTrain(state, { type: "final-checks-reported", checks: [], reports: [] }, at(0)).changed,
    ).toBe(false);
    expect(decideTrain(state, { type: "follow-up-due", index: 0 }, at(0)).changed).toBe(false);
    expect(
      decideTrain(state, { type: "follow-up-reported", index: 0, checks: [], reports: [] }, at(0))
        .changed,
    ).toBe(false);
    const guarding = decideTrain(
      state,
      { type: "step-promoted", step: 0, commit: "c0" },
      at(0),
    ).state;
    expect(
      decideTrain(guarding, { type: "step-failed", step: 0, reason: "x" }, at(0)).changed,
    ).toBe(false);
    const checking = decideTrain(guarding, { type: "guard-elapsed", step: 0 }, at(10)).state;
    expect(
      decideTrain(
        checking,
        { type: "checks-reported", step: 0, reports: [report(state, 1)] },
        at(10),
      ).ignored,
    ).toBe("no report for step 0");
  });

  it("without final checks the train completes after the last step", () => {
    const doc = trainDoc([{ service: "email", image: "x:1", guardWindow: "1m" }], {
      followUps: ["30s"],
    });
    const { state } = startTrain({ trainId: "t2", plan: plan(doc), dryRun: true, now: t0 });
    const done = stepThrough(state, 0, 0);
    expect(done.state).toMatchObject({
      status: "completed",
      final: { phase: "checked" },
      dryRun: true,
    });
    expect(done.last?.actions).toEqual([
      { kind: "schedule-follow-up", index: 0, dueAt: "2026-11-24T09:01:30.000Z" },
    ]);
  });

  describe("final checks and follow-ups", () => {
    function finished() {
      let { state } = started();
      let minute = 0;
      for (let step = 0; step < 4; step++) {
        state = stepThrough(state, step, minute).state;
        minute += (state.plan.steps[step]?.guardWindowMs ?? 0) / 60_000;
      }
      return { state, minute };
    }

    it("a failing stack check with no per-service signal needs triage", () => {
      const { state, minute } = finished();
      const result = decideTrain(
        state,
        { type: "final-checks-reported", checks: [badCheck()], reports: [report(state, 0)] },
        at(minute),
      );
      expect(result.state.status).toBe("needs-triage");
      expect(result.actions).toEqual([
        expect.objectContaining({
          kind: "manual-triage",
          evidence: expect.arrayContaining([
            "the stack check failed with no per-service signal",
          ]) as string[],
        }),
      ]);
      expect(result.state.followUps).toEqual([]);
    });

    it("a failing final check with one failing service reverts that service's step", () => {
      const { state, minute } = finished();
      const result = decideTrain(
        state,
        {
          type: "final-checks-reported",
          checks: [badCheck()],
          reports: [report(state, 1, badCheck())],
        },
        at(minute),
      );
      expect(result.state.status).toBe("halted");
      expect(result.actions).toEqual([
        expect.objectContaining({ kind: "propose-revert", step: 1, service: "cart" }),
      ]);
    });

    it("each follow-up runs once when due and attributes a failure to the step that introduced it", () => {
      const { state, minute } = finished();
      const done = decideTrain(
        state,
        { type: "final-checks-reported", checks: [okCheck()], reports: [] },
        at(minute),
      );
      const early = decideTrain(done.state, { type: "follow-up-due", index: 0 }, at(minute + 59));
      expect(early.changed).toBe(false);
      const due = decideTrain(done.state, { type: "follow-up-due", index: 0 }, at(minute + 60));
      expect(due.actions).toEqual([
        expect.objectContaining({
          kind: "run-follow-up",
          index: 0,
          checks: state.plan.finalChecks,
        }),
      ]);
      const run = due.actions[0];
      expect(
        run?.kind === "run-follow-up" ? run.targets.map((t) => [t.service, t.deployedAt]) : [],
      ).toEqual([
        ["checkout", at(0)],
        ["cart", at(10)],
        ["search", at(15)],
        ["email", at(16)],
      ]);
      expect(
        decideTrain(due.state, { type: "follow-up-due", index: 0 }, at(minute + 61)).changed,
      ).toBe(false);
      const failed = decideTrain(
        due.state,
        {
          type: "follow-up-reported",
          index: 0,
          checks: [badCheck()],
          reports: [report(state, 0), report(state, 2, badCheck())],
        },
        at(minute + 61),
      );
      expect(failed.state.followUps[0]).toMatchObject({
        phase: "failed",
        attribution: { kind: "step", step: 2 },
      });
      expect(failed.actions).toEqual([
        expect.objectContaining({ kind: "block-service", service: "search" }),
        expect.objectContaining({ kind: "propose-revert", step: 2, path: "envs/prod/search" }),
      ]);
      expect(failed.events).toHaveLength(1);
      expect(failed.events[0]).toMatchObject({
        id: "governance.follow-up:t1:0:failed",
        data: { phase: "failed", attributedStep: 2 },
      });
      expect(() => EVENT_DATA["governance.follow-up"].parse(failed.events[0]?.data)).not.toThrow();
      expect(releaseManifest(failed.state).followUps[0]).toMatchObject({
        phase: "failed",
        attributedStep: 2,
      });
      const twice = decideTrain(
        failed.state,
        { type: "follow-up-reported", index: 0, checks: [], reports: [] },
        at(minute + 62),
      );
      expect(twice.changed).toBe(false);

      const second = decideTrain(
        failed.state,
        { type: "follow-up-due", index: 1 },
        at(minute + 240),
      ).state;
      const passed = decideTrain(
        second,
        { type: "follow-up-reported", index: 1, checks: [okCheck()], reports: [report(state, 2)] },
        at(minute + 240),
      );
      expect(passed.state.followUps[1]).toMatchObject({
        phase: "passed",
        attribution: { kind: "none" },
      });
      expect(passed.actions).toEqual([]);
      const ambiguous = decideTrain(
        decideTrain(passed.state, { type: "follow-up-due", index: 2 }, at(minute + 720)).state,
        { type: "follow-up-reported", index: 2, checks: [badCheck()], reports: [] },
        at(minute + 720),
      );
      expect(ambiguous.actions.map((a) => a.kind)).toEqual(["manual-triage"]);
      expect(ambiguous.events[0]?.data).toMatchObject({ attributedStep: null });
    });
  });
});

describe("attributeFailure", () => {
  const r = (step: number, service: string, failing: boolean): StepReport => ({
    step,
    service,
    checks: [failing ? badCheck() : okCheck()],
    regression: null,
  });

  it("names the one failing service's latest step", () => {
    expect(
      attributeFailure({
        reports: [r(0, "a", true), r(1, "b", false), r(2, "a", true)],
        haltOn: "fatal",
      }),
    ).toMatchObject({ kind: "step", step: 2, service: "a" });
    expect(attributeFailure({ reports: [r(0, "a", false)], haltOn: "fatal" })).toEqual({
      kind: "none",
    });
  });

  it("never names a step whose service was healthy (property)", () => {
    const reports = fc.array(
      fc.record({
        step: fc.nat(5),
        service: fc.constantFrom("a", "b", "c", "d"),
        failing: fc.boolean(),
      }),
      { maxLength: 8 },
    );
    fc.assert(
      fc.property(reports, fc.boolean(), (items, stackFails) => {
        const input = items.map((item) => r(item.step, item.service, item.failing));
        const attribution = attributeFailure({
          reports: input,
          stackChecks: [stackFails ? badCheck() : okCheck()],
          haltOn: "fatal",
        });
        const failingServices = new Set(items.filter((i) => i.failing).map((i) => i.service));
        if (attribution.kind === "step") {
          expect(failingServices).toEqual(new Set([attribution.service]));
          expect(items.some((i) => i.failing && i.step === attribution.step)).toBe(true);
        } else if (attribution.kind === "none") {
          expect(failingServices.size).toBe(0);
          expect(stackFails).toBe(false);
        } else {
          expect(failingServices.size !== 1).toBe(true);
        }
      }),
    );
  });
});

describe("state machine properties", () => {
  const planned = plan();
  const anyEvent: fc.Arbitrary<TrainEvent> = fc.oneof(
    fc.record({
      type: fc.constant("step-promoted" as const),
      step: fc.nat(4),
      commit: fc.constantFrom("a", "b"),
    }),
    fc.record({
      type: fc.constant("step-failed" as const),
      step: fc.nat(4),
      reason: fc.constant("boom"),
    }),
    fc.record({ type: fc.constant("guard-elapsed" as const), step: fc.nat(4) }),
    fc
      .record({
        step: fc.nat(3),
        bad: fc.array(fc.constantFrom("ok", "warning", "fatal"), { minLength: 4, maxLength: 4 }),
      })
      .map(({ step, bad }) => ({
        type: "checks-reported" as const,
        step,
        reports: Array.from({ length: step + 1 }, (_, i) => ({
          step: i,
          service: planned.steps[i]?.service ?? "?",
          checks: [bad[i] === "ok" ? okCheck() : badCheck(bad[i])],
          regression: null,
        })),
      })),
    fc.boolean().map((ok) => ({
      type: "final-checks-reported" as const,
      checks: [ok ? okCheck() : badCheck()],
      reports: [],
    })),
    fc.record({ type: fc.constant("follow-up-due" as const), index: fc.nat(3) }),
    fc.record({
      type: fc.constant("follow-up-reported" as const),
      index: fc.nat(3),
      checks: fc.constant([okCheck()]),
      reports: fc.constant([]),
    }),
  );
  const script = fc.array(fc.tuple(anyEvent, fc.nat(2000)), { maxLength: 40 });

  it("never promotes step n+1 before step n was checked without a halting outcome", () => {
    fc.assert(
      fc.property(script, (events) => {
        let state = startTrain({ trainId: "p", plan: planned, dryRun: false, now: t0 }).state;
        for (const [event, minute] of events) {
          const decision = decideTrain(state, event, at(minute));
          for (const action of decision.actions) {
            if (action.kind !== "promote" || action.step === 0) continue;
            const previous = decision.state.steps[action.step - 1];
            expect(previous?.phase).toBe("checked");
            expect(previous?.outcome === "fatal").toBe(false);
          }
          state = decision.state;
          state.steps.forEach((step, i) => {
            if (step.phase !== "pending" && i > 0)
              expect(state.steps[i - 1]?.phase).toBe("checked");
          });
        }
      }),
    );
  });

  it("applying an event twice is a no-op the second time", () => {
    fc.assert(
      fc.property(script, anyEvent, fc.nat(2000), (events, repeated, minute) => {
        let state = startTrain({ trainId: "p", plan: planned, dryRun: false, now: t0 }).state;
        for (const [event, m] of events) state = decideTrain(state, event, at(m)).state;
        const once = decideTrain(state, repeated, at(minute));
        const twice = decideTrain(once.state, repeated, at(minute));
        expect(twice.changed).toBe(false);
        expect(twice.state).toEqual(once.state);
        expect(twice.events).toEqual([]);
        expect(twice.actions).toEqual([]);
      }),
    );
  });

  it("is deterministic: the same events at the same times give the same decisions", () => {
    fc.assert(
      fc.property(script, (events) => {
        const replay = () => {
          let state = startTrain({ trainId: "p", plan: planned, dryRun: false, now: t0 }).state;
          const out: TrainDecision[] = [];
          for (const [event, m] of events) {
            const decision = decideTrain(state, event, at(m));
            out.push(decision);
            state = decision.state;
          }
          return out;
        };
        expect(replay()).toEqual(replay());
      }),
    );
  });
});

describe("strategy hooks", () => {
  const hookServices = [
    service("checkout", {
      deployment: {
        strategy: "canary",
        canary: {
          steps: [10, 100],
          bakeTime: "1m",
          promoteHook: {
            http: { url: "http://hooks.internal/promote", headers: { authorization: "Bearer x" } },
          },
          rollbackHook: { http: { url: "http://hooks.internal/rollback", method: "PUT" } },
        },
      },
    }),
    service("cart", {
      deployment: {
        strategy: "blue_green",
        blueGreen: { cutoverHook: { http: { url: "http://hooks.internal/cutover" } } },
      },
    }),
    service("search", {
      deployment: {
        strategy: "canary",
        canary: {
          steps: [50, 100],
          bakeTime: "1m",
          promoteHook: { manifest: { path: "envs/prod/search/rollout.yaml", patch: { w: 100 } } },
        },
      },
    }),
  ];
  const hookTrain = trainDoc([
    { service: "checkout", image: "registry.example.com/shop/checkout:v2", guardWindow: "10m" },
    { service: "cart", image: "registry.example.com/shop/cart:v2", guardWindow: "5m" },
    { service: "search", image: "registry.example.com/shop/search:v2", guardWindow: "1m" },
  ]);
  const hookPlan = (): TrainPlan => {
    const result = planTrain(hookTrain, hookServices);
    if (!result.ok) throw new Error(result.errors.map((e) => e.message).join("; "));
    return result.plan;
  };
  const begin = (dryRun = false) =>
    startTrain({ trainId: "TRN-1", plan: hookPlan(), dryRun, now: t0 }).state;
  const hookOk = (
    step: number,
    hook: "promote" | "cutover" | "rollback",
  ): Extract<TrainEvent, { type: "hook-reported" }> => ({
    type: "hook-reported",
    step,
    hook,
    ok: true,
    status: 200,
    detail: "HTTP 200",
  });

  it("calls the canary promote hook once the change landed, and guards only after it answered", () => {
    const promoted = decideTrain(begin(), { type: "step-promoted", step: 0, commit: "c0" }, at(1));
    expect(promoted.state.steps[0]).toMatchObject({
      phase: "hooking",
      commit: "c0",
      promotedAt: at(1),
      guardUntil: null,
    });
    expect(promoted.actions).toEqual([
      {
        kind: "call-hook",
        step: 0,
        service: "checkout",
        hook: "promote",
        url: "http://hooks.internal/promote",
        method: "POST",
        headers: { authorization: "Bearer x" },
        idempotencyKey: "TRN-1-s1-promote",
        body: {
          train: "train-42",
          trainId: "TRN-1",
          step: 1,
          service: "checkout",
          change: {
            kind: "image",
            image: "registry.example.com/shop/checkout:v2",
            path: "envs/prod/checkout",
          },
          commit: "c0",
          phase: "promote",
        },
      },
    ]);
    expect(promoted.events.map((e) => (e.data as { phase: string }).phase)).toEqual(["promoted"]);
    // A guard window that elapses before the hook answered changes nothing.
    expect(decideTrain(promoted.state, { type: "guard-elapsed", step: 0 }, at(30)).changed).toBe(
      false,
    );
    const answered = decideTrain(promoted.state, hookOk(0, "promote"), at(2));
    expect(answered.state.steps[0]).toMatchObject({ phase: "guarding", guardUntil: at(12) });
    expect(answered.state.steps[0]?.hooks).toEqual([
      {
        hook: "promote",
        kind: "http",
        target: "http://hooks.internal/promote",
        outcome: "ok",
        status: 200,
        detail: "HTTP 200",
        at: at(2),
      },
    ]);
    expect(answered.actions).toEqual([{ kind: "wait", step: 0, until: at(12) }]);
    expect(answered.events[0]?.data).toMatchObject({
      phase: "guarding",
      details: { hooks: [{ hook: "promote", outcome: "ok" }] },
    });
    // Once recorded, the outcome is never taken again.
    const again = decideTrain(answered.state, hookOk(0, "promote"), at(3));
    expect(again.changed).toBe(false);
    expect(releaseManifest(answered.state).promoted[0]?.hooks).toHaveLength(1);
  });

  it("a failing promote hook halts the train at that step: revert proposed, rollback hook called", () => {
    const promoted = decideTrain(begin(), { type: "step-promoted", step: 0, commit: "c0" }, at(1));
    const failed = decideTrain(
      promoted.state,
      {
        type: "hook-reported",
        step: 0,
        hook: "promote",
        ok: false,
        status: 500,
        detail: "HTTP 500: canary controller down",
      },
      at(2),
    );
    expect(failed.state.status).toBe("halted");
    expect(failed.state.steps.map((s) => s.phase)).toEqual(["failed", "pending", "pending"]);
    expect(failed.state.steps[0]?.failure).toContain("HTTP 500: canary controller down");
    expect(failed.state.attribution).toMatchObject({ kind: "step", step: 0 });
    expect(failed.events.map((e) => e.type)).toEqual(["governance.train-finished"]);
    expect(failed.actions.map((a) => a.kind)).toEqual(["propose-revert", "call-hook"]);
    expect(failed.actions[1]).toMatchObject({
      hook: "rollback",
      method: "PUT",
      url: "http://hooks.internal/rollback",
      idempotencyKey: "TRN-1-s1-rollback",
      body: { phase: "rollback", commit: "c0" },
    });
    const rolledBack = decideTrain(failed.state, hookOk(0, "rollback"), at(3));
    expect(rolledBack.changed).toBe(true);
    expect(rolledBack.state.status).toBe("halted");
    expect(rolledBack.state.steps[0]?.hooks?.map((h) => `${h.hook}:${h.outcome}`)).toEqual([
      "promote:failed",
      "rollback:ok",
    ]);
    expect(decideTrain(rolledBack.state, hookOk(0, "rollback"), at(4)).changed).toBe(false);
  });

  it("a failed guard of a canary step calls its rollback hook beside the revert", () => {
    let { state } = run(begin(), [
      [{ type: "step-promoted", step: 0, commit: "c0" }, at(1)],
      [hookOk(0, "promote"), at(1)],
      [{ type: "guard-elapsed", step: 0 }, at(11)],
    ]);
    const halted = decideTrain(
      state,
      { type: "checks-reported", step: 0, reports: [report(state, 0, badCheck())] },
      at(11),
    );
    state = halted.state;
    expect(state.status).toBe("halted");
    expect(halted.actions.map((a) => `${a.kind}${"hook" in a ? `:${a.hook}` : ""}`)).toEqual([
      "propose-revert",
      "call-hook:rollback",
    ]);
  });

  it("calls the blue_green cutover hook at promotion, and hands a manifest hook to the git actuator", () => {
    const { state } = run(begin(), [
      [{ type: "step-promoted", step: 0, commit: "c0" }, at(1)],
      [hookOk(0, "promote"), at(1)],
      [{ type: "guard-elapsed", step: 0 }, at(11)],
    ]);
    const checked = run(state, [
      [{ type: "checks-reported", step: 0, reports: [report(state, 0)] }, at(11)],
      [{ type: "step-promoted", step: 1, commit: "c1" }, at(12)],
    ]);
    expect(checked.state.steps[1]?.phase).toBe("hooking");
    expect(checked.actions.at(-1)).toMatchObject({
      kind: "call-hook",
      hook: "cutover",
      idempotencyKey: "TRN-1-s2-cutover",
      body: { phase: "cutover", step: 2, service: "cart" },
    });
    const third = run(checked.state, [
      [hookOk(1, "cutover"), at(12)],
      [{ type: "guard-elapsed", step: 1 }, at(17)],
      [{ type: "checks-reported", step: 1, reports: [report(checked.state, 1)] }, at(17)],
      [{ type: "step-promoted", step: 2, commit: "c2" }, at(18)],
    ]);
    // The manifest hook is a git change: the step waits for it before its guard window.
    expect(third.state.steps[2]?.phase).toBe("hooking");
    expect(third.actions.some((a) => a.kind === "call-hook" && a.step === 2)).toBe(false);
    expect(third.actions.at(-1)).toEqual({
      kind: "apply-manifest-hook",
      step: 2,
      service: "search",
      hook: "promote",
      actionId: "TRN-1-s3-promote",
      path: "envs/prod/search/rollout.yaml",
      patch: { w: 100 },
    });
    expect(third.state.steps[2]?.hooks).toMatchObject([
      {
        hook: "promote",
        kind: "manifest",
        outcome: "requested",
        target: "envs/prod/search/rollout.yaml",
        at: at(18),
      },
    ]);
    expect(decideTrain(third.state, { type: "guard-elapsed", step: 2 }, at(40)).changed).toBe(
      false,
    );
    const change = { branch: "safedeploy/TRN-1-s3-promote", commit: "h3", prUrl: null, diff: "+w" };
    const applied = decideTrain(
      third.state,
      { ...hookOk(2, "promote"), status: null, detail: "committed h3", change },
      at(19),
    );
    expect(applied.state.steps[2]).toMatchObject({ phase: "guarding", guardUntil: at(20) });
    expect(applied.state.steps[2]?.hooks).toEqual([
      {
        hook: "promote",
        kind: "manifest",
        target: "envs/prod/search/rollout.yaml",
        outcome: "ok",
        status: null,
        detail: "committed h3",
        at: at(19),
        change,
      },
    ]);
    expect(decideTrain(applied.state, hookOk(2, "promote"), at(19)).changed).toBe(false);
    expect(releaseManifest(applied.state).promoted[2]?.hooks[0]?.change).toEqual(change);
  });

  it("halts when a manifest hook cannot be applied, and ignores a report nobody asked for", () => {
    const manifestOnly = planTrain(
      trainDoc([{ service: "search", image: "registry.example.com/shop/search:v2" }]),
      hookServices,
    );
    if (!manifestOnly.ok) throw new Error("plan");
    const start = startTrain({ trainId: "TRN-2", plan: manifestOnly.plan, dryRun: false, now: t0 });
    const unasked = decideTrain(start.state, hookOk(0, "promote"), at(1));
    expect(unasked.changed).toBe(false);
    expect(unasked.ignored).toMatch(/was not requested/);
    const promoted = decideTrain(
      start.state,
      { type: "step-promoted", step: 0, commit: "c" },
      at(1),
    );
    const failed = decideTrain(
      promoted.state,
      {
        type: "hook-reported",
        step: 0,
        hook: "promote",
        ok: false,
        status: null,
        detail: "envs/prod/search/rollout.yaml: no workload",
      },
      at(2),
    );
    expect(failed.state.status).toBe("halted");
    expect(failed.state.steps[0]?.failure).toBe(
      "promote hook (a patch of envs/prod/search/rollout.yaml) failed: envs/prod/search/rollout.yaml: no workload",
    );
    expect(failed.state.steps[0]?.hooks?.map((h) => `${h.hook}:${h.outcome}`)).toEqual([
      "promote:failed",
    ]);
    expect(failed.actions.map((a) => a.kind)).toEqual(["propose-revert"]);
  });

  it("a dry run asks for a manifest hook's diff and records it as skipped", () => {
    const manifestOnly = planTrain(
      trainDoc([{ service: "search", image: "registry.example.com/shop/search:v2" }]),
      hookServices,
    );
    if (!manifestOnly.ok) throw new Error("plan");
    const start = startTrain({ trainId: "TRN-3", plan: manifestOnly.plan, dryRun: true, now: t0 });
    const promoted = decideTrain(
      start.state,
      { type: "step-promoted", step: 0, commit: "c" },
      at(1),
    );
    expect(promoted.actions.map((a) => a.kind)).toEqual(["apply-manifest-hook"]);
    expect(promoted.state.steps[0]?.hooks?.[0]?.detail).toMatch(/^dry run: patch w of /);
    const change = { branch: "safedeploy/TRN-3-s1-promote", commit: "d", prUrl: null, diff: "+w" };
    const shown = decideTrain(promoted.state, { ...hookOk(0, "promote"), change }, at(2));
    expect(shown.state.steps[0]?.phase).toBe("guarding");
    expect(shown.state.steps[0]?.hooks).toMatchObject([{ outcome: "skipped", change }]);
  });

  it("a dry run lists its hooks and calls none", () => {
    const { state, actions } = run(begin(true), [
      [{ type: "step-promoted", step: 0, commit: "c0" }, at(1)],
    ]);
    expect(state.steps[0]?.phase).toBe("guarding");
    expect(actions.map((a) => a.kind)).toEqual(["wait"]);
    expect(state.steps[0]?.hooks).toMatchObject([
      { hook: "promote", outcome: "skipped", target: "http://hooks.internal/promote" },
    ]);
    const halted = decideTrain(
      {
        ...state,
        steps: state.steps.map((s) => (s.index === 0 ? { ...s, phase: "checking" } : s)),
      },
      { type: "checks-reported", step: 0, reports: [report(state, 0, badCheck())] },
      at(11),
    );
    expect(halted.actions.map((a) => a.kind)).toEqual(["propose-revert"]);
    expect(halted.state.steps[0]?.hooks?.map((h) => `${h.hook}:${h.outcome}`)).toEqual([
      "promote:skipped",
      "rollback:skipped",
    ]);
  });

  it("calls each hook of a step at most once, whatever the events", () => {
    const planned = hookPlan();
    const hookEvent: fc.Arbitrary<TrainEvent> = fc.record({
      type: fc.constant("hook-reported" as const),
      step: fc.nat(2),
      hook: fc.constantFrom("promote" as const, "cutover" as const, "rollback" as const),
      ok: fc.boolean(),
      status: fc.constantFrom(200, 500, null),
      detail: fc.constant("x"),
    });
    const anyEvent: fc.Arbitrary<TrainEvent> = fc.oneof(
      hookEvent,
      fc.record({
        type: fc.constant("step-promoted" as const),
        step: fc.nat(2),
        commit: fc.constant("c"),
      }),
      fc.record({ type: fc.constant("guard-elapsed" as const), step: fc.nat(2) }),
      fc.record({ step: fc.nat(2), ok: fc.boolean() }).map(({ step, ok }) => ({
        type: "checks-reported" as const,
        step,
        reports: [
          {
            step,
            service: planned.steps[step]?.service ?? "?",
            checks: [ok ? okCheck() : badCheck()],
            regression: null,
          },
        ],
      })),
    );
    fc.assert(
      fc.property(fc.array(fc.tuple(anyEvent, fc.nat(2000)), { maxLength: 40 }), (events) => {
        let state = startTrain({ trainId: "p", plan: planned, dryRun: false, now: t0 }).state;
        const calls = new Set<string>();
        for (const [event, minute] of events) {
          const decision = decideTrain(state, event, at(minute));
          for (const action of decision.actions) {
            const key =
              action.kind === "call-hook"
                ? action.idempotencyKey
                : action.kind === "apply-manifest-hook"
                  ? action.actionId
                  : null;
            if (key === null) continue;
            expect(calls.has(key)).toBe(false);
            calls.add(key);
          }
          state = decision.state;
          for (const step of state.steps) {
            const names = (step.hooks ?? []).map((h) => h.hook);
            expect(new Set(names).size).toBe(names.length);
          }
        }
      }),
    );
  });
});

describe("deployedWhen", () => {
  const probe = {
    http: "http://email.internal/version",
    expect: { json: { "$.version": "v2" } },
    within: "10m",
  };
  const livePlan = (): TrainPlan => {
    const result = planTrain(
      trainDoc([
        { service: "email", image: "registry.example.com/email:v2", deployedWhen: probe },
        { service: "search", image: "registry.example.com/search:v2" },
      ]),
      services,
    );
    if (!result.ok) throw new Error(result.errors.map((e) => e.message).join("; "));
    return result.plan;
  };
  const begin = (dryRun = false) =>
    startTrain({ trainId: "TRN-D", plan: livePlan(), dryRun, now: t0 }).state;
  const probed = (ok: boolean): TrainEvent => ({
    type: "deploy-probed",
    step: 0,
    result: ok
      ? okCheck(probe.http)
      : {
          ...badCheck("fatal", probe.http),
          failures: [
            {
              expectation: "json $.version",
              expected: "v2",
              got: "v1",
              message: '$.version is "v1"',
            },
          ],
        },
  });

  it("probes again after 1 s, 2 s, 4 s, then every 5 s", () => {
    expect([1, 2, 3, 4, 10].map(deployProbeDelayMs)).toEqual([
      1_000,
      2_000,
      4_000,
      DEPLOY_PROBE_INTERVAL_MS,
      DEPLOY_PROBE_INTERVAL_MS,
    ]);
  });

  it("plans the probe as a fatal check with its deadline", () => {
    expect(livePlan().steps[0]?.deployedWhen).toEqual({
      check: {
        http: probe.http,
        expect: { status: 200, json: { "$.version": "v2" } },
        severity: "fatal",
      },
      within: "10m",
      withinMs: 600_000,
    });
    expect(livePlan().steps[1]?.deployedWhen).toBeNull();
  });

  it("waits until the change is live: that moment is the deploy time, then the guard window", () => {
    const promoted = decideTrain(begin(), { type: "step-promoted", step: 0, commit: "c0" }, at(1));
    expect(promoted.state.steps[0]).toMatchObject({
      phase: "deploying",
      commit: "c0",
      promotedAt: null,
      deployDeadline: at(11),
    });
    expect(promoted.actions).toEqual([
      {
        kind: "probe-deployed",
        step: 0,
        service: "email",
        check: livePlan().steps[0]?.deployedWhen?.check,
      },
    ]);
    // Not yet live: probe again in 5 s, nothing else happens.
    const notYet = decideTrain(promoted.state, probed(false), at(2));
    expect(notYet.state.steps[0]).toMatchObject({
      phase: "deploying",
      nextProbeAt: new Date(Date.parse(at(2)) + 1_000).toISOString(),
      deployProbesFailed: 1,
    });
    expect(notYet.actions).toEqual([]);
    expect(decideTrain(notYet.state, { type: "deploy-probe-due", step: 0 }, at(2)).changed).toBe(
      false,
    );
    const due = decideTrain(notYet.state, { type: "deploy-probe-due", step: 0 }, at(3));
    expect(due.actions.map((a) => a.kind)).toEqual(["probe-deployed"]);
    expect(due.state.steps[0]?.nextProbeAt).toBeNull();
    // Guard windows and checks wait for the deploy.
    expect(decideTrain(due.state, { type: "guard-elapsed", step: 0 }, at(30)).changed).toBe(false);
    const live = decideTrain(due.state, probed(true), at(4));
    expect(live.state.steps[0]).toMatchObject({
      phase: "guarding",
      promotedAt: at(4),
      guardUntil: at(14),
    });
    expect(live.events.map((e) => (e.data as { phase: string }).phase)).toEqual([
      "deployed",
      "guarding",
    ]);
    expect(releaseManifest(live.state).promoted[0]?.promotedAt).toBe(at(4));
    expect(decideTrain(live.state, probed(true), at(5)).changed).toBe(false);
  });

  it("halts with a revert of the step when the change is not live by its deadline", () => {
    const { state } = run(begin(), [
      [{ type: "step-promoted", step: 0, commit: "c0" }, at(1)],
      [probed(false), at(2)],
      [{ type: "deploy-probe-due", step: 0 }, at(11)],
    ]);
    const late = decideTrain(state, probed(false), at(11));
    expect(late.state.status).toBe("halted");
    expect(late.state.steps.map((s) => s.phase)).toEqual(["failed", "pending"]);
    expect(late.state.steps[0]?.failure).toBe(
      'not deployed within 10m: GET http://email.internal/version: $.version is "v1"',
    );
    expect(late.actions).toMatchObject([
      { kind: "propose-revert", step: 0, service: "email", commit: "c0" },
    ]);
  });

  it("a dry run does not wait: nothing it computes is ever deployed", () => {
    const promoted = decideTrain(
      begin(true),
      { type: "step-promoted", step: 0, commit: "c0" },
      at(1),
    );
    expect(promoted.state.steps[0]).toMatchObject({ phase: "guarding", promotedAt: at(1) });
    expect(promoted.actions.map((a) => a.kind)).toEqual(["wait"]);
  });
});

describe("a step already in place", () => {
  const plan = (): TrainPlan => {
    const result = planTrain(fourSteps, services);
    if (!result.ok) throw new Error(result.errors.map((e) => e.message).join("; "));
    return result.plan;
  };
  const begin = () => startTrain({ trainId: "TRN-P", plan: plan(), dryRun: false, now: t0 }).state;
  const reason = "Deployment/checkout already runs registry.example.com/shop/checkout:v1.6.0";
  const inPlace: TrainEvent = { type: "step-in-place", step: 0, reason };

  it("is guarded and checked like a promotion, with no commit", () => {
    const landed = decideTrain(begin(), inPlace, at(1));
    expect(landed.state.steps[0]).toMatchObject({
      phase: "guarding",
      commit: null,
      promotedAt: at(1),
      inPlace: reason,
    });
    expect(landed.events[0]?.data).toMatchObject({
      phase: "promoted",
      commit: null,
      details: { inPlace: expect.stringContaining("already runs") as string },
    });
    expect(decideTrain(landed.state, inPlace, at(2)).changed).toBe(false);
  });

  it("failing its checks needs triage: the train has nothing of its own to revert there", () => {
    const { state } = run(begin(), [
      [inPlace, at(1)],
      [{ type: "guard-elapsed", step: 0 }, at(11)],
    ]);
    const failed = decideTrain(
      state,
      { type: "checks-reported", step: 0, reports: [report(state, 0, badCheck())] },
      at(11),
    );
    expect(failed.state.status).toBe("needs-triage");
    expect(failed.actions.map((a) => a.kind)).toEqual(["manual-triage"]);
    expect(failed.actions[0]).toMatchObject({
      reason: expect.stringMatching(/already in place before this train/) as string,
    });
  });
});
