// @ts-check
// The Release trains card: the most recent trains with their steps (phase, outcome, commit,
// guard countdown, approvals and gate), guard evidence, revert, triage and follow-ups.
/* global document, HTMLElement */
import { ApiRefusal } from "./api.js";
import { diffView, fillCard, h, time } from "./dom.js";
import { proposalAnchor } from "./proposals.js";

/** @typedef {import("@safedeploy/schema").FollowUpView} FollowUpView */
/** @typedef {import("@safedeploy/schema").TrainStepView} TrainStepView */
/** @typedef {import("@safedeploy/schema").TrainView} TrainView */
/** @typedef {import("./api.js").Api} Api */

const RECENT_TRAINS = 20;

/** @param {string | null} sha */
const shortSha = (sha) => (typeof sha === "string" ? sha.slice(0, 7) : null);

/**
 * "in 1m 05s" / "5s ago" from a duration in milliseconds.
 * @param {number} ms
 */
function spanText(ms) {
  const seconds = Math.round(Math.abs(ms) / 1000);
  const text =
    seconds < 60
      ? `${seconds}s`
      : `${Math.floor(seconds / 60)}m ${String(seconds % 60).padStart(2, "0")}s`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

/**
 * The text of a guard window's countdown at `now`.
 * @param {string} until
 * @param {number} [now]
 */
function guardText(until, now = Date.now()) {
  const left = new Date(until).getTime() - now;
  if (Number.isNaN(left)) return `guard until ${until}`;
  return left > 0 ? `guard window ends ${spanText(left)}` : "guard window over, checking…";
}

/** @type {number | undefined} */
let guardTimer;

/** Ticks every guard countdown on the page once a second while there is one. */
function tickGuards() {
  const clocks = document.querySelectorAll("[data-guard-until]");
  for (const clock of clocks) {
    if (clock instanceof HTMLElement) clock.textContent = guardText(clock.dataset.guardUntil ?? "");
  }
  if (clocks.length === 0) {
    clearInterval(guardTimer);
    guardTimer = undefined;
  } else if (guardTimer === undefined) {
    guardTimer = setInterval(tickGuards, 1000);
  }
}

/**
 * One piece of a step's evidence (strategy hook, health check, regression, gate) as a line of
 * text. A hook reads as what ran and what came of it; a manifest hook's diff is left to the CLI.
 * @param {unknown} item
 */
function evidenceText(item) {
  if (item === null || typeof item !== "object") return String(item);
  /** @type {Record<string, unknown>} */
  const evidence = { ...item };
  if (evidence.type === "hook") {
    const { hook, kind, target, outcome, status, detail } = evidence;
    const code = status === null || status === undefined ? "" : ` ${status}`;
    return `${hook} hook (${kind} ${target}): ${outcome}${code}, ${detail}`;
  }
  const { type, ...rest } = evidence;
  const fields = Object.entries(rest)
    .map(([key, value]) => `${key}=${typeof value === "object" ? JSON.stringify(value) : value}`)
    .join(", ");
  return `${type ?? "evidence"}: ${fields}`;
}

/** @param {TrainStepView} step */
function stepLine(step) {
  const guardUntil = step.phase === "guarding" ? step.guardUntil : null;
  return h(
    "div",
    { class: "step-line" },
    h("strong", { class: "step-service", "data-testid": "step-service", text: step.service }),
    h("code", { class: "step-change", "data-testid": "step-change", text: step.change }),
    h("span", {
      class: `badge phase-${step.phase}`,
      "data-testid": "step-phase",
      text: step.phase,
    }),
    step.outcome
      ? h("span", {
          class: `badge outcome-${step.outcome}`,
          "data-testid": "step-outcome",
          text: step.outcome,
        })
      : null,
    step.commit
      ? h(
          "span",
          { class: "meta" },
          "commit ",
          h("code", {
            "data-testid": "step-commit",
            "data-commit": step.commit,
            title: step.commit,
            text: shortSha(step.commit),
          }),
        )
      : null,
    step.deployedAt
      ? h(
          "span",
          { class: "meta" },
          "deployed ",
          h("time", { datetime: step.deployedAt, text: time(step.deployedAt) }),
        )
      : null,
    typeof guardUntil === "string"
      ? h("span", {
          class: "guard",
          "data-testid": "step-guard",
          "data-guard-until": guardUntil,
          title: `guard window until ${time(guardUntil)}`,
          text: guardText(guardUntil),
        })
      : null,
  );
}

/** @param {NonNullable<TrainStepView["approval"]>} approval */
function approvalText(approval) {
  const who = approval.approvals.join(", ") || "none";
  return `waiting for approvals: ${approval.approvals.length} of ${approval.required} (${who}); approve proposal ${approval.proposalId} under Proposals or with safedeploy proposals approve ${approval.proposalId}`;
}

/** @param {TrainStepView} step */
function trainStep(step) {
  return h(
    "li",
    {
      class: "step",
      "data-testid": "train-step",
      "data-index": step.index,
      "data-service": step.service,
      "data-phase": step.phase,
      "data-outcome": step.outcome ?? "none",
      "aria-label": `Step ${step.index + 1}: ${step.service}, ${step.phase}${step.outcome ? `, ${step.outcome}` : ""}`,
    },
    stepLine(step),
    step.phase === "awaiting-approval" && step.approval
      ? h("p", { class: "meta", "data-testid": "step-approval", text: approvalText(step.approval) })
      : null,
    step.gate && step.gate.verdict !== "pass"
      ? h(
          "div",
          { class: "error", "data-testid": "step-gate" },
          `gate ${step.gate.verdict}: `,
          h(
            "ul",
            { class: "reasons" },
            step.gate.reasons.map((r) => h("li", {}, h("code", { text: r.code }), ` ${r.message}`)),
          ),
        )
      : null,
    step.evidence.length > 0
      ? h(
          "details",
          { class: "evidence" },
          h("summary", { text: `Guard evidence (${step.evidence.length})` }),
          h(
            "ul",
            { "data-testid": "step-evidence" },
            step.evidence.map((item) => h("li", { text: evidenceText(item) })),
          ),
        )
      : null,
    step.diff
      ? h("details", {}, h("summary", { text: "Promotion diff" }), diffView(step.diff))
      : null,
  );
}

/**
 * @param {FollowUpView} followUp
 * @param {TrainView} train
 */
function followUpItem(followUp, train) {
  const step = followUp.attributedStep === null ? null : train.steps[followUp.attributedStep];
  return h(
    "li",
    { "data-testid": "follow-up", "data-after": followUp.after, "data-phase": followUp.phase },
    h("span", { text: `after ${followUp.after}` }),
    h(
      "span",
      { class: "meta" },
      "due ",
      h("time", { datetime: followUp.dueAt, text: time(followUp.dueAt) }),
    ),
    h("span", {
      class: `badge follow-up-${followUp.phase}`,
      "data-testid": "follow-up-phase",
      text: followUp.phase,
    }),
    followUp.at
      ? h(
          "span",
          { class: "meta" },
          "at ",
          h("time", { datetime: followUp.at, text: time(followUp.at) }),
        )
      : null,
    followUp.attributedStep !== null
      ? h("span", {
          "data-testid": "follow-up-attributed",
          text: `attributed to step ${followUp.attributedStep + 1}${step ? ` (${step.service})` : ""}`,
        })
      : null,
  );
}

/** @param {NonNullable<TrainView["revert"]>} revert */
function revertLine(revert) {
  return h(
    "p",
    { class: "revert", "data-testid": "train-revert" },
    `Revert of step ${revert.step + 1} (${revert.service}) proposed: `,
    h("a", {
      href: `#${encodeURIComponent(proposalAnchor(revert.proposalId))}`,
      "data-testid": "train-revert-link",
      text: revert.proposalId,
    }),
    " (approve it under Proposals)",
  );
}

/** @param {NonNullable<TrainView["triage"]>} triage */
function triageNote(triage) {
  return h(
    "div",
    { class: "triage", "data-testid": "train-triage" },
    h("p", {
      class: "error",
      text: `Needs triage: the regression could be step ${triage.steps.map((i) => i + 1).join(" or ")}; nothing was reverted.`,
    }),
    h(
      "ul",
      { "aria-label": "Triage evidence" },
      triage.evidence.map((line) => h("li", { text: line })),
    ),
  );
}

/** @param {TrainView} train */
function followUpList(train) {
  return h(
    "div",
    {},
    h("h4", { text: "Follow-ups" }),
    h(
      "ul",
      {
        class: "follow-ups",
        "data-testid": "train-follow-ups",
        "aria-label": `Follow-ups of ${train.name}`,
      },
      train.followUps.map((followUp) => followUpItem(followUp, train)),
    ),
  );
}

/** @param {TrainView} train */
function trainCard(train) {
  const finished = train.state !== "running";
  return h(
    "article",
    {
      class: "train",
      "data-testid": "train",
      "data-id": train.id,
      "data-name": train.name,
      "data-state": train.state,
      "data-dry-run": String(train.dryRun),
      "aria-label": `Release train ${train.name} (${train.id})`,
    },
    h(
      "header",
      {},
      h("strong", { "data-testid": "train-name", text: train.name }),
      h("code", { "data-testid": "train-id", text: train.id }),
      h("span", {
        class: `badge state-${train.state}`,
        "data-testid": "train-state",
        text: train.state,
      }),
      train.dryRun
        ? h("span", { class: "badge dry-run", "data-testid": "train-dry-run", text: "dry run" })
        : null,
      h("span", { class: "meta", text: `by ${train.actor}` }),
    ),
    h(
      "p",
      { class: "meta", "data-testid": "train-times" },
      "started ",
      h("time", { datetime: train.createdAt, text: time(train.createdAt) }),
      finished ? ", finished " : ", last change ",
      h("time", { datetime: train.updatedAt, text: time(train.updatedAt) }),
    ),
    train.reason
      ? h("p", { class: "summary", "data-testid": "train-reason", text: train.reason })
      : null,
    h(
      "ol",
      { class: "steps", "aria-label": `Steps of ${train.name}`, "data-testid": "train-steps" },
      train.steps.map(trainStep),
    ),
    train.revert ? revertLine(train.revert) : null,
    train.triage ? triageNote(train.triage) : null,
    train.followUps.length > 0 ? followUpList(train) : null,
  );
}

/** @param {readonly TrainView[]} trains */
function renderTrains(trains) {
  const newest = [...trains].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  fillCard(
    "trains",
    newest.length === 0
      ? h("p", { class: "empty", text: "No release trains yet." })
      : h("div", { "data-testid": "train-list" }, newest.map(trainCard)),
  );
  tickGuards();
}

/** @param {Api} api */
export async function loadTrains(api) {
  let listed;
  try {
    listed = await api.list("trains", RECENT_TRAINS);
  } catch (error) {
    // Without a release-train service the rest of the board still works: say so here only.
    if (error instanceof ApiRefusal && error.status === 503) {
      fillCard(
        "trains",
        h("p", {
          class: "empty",
          "data-testid": "trains-unavailable",
          text: `Release trains are not available: ${error.message}.`,
        }),
      );
      return;
    }
    throw error;
  }
  renderTrains(listed.items);
}
