import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { authorizeAction, authorizingProposalId } from "@safedeploy/core";
import type { Proposal, RequestedAction } from "@safedeploy/core";
import type { ProposalState } from "@safedeploy/schema";

const at = "2026-12-07T09:00:00.000Z";
const revert = { action: "git-revert", path: "envs/prod/checkout" } as const;
const approval = (by: string) => ({ by, at, reason: "checked" });

function proposal(overrides: Partial<Proposal> = {}): Proposal {
  return {
    id: "PRP-1",
    key: "INC-1:rollback-rollout",
    service: "checkout",
    incidentId: "INC-1",
    kind: "rollback-rollout",
    state: "approved",
    createdAt: at,
    causeId: "cause",
    summary: "roll back checkout",
    plan: revert,
    approvals: [approval("ana")],
    required: 1,
    ...overrides,
  };
}

const request = (overrides: Partial<RequestedAction> = {}): RequestedAction => ({
  proposalId: "PRP-1",
  service: "checkout",
  kind: "rollback-rollout",
  plan: revert,
  ...overrides,
});

describe("authorizingProposalId", () => {
  it("is a train hook's step promotion, and any other id itself", () => {
    expect(authorizingProposalId("TRN-01AB-s2-cutover")).toBe("TRN-01AB-s2");
    expect(authorizingProposalId("TRN-01AB-s2")).toBe("TRN-01AB-s2");
    expect(authorizingProposalId("PRP-1")).toBe("PRP-1");
    expect(authorizingProposalId("TRN-01AB-s2-other")).toBe("TRN-01AB-s2-other");
  });
});

describe("authorizeAction", () => {
  it("acts for an approved proposal with enough distinct approvers and the very plan", () => {
    expect(authorizeAction(request(), proposal())).toEqual({ decision: "act" });
  });

  it("skips an executed proposal: its change was made", () => {
    expect(authorizeAction(request(), proposal({ state: "executed" }))).toEqual({
      decision: "skip",
      reason: "PRP-1 was executed already",
    });
  });

  it("refuses, naming why: no proposal, another service or kind, not approved, too few people, another plan", () => {
    const refusal = (p: Proposal | null, r = request()) => {
      const answer = authorizeAction(r, p);
      return answer.decision === "refuse" ? [answer.code, answer.reason] : answer.decision;
    };
    expect(refusal(null)).toEqual(["no-proposal", "PRP-1: no proposal PRP-1 to authorise it"]);
    expect(refusal(proposal({ id: "PRP-2" }))[0]).toBe("no-proposal");
    expect(refusal(proposal({ service: "payments" }))).toEqual([
      "mismatch",
      "PRP-1: asked as rollback-rollout of checkout, proposal PRP-1 is rollback-rollout of payments",
    ]);
    expect(refusal(proposal({ kind: "promote-canary" }))[0]).toBe("mismatch");
    expect(refusal(proposal({ state: "pending", approvals: [] }))).toEqual([
      "not-approved",
      "PRP-1: proposal PRP-1 is pending, not approved",
    ]);
    const twiceByAna = [approval("ana"), { ...approval("ana"), reason: "again" }];
    expect(refusal(proposal({ required: 2, approvals: twiceByAna }))).toEqual([
      "too-few-approvers",
      "PRP-1: proposal PRP-1 has 1 distinct approver(s) of 2 required",
    ]);
    expect(
      refusal(proposal(), request({ plan: { ...revert, path: "envs/prod/payments" } })),
    ).toEqual(["mismatch", "PRP-1: the plan asked for is not the plan of proposal PRP-1"]);
  });

  it("compares plans by content, not by key order", () => {
    const plan = {
      action: "set-canary-weight",
      path: "envs/prod/checkout",
      from: 10,
      to: 50,
    } as const;
    const reordered = {
      to: 50,
      from: 10,
      path: "envs/prod/checkout",
      action: "set-canary-weight",
    } as const;
    expect(
      authorizeAction(
        request({ kind: "promote-canary", plan: reordered }),
        proposal({ kind: "promote-canary", plan }),
      ),
    ).toEqual({ decision: "act" });
  });

  it("lets a train's hook run within its step's approved or executed promotion, never a pending one", () => {
    const promotion = (state: ProposalState) =>
      proposal({ id: "TRN-7-s1", kind: "promote-release", state, incidentId: null });
    const hook = request({
      proposalId: "TRN-7-s1-promote",
      kind: "promote-release",
      plan: { action: "patch-manifest", path: "envs/prod/checkout", patch: { spec: {} } },
    });
    expect(authorizeAction(hook, promotion("approved")).decision).toBe("act");
    expect(authorizeAction(hook, promotion("executed")).decision).toBe("act");
    expect(authorizeAction(hook, promotion("pending"))).toMatchObject({
      decision: "refuse",
      code: "not-approved",
    });
  });

  it("never acts unless the proposal is approved by at least `required` distinct people", () => {
    const states: ProposalState[] = [
      "pending",
      "approved",
      "rejected",
      "executed",
      "needs-triage",
      "superseded",
    ];
    fc.assert(
      fc.property(
        fc.constantFrom(...states),
        fc.array(fc.constantFrom("ana", "bo", "cy"), { maxLength: 5 }),
        fc.integer({ min: 1, max: 3 }),
        fc.boolean(),
        (state, by, required, samePlan) => {
          const p = proposal({ state, approvals: by.map(approval), required });
          const plan = samePlan ? revert : { ...revert, path: "envs/prod/other" };
          const answer = authorizeAction(request({ plan }), p);
          const approvedEnough = state === "approved" && new Set(by).size >= required;
          if (answer.decision === "act") expect(approvedEnough && samePlan).toBe(true);
          if (approvedEnough && samePlan) expect(answer.decision).toBe("act");
          if (state === "executed") expect(answer.decision).toBe("skip");
        },
      ),
    );
  });
});
