import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ReleaseTrainDocument } from "@safedeploy/schema";
import {
  GUARD_EVIDENCE_LINES,
  GUARD_REASON_CHARS,
  TRAIN_RETENTION,
  decideClaim,
  decideTrain,
  decisionEvent,
  dueTrainEvent,
  effectOf,
  hookReport,
  isTrainActive,
  newestTrains,
  startTrain,
  trainsToForget,
  verdictOfGateView,
} from "@safedeploy/core";
import type {
  ActuatorReport,
  CheckResult,
  PromotionDecision,
  TrainAction,
  TrainEffect,
  TrainEvent,
  TrainInbox,
  TrainListing,
  TrainPlan,
  TrainState,
} from "@safedeploy/core";
import { serviceDocument, validPlan } from "./release-fixtures.js";

/* What the release-train shell asks of core: what is due, what each decided action does. */

const service = serviceDocument;

const services = [
  service("checkout", {
    deployment: {
      strategy: "canary",
      canary: {
        steps: [10, 100],
        bakeTime: "1m",
        promoteHook: { http: { url: "http://hooks.internal/promote" } },
        rollbackHook: { http: { url: "http://hooks.internal/rollback", method: "PUT" } },
      },
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
  service("email"),
];

const doc = ReleaseTrainDocument.parse({
  apiVersion: "safedeploy.dev/v1",
  kind: "ReleaseTrain",
  metadata: { name: "train-7" },
  spec: {
    steps: [
      { service: "checkout", image: "registry.example.com/checkout:v2", guardWindow: "1m" },
      { service: "search", image: "registry.example.com/search:v2", guardWindow: "1m" },
      { service: "email", patch: { replicas: 3 }, guardWindow: "1m" },
    ],
    finalChecks: [{ http: "http://shop.internal/healthz" }],
    followUps: ["10m"],
  },
});

const plan = (): TrainPlan => validPlan(doc, services);

const t0 = "2026-12-07T09:00:00.000Z";
const at = (seconds: number) => new Date(Date.parse(t0) + seconds * 1_000).toISOString();
const ok: CheckResult = {
  url: "http://x/",
  severity: "fatal",
  outcome: "ok",
  failures: [],
  status: 200,
  latencyMs: 1,
};
const bad: CheckResult = { ...ok, outcome: "fatal", failures: [] };

const completed = (
  when: string,
  commit = "c0ffee0000000000",
  dryRun = false,
): Extract<ActuatorReport, { kind: "completed" }> => ({
  kind: "completed",
  at: when,
  branch: "safedeploy/x",
  commit,
  prUrl: null,
  diff: "+x",
  dryRun,
});

interface Shell {
  inbox: TrainInbox;
  pending: TrainAction[];
  effects: TrainEffect[];
}

/** What a faithful, deciding-nothing shell gives back for one effect (all healthy, or not). */
function answer(
  shell: Shell,
  effect: TrainEffect,
  now: string,
  failing: boolean,
): TrainEvent | null {
  const { state } = shell.inbox;
  switch (effect.kind) {
    case "request-change": {
      const report = completed(now, "c0ffee0000000000", effect.type.startsWith("governance.p"));
      if (effect.plan.action === "patch-manifest" && effect.plan.hook !== undefined) {
        shell.inbox = {
          ...shell.inbox,
          hookOutcomes: { ...shell.inbox.hookOutcomes, [effect.proposalId]: report },
        };
      } else {
        const step = state.steps.find(
          (s) => `${state.trainId}-s${s.index + 1}` === effect.proposalId,
        );
        shell.inbox = {
          ...shell.inbox,
          promotions: { ...shell.inbox.promotions, [String(step?.index)]: report },
        };
      }
      return null;
    }
    case "ask-gate":
      return {
        type: "gate-answered",
        step: effect.step,
        verdict: "pass",
        reasons: [],
        evidenceAge: 1,
      };
    case "request-approval":
      return {
        type: "approval-answered",
        step: effect.step,
        state: "approved",
        required: 1,
        approvals: [{ by: "alice", at: now }],
      };
    case "probe-deployed":
      return { type: "deploy-probed", step: effect.step, result: ok };
    case "run-checks":
      return {
        type: "checks-reported",
        step: effect.step,
        reports: effect.targets.map((t) => ({
          step: t.step,
          service: t.service,
          checks: [failing && t.step === effect.step ? bad : ok],
          regression: null,
        })),
      };
    case "run-final-checks":
      return { type: "final-checks-reported", checks: [ok], reports: [] };
    case "run-follow-up":
      return { type: "follow-up-reported", index: effect.index, checks: [ok], reports: [] };
    case "call-hook":
      return {
        type: "hook-reported",
        step: effect.step,
        hook: effect.hook,
        ok: true,
        status: 200,
        detail: "HTTP 200",
      };
    default:
      return null;
  }
}

/** Runs a train as the shell does: actions first, then what is due, until nothing is left. */
function drive(dryRun: boolean, failAt: number | null = null): Shell {
  const started = startTrain({ trainId: "TRN-AB", plan: plan(), dryRun, now: t0 });
  const shell: Shell = {
    inbox: { state: started.state, promotions: {}, hookOutcomes: {}, decisions: {} },
    pending: [...started.actions],
    effects: [],
  };
  const apply = (event: TrainEvent, now: string) => {
    const decision = decideTrain(shell.inbox.state, event, now);
    shell.inbox = { ...shell.inbox, state: decision.state };
    shell.pending.push(...decision.actions);
  };
  for (let clock = 0; clock < 2_000; clock += 5) {
    const now = at(clock);
    for (let action = shell.pending.shift(); action !== undefined; action = shell.pending.shift()) {
      const effect = effectOf(shell.inbox.state, action, now);
      if (effect === null) continue;
      shell.effects.push(effect);
      const failing = failAt !== null && "step" in effect && effect.step === failAt;
      const event = answer(shell, effect, now, failing);
      if (event !== null) apply(event, now);
    }
    for (
      let due = dueTrainEvent(shell.inbox, now);
      due !== null;
      due = dueTrainEvent(shell.inbox, now)
    ) {
      const before = shell.inbox.state;
      apply(due.event, due.at);
      if (shell.inbox.state === before) break;
    }
    if (!isTrainActive({ state: shell.inbox.state, outbox: [], pending: shell.pending })) break;
  }
  return shell;
}

describe("the shell's decisions, in core", () => {
  it("runs a train to completion with only what core decides, follow-up included", () => {
    const shell = drive(false);
    const { state } = shell.inbox;
    expect(state.status).toBe("completed");
    expect(state.steps.map((s) => s.phase)).toEqual(["checked", "checked", "checked"]);
    expect(state.followUps.map((f) => f.phase)).toEqual(["passed"]);
    const changes = shell.effects.filter((e) => e.kind === "request-change");
    expect(changes.map((e) => [e.type, e.proposalId])).toEqual([
      ["governance.action-requested", "TRN-AB-s1"],
      ["governance.action-requested", "TRN-AB-s2"],
      ["governance.action-requested", "TRN-AB-s2-promote"],
      ["governance.action-requested", "TRN-AB-s3"],
    ]);
    expect(shell.effects.filter((e) => e.kind === "call-hook").map((e) => e.hook)).toEqual([
      "promote",
    ]);
    expect(isTrainActive({ state, outbox: [], pending: [] })).toBe(false);
  });

  it("a dry run asks previews only and never a proposal, a guard, a revert or an http hook", () => {
    const shell = drive(true, 0);
    const kinds = new Set(shell.effects.map((e) => e.kind));
    for (const never of ["request-approval", "fail-guard", "propose-revert", "call-hook"] as const)
      expect(kinds.has(never)).toBe(false);
    for (const effect of shell.effects) {
      if (effect.kind === "request-change")
        expect(effect.type).toBe("governance.preview-requested");
    }
    expect(shell.inbox.state.status).toBe("halted");
  });

  it("a failed step fails its guard (worded within its limits) and proposes its revert", () => {
    const shell = drive(false, 0);
    expect(shell.inbox.state.status).toBe("halted");
    const guard = shell.effects.find((e) => e.kind === "fail-guard");
    expect(guard).toMatchObject({
      train: "train-7",
      trainId: "TRN-AB",
      step: 0,
      service: "checkout",
    });
    const revert = shell.effects.find((e) => e.kind === "propose-revert");
    expect(revert).toMatchObject({
      causeId: "TRN-AB:step-1",
      path: "envs/prod/checkout",
      reason: expect.stringMatching(/^release train train-7, step 1: /) as string,
    });
    expect(shell.effects.filter((e) => e.kind === "call-hook").map((e) => e.hook)).toEqual([
      "promote",
      "rollback",
    ]);
  });

  it("clips a guard's reason and evidence to guard.fail's limits", () => {
    const state = drive(false).inbox.state;
    const long = "x".repeat(GUARD_REASON_CHARS + 50);
    const effect = effectOf(
      state,
      {
        kind: "fail-guard",
        step: 0,
        service: "checkout",
        reason: long,
        evidence: [
          `step 1 checkout: ${long}`,
          ...Array.from({ length: 150 }, (_, i) => `line ${i}`),
        ],
        at: t0,
      },
      t0,
    );
    if (effect?.kind !== "fail-guard") throw new Error("expected fail-guard");
    expect(effect.reason).toHaveLength(GUARD_REASON_CHARS);
    expect(effect.reason.endsWith("…")).toBe(true);
    expect(effect.evidence).toHaveLength(GUARD_EVIDENCE_LINES);
    expect(effect.evidence[0]).toHaveLength(GUARD_REASON_CHARS);
  });

  it("never calls a hook again once its outcome is recorded, nor applies a manifest hook twice; timers need nothing", () => {
    const state = drive(false).inbox.state;
    const call: TrainAction = {
      kind: "call-hook",
      step: 0,
      service: "checkout",
      hook: "promote",
      url: "http://hooks.internal/promote",
      method: "POST",
      headers: {},
      idempotencyKey: "TRN-AB-s1-promote",
      body: {
        train: "train-7",
        trainId: "TRN-AB",
        step: 0,
        service: "checkout",
        change: { kind: "image", image: "x", path: "p" },
        commit: null,
        phase: "promote",
      },
    };
    expect(effectOf(state, call, t0)).toBeNull();
    expect(effectOf(state, { ...call, hook: "rollback" }, t0)).toMatchObject({ kind: "call-hook" });
    const manifest: TrainAction = {
      kind: "apply-manifest-hook",
      step: 1,
      service: "search",
      hook: "promote",
      actionId: "TRN-AB-s2-promote",
      path: "envs/prod/search/rollout.yaml",
      patch: { w: 100 },
    };
    expect(effectOf(state, manifest, t0)).toBeNull();
    expect(effectOf(state, { kind: "wait", step: 0, until: t0 }, t0)).toBeNull();
    expect(effectOf(state, { kind: "schedule-follow-up", index: 0, dueAt: t0 }, t0)).toBeNull();
  });

  it("is deterministic: the same train driven twice decides the same effects (property)", () => {
    fc.assert(
      fc.property(fc.boolean(), fc.option(fc.nat(2), { nil: null }), (dryRun, failAt) => {
        expect(drive(dryRun, failAt).effects).toEqual(drive(dryRun, failAt).effects);
      }),
      { numRuns: 20 },
    );
  });
});

describe("what is due", () => {
  const state = (): TrainState =>
    startTrain({ trainId: "TRN-AB", plan: plan(), dryRun: false, now: t0 }).state;
  const promoting = (): TrainState => {
    let s = state();
    s = decideTrain(
      s,
      { type: "gate-answered", step: 0, verdict: "pass", reasons: [], evidenceAge: 1 },
      t0,
    ).state;
    return decideTrain(
      s,
      {
        type: "approval-answered",
        step: 0,
        state: "approved",
        required: 1,
        approvals: [{ by: "alice", at: t0 }],
      },
      at(10),
    ).state;
  };
  const inbox = (s: TrainState, extra: Partial<TrainInbox> = {}): TrainInbox => ({
    state: s,
    promotions: {},
    hookOutcomes: {},
    decisions: {},
    ...extra,
  });

  it("nothing before its report or its time", () => {
    expect(dueTrainEvent(inbox(state()), at(1))).toBeNull();
    expect(dueTrainEvent(inbox(promoting()), at(20))).toBeNull();
  });

  it("a promotion's deploy time is the actuator's, never before the request", () => {
    const s = promoting();
    expect(dueTrainEvent(inbox(s, { promotions: { "0": completed(at(15)) } }), at(20))).toEqual({
      event: { type: "step-promoted", step: 0, commit: "c0ffee0000000000" },
      at: at(15),
    });
    expect(dueTrainEvent(inbox(s, { promotions: { "0": completed(at(5)) } }), at(20))?.at).toBe(
      at(20),
    );
    const failed: ActuatorReport = { kind: "failed", at: at(15), reason: "no" };
    expect(dueTrainEvent(inbox(s, { promotions: { "0": failed } }), at(20))?.event).toEqual({
      type: "step-failed",
      step: 0,
      reason: "no",
    });
    expect(
      dueTrainEvent(inbox(s, { promotions: { "0": { ...failed, unchanged: true } } }), at(20))
        ?.event,
    ).toEqual({ type: "step-in-place", step: 0, reason: "no" });
  });

  it("a manifest hook's report: committed, already in place, failed, or a dry run's diff", () => {
    expect(hookReport(1, "promote", completed(t0, "abcdef0123456789"))).toMatchObject({
      ok: true,
      detail: "committed abcdef012345 on safedeploy/x",
      change: { commit: "abcdef0123456789" },
    });
    expect(
      hookReport(1, "promote", { ...completed(t0), prUrl: "https://pr/1", dryRun: true }),
    ).toMatchObject({
      detail: "dry run: would commit c0ffee000000 on safedeploy/x (https://pr/1); nothing pushed",
    });
    expect(hookReport(1, "promote", { kind: "failed", at: t0, reason: "same" })).toMatchObject({
      ok: false,
      detail: "same",
    });
    expect(
      hookReport(1, "promote", { kind: "failed", at: t0, reason: "same", unchanged: true }),
    ).toMatchObject({ ok: true, detail: "already in place: same" });
  });

  it("people's decisions: a rejection first, then the completing approval, then a new approver", () => {
    const step = { ...state().steps[0]!, approval: null };
    const approved = (by: string, done: boolean): PromotionDecision => ({
      kind: "approved",
      by,
      at: t0,
      reason: "ok",
      required: 2,
      approved: done,
    });
    const rejected: PromotionDecision = { kind: "rejected", by: "carol", at: t0, reason: "no" };
    expect(decisionEvent(step, [approved("bob", false), rejected])).toMatchObject({
      type: "promotion-rejected",
      by: "carol",
    });
    expect(decisionEvent(step, [approved("bob", false), approved("dan", true)])).toMatchObject({
      type: "promotion-approved",
      by: "dan",
      approved: true,
    });
    expect(decisionEvent(step, [approved("bob", false)])).toMatchObject({ by: "bob" });
    const counted = {
      ...step,
      approval: {
        proposalId: "p",
        state: "pending" as const,
        required: 2,
        approvals: [{ by: "bob", at: t0 }],
      },
    };
    expect(decisionEvent(counted, [approved("bob", false)])).toBeNull();
  });

  it("a deploy probe when its time came; the gate's verdict fails closed", () => {
    const s = state();
    const deploying = {
      ...s,
      steps: s.steps.map((step, i) =>
        i === 0 ? { ...step, phase: "deploying" as const, nextProbeAt: at(30) } : step,
      ),
    };
    expect(dueTrainEvent(inbox(deploying), at(29))).toBeNull();
    expect(dueTrainEvent(inbox(deploying), at(30))).toEqual({
      event: { type: "deploy-probe-due", step: 0 },
      at: at(30),
    });
    const unscheduled = {
      ...deploying,
      steps: deploying.steps.map((step) => ({ ...step, nextProbeAt: null })),
    };
    expect(dueTrainEvent(inbox(unscheduled), at(99))).toBeNull();
    expect(verdictOfGateView({ verdict: "pass", allowed: false })).toBe("block");
    expect(verdictOfGateView({ verdict: "pass", allowed: true })).toBe("pass");
    expect(verdictOfGateView({ verdict: "unknown", allowed: false })).toBe("unknown");
  });

  it("a train with work left is active; a dry run has no follow-ups to wait for", () => {
    const s = state();
    expect(isTrainActive({ state: s, outbox: [], pending: [] })).toBe(true);
    const done = { ...s, status: "completed" as const };
    expect(isTrainActive({ state: done, outbox: [{}], pending: [] })).toBe(true);
    expect(isTrainActive({ state: done, outbox: [], pending: [{}] })).toBe(true);
    const scheduled = {
      ...done,
      followUps: [
        {
          index: 0,
          after: "1m",
          dueAt: t0,
          phase: "scheduled" as const,
          at: null,
          attribution: null,
        },
      ],
    };
    expect(isTrainActive({ state: scheduled, outbox: [], pending: [] })).toBe(true);
    expect(
      isTrainActive({
        state: { ...scheduled, dryRun: true },
        outbox: [],
        pending: [],
      }),
    ).toBe(false);
  });
});

describe("one running train per name, and retention", () => {
  it("claims a free name or a stale claim; anything else is a conflict", () => {
    const base = { name: "t", trainId: "TRN-2", now: t0 };
    expect(decideClaim({ ...base, current: null, staleId: null })).toEqual({
      kind: "claim",
      claim: { trainId: "TRN-2", at: t0 },
    });
    const current = { trainId: "TRN-1", at: t0 };
    expect(decideClaim({ ...base, current, staleId: "TRN-1" }).kind).toBe("claim");
    expect(decideClaim({ ...base, current, staleId: null })).toEqual({
      kind: "conflict",
      runningId: "TRN-1",
      message: "train t is already running as TRN-1",
    });
    // Another replica claimed it between the read and the write: deciding again, a conflict.
    expect(
      decideClaim({ ...base, current: { trainId: "TRN-3", at: t0 }, staleId: "TRN-1" }).kind,
    ).toBe("conflict");
  });

  it("drops finished trains beyond the newest kept or too old, never an active one (property)", () => {
    const listing = fc.record({
      id: fc.uuid(),
      name: fc.constant("t"),
      createdAt: fc.integer({ min: 0, max: 60 * 86_400 }).map((s) => at(-s)),
      active: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.uniqueArray(listing, { selector: (l) => l.id, maxLength: 40 }),
        fc.nat(10),
        (listings: TrainListing[], keep) => {
          const retention = { keepFinished: keep, maxAgeMs: TRAIN_RETENTION.maxAgeMs };
          const dropped = new Set(trainsToForget(listings, t0, retention));
          for (const l of listings) {
            if (l.active) expect(dropped.has(l.id)).toBe(false);
            if (!l.active && Date.parse(t0) - Date.parse(l.createdAt) > retention.maxAgeMs)
              expect(dropped.has(l.id)).toBe(true);
          }
          expect(
            listings.filter((l) => !l.active && !dropped.has(l.id)).length,
          ).toBeLessThanOrEqual(keep);
        },
      ),
    );
    expect(trainsToForget([], t0)).toEqual([]);
  });

  it("lists the newest first", () => {
    const l = (id: string, s: number): TrainListing => ({
      id,
      name: "t",
      createdAt: at(s),
      active: false,
    });
    expect(newestTrains([l("a", 1), l("b", 3), l("c", 2), l("d", 2)], 3).map((x) => x.id)).toEqual([
      "b",
      "c",
      "d",
    ]);
  });
});
