// The SafeDeploy dashboard: plain modern JavaScript, no build step, no outside requests. It reads
// the API at /v1 on its own origin with the token the user signs in with (kept in
// sessionStorage), and follows /v1/events to refresh whatever an event touches.
/* global document, Node */
import { createSseParser } from "./sse.js";

const TOKEN_KEY = "safedeploy.token";
const OPEN_PROPOSALS = ["pending", "approved", "needs-triage"];
const ACTIVE_INCIDENTS = ["detected", "investigating", "mitigated"];
const RECENT_PROPOSALS = 5;
const RECENT_TRAINS = 20;

const $ = (id) => {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`missing #${id}`);
  return found;
};

/** An element with attributes (`text`, `class`, `data-*`, aria, events as `on*`) and children. */
function h(tag, attributes = {}, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "text") element.textContent = String(value);
    else if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else element.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    element.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return element;
}

const time = (iso) => {
  if (typeof iso !== "string") return "-";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
};

// ---------------------------------------------------------------- API

let token = sessionStorage.getItem(TOKEN_KEY);

class ApiRefusal extends Error {
  constructor(status, body) {
    const message = body && typeof body.message === "string" ? body.message : `HTTP ${status}`;
    super(message);
    this.status = status;
    this.code = body && typeof body.error === "string" ? body.error : null;
    this.details = body && Array.isArray(body.details) ? body.details : [];
  }
}

async function api(path, options = {}) {
  const headers = { accept: "application/json", authorization: `Bearer ${token}` };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const response = await fetch(path, {
    method: options.method ?? "GET",
    headers,
    body: options.body === undefined ? undefined : JSON.stringify(options.body),
    cache: "no-store",
  });
  const text = await response.text();
  let body;
  try {
    body = text === "" ? null : JSON.parse(text);
  } catch {
    body = null;
  }
  if (!response.ok) {
    const refusal = new ApiRefusal(response.status, body);
    if (response.status === 401) signOut("The API refused this token: sign in again.");
    throw refusal;
  }
  return body;
}

const describeRefusal = (error) => {
  if (!(error instanceof ApiRefusal)) return `Cannot reach the API: ${error.message}`;
  if (error.status === 403) return `Your token may not do this (${error.message}).`;
  const details = error.details
    .map((detail) =>
      typeof detail === "object" && detail !== null && "message" in detail
        ? `${Array.isArray(detail.path) ? detail.path.join(".") : (detail.path ?? "")} ${detail.message}`.trim()
        : JSON.stringify(detail),
    )
    .join("; ");
  return `${error.status}${error.code ? ` ${error.code}` : ""}: ${error.message}${details ? ` (${details})` : ""}`;
};

// ---------------------------------------------------------------- rendering

function severityBadge(severity) {
  const value = severity ?? "no-data";
  return h("span", { class: `badge sev-${value}`, "data-testid": "severity", text: value });
}

function budgetBar(label, remaining, severity) {
  const known = typeof remaining === "number" && Number.isFinite(remaining);
  const percent = known ? Math.round(remaining * 100) : null;
  const width = known ? Math.min(100, Math.max(0, percent)) : 0;
  const fill = h("span", { class: `fill sev-${severity ?? "no-data"}` });
  fill.style.width = `${width}%`;
  return h(
    "div",
    { class: "budget", "data-testid": "budget", "data-slo": label },
    h("span", { class: "slo-name", text: label }),
    h(
      "span",
      {
        class: "bar",
        role: "meter",
        "aria-label": `${label}: error budget left`,
        "aria-valuemin": 0,
        "aria-valuemax": 100,
        "aria-valuenow": known ? width : undefined,
        "aria-valuetext": known ? `${percent}% left, ${severity}` : "no data",
      },
      fill,
    ),
    h("span", { class: "percent", text: known ? `${percent}%` : "no data" }),
    severity ? severityBadge(severity) : null,
  );
}

/** The gate's answer: pass, block, or unknown (it cannot see); older verdicts lack `verdict`. */
const verdictOf = (gate) => gate.verdict ?? (gate.allowed ? "pass" : "block");

function gateCell(gate) {
  if (!gate) return h("span", { class: "badge muted", "data-testid": "gate", text: "no verdict" });
  const verdict = verdictOf(gate);
  if (verdict === "pass") {
    return h("span", {
      class: "badge ok",
      "data-testid": "gate",
      "data-allowed": "true",
      "data-verdict": "pass",
      text: "allowed",
    });
  }
  const age =
    typeof gate.evidenceAge === "number" ? `evidence ${Math.round(gate.evidenceAge)} s old` : null;
  return h(
    "div",
    { "data-testid": "gate", "data-allowed": "false", "data-verdict": verdict },
    verdict === "unknown"
      ? h("span", {
          class: "badge warn",
          title: "the gate cannot see: no data, stale evidence or failed queries",
          text: "unknown",
        })
      : h("span", { class: "badge bad", text: "blocked" }),
    age ? h("span", { class: "meta", "data-testid": "evidence-age", text: ` ${age}` }) : null,
    h(
      "ul",
      { class: "reasons" },
      gate.reasons.map((reason) =>
        h(
          "li",
          {},
          h("code", { text: reason.code }),
          ` ${reason.message}`,
          reason.value !== null && reason.value !== undefined
            ? ` (${reason.value} vs ${reason.threshold ?? "-"})`
            : "",
        ),
      ),
    ),
  );
}

/** A table with one header cell per column and the given body rows. */
function table(columns, rows, attributes = {}) {
  return h(
    "table",
    attributes,
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        columns.map((t) => h("th", { scope: "col", text: t })),
      ),
    ),
    h("tbody", {}, rows),
  );
}

function renderServices(services) {
  const target = $("services");
  target.removeAttribute("aria-busy");
  if (services.length === 0) {
    target.replaceChildren(h("p", { class: "empty", text: "No services evaluated yet." }));
    return;
  }
  const rows = services.map((service) => {
    const slos =
      service.slos && service.slos.length > 0
        ? service.slos.map((slo) => budgetBar(slo.slo, slo.budgetRemaining, slo.severity))
        : [budgetBar("not evaluated yet", service.budgetRemaining, service.severity)];
    return h(
      "tr",
      {
        "data-testid": "service",
        "data-name": service.name,
        "data-severity": service.severity ?? "none",
      },
      h("th", { scope: "row", text: service.name }),
      h("td", {}, slos),
      h("td", {}, severityBadge(service.severity)),
      h("td", { "data-testid": "service-incident", text: service.activeIncident ?? "-" }),
      h("td", {}, gateCell(service.gate)),
    );
  });
  target.replaceChildren(
    table(
      ["Service", "Error budget left (per SLO)", "Severity", "Incident", "Promotion gate"],
      rows,
      { class: "services" },
    ),
  );
}

/** The transitions, led by the opening when the API lists only the moves after it. */
function timelineOf(incident) {
  if (incident.transitions.some((t) => t.from === null)) return incident.transitions;
  const opened = {
    from: null,
    to: "detected",
    at: incident.openedAt,
    actor: "system",
    reason: incident.reason ?? "opened",
  };
  return [opened, ...incident.transitions];
}

function renderIncidents(incidents) {
  const target = $("incidents");
  target.removeAttribute("aria-busy");
  const active = incidents.filter((incident) => ACTIVE_INCIDENTS.includes(incident.state));
  if (active.length === 0) {
    target.replaceChildren(h("p", { class: "empty", text: "No active incidents." }));
    return;
  }
  target.replaceChildren(
    ...active.map((incident) =>
      h(
        "article",
        {
          class: "incident",
          "data-testid": "incident",
          "data-id": incident.id,
          "data-state": incident.state,
          "data-service": incident.service,
          "aria-label": `Incident ${incident.id}`,
        },
        h(
          "header",
          {},
          h("strong", { text: incident.id }),
          h("span", { text: incident.service }),
          h("span", { class: "badge", text: incident.class }),
          severityBadge(incident.severity),
          h("span", {
            class: `badge state-${incident.state}`,
            "data-testid": "incident-state",
            text: incident.state,
          }),
        ),
        incident.reason ? h("p", { class: "summary", text: incident.reason }) : null,
        h("p", {
          class: "meta",
          text: `opened ${time(incident.openedAt)}, updated ${time(incident.updatedAt)}`,
        }),
        h(
          "ol",
          {
            class: "timeline",
            "aria-label": `Timeline of ${incident.id}`,
            "data-testid": "timeline",
          },
          timelineOf(incident).map((t) =>
            h(
              "li",
              { "data-to": t.to },
              h("time", { datetime: t.at, text: time(t.at) }),
              h("span", { class: "transition", text: `${t.from ?? "∅"} → ${t.to}` }),
              h("span", { class: "actor", text: t.actor }),
              h("span", { class: "reason", text: t.reason }),
              t.link
                ? h("a", {
                    href: t.link,
                    rel: "noopener noreferrer",
                    target: "_blank",
                    text: "link",
                  })
                : null,
            ),
          ),
        ),
      ),
    ),
  );
}

function diffView(diff) {
  return h(
    "pre",
    { class: "diff", "data-testid": "diff", "aria-label": "diff" },
    diff.split("\n").map((line) => {
      const kind =
        line.startsWith("+++") || line.startsWith("---")
          ? "file"
          : line.startsWith("+")
            ? "add"
            : line.startsWith("-")
              ? "del"
              : line.startsWith("@@")
                ? "hunk"
                : "ctx";
      return h("span", { class: `line ${kind}`, text: `${line}\n` });
    }),
  );
}

function planText(plan) {
  if (!plan || typeof plan !== "object") return null;
  if (plan.action === "git-revert") {
    return `Would revert, on a new branch, the latest commit that changed ${plan.path ?? "the service's path"} in the environment repo.`;
  }
  if (plan.action === "pause-rollout") {
    return `Would pause the rollout under ${plan.path ?? "the service's path"} in the environment repo.`;
  }
  if (plan.action === "record-only") {
    return "Records the block; pushes nothing.";
  }
  if (plan.action === "set-canary-weight") {
    return `Would set the canary weight of ${plan.path ?? "the service"} from ${plan.from}% to ${plan.to}%.`;
  }
  return `Plan: ${JSON.stringify(plan)}`;
}

/** The element id of a proposal's card, the target of links to it (e.g. from a train). */
const proposalAnchor = (id) => `proposal-${id}`;

function proposalCard(proposal) {
  const pending = proposal.state === "pending";
  const action = proposal.action;
  return h(
    "article",
    {
      id: proposalAnchor(proposal.id),
      class: "proposal",
      "data-testid": "proposal",
      "data-id": proposal.id,
      "data-state": proposal.state,
      "data-service": proposal.service,
      "data-kind": proposal.kind,
      "aria-label": `Proposal ${proposal.id}`,
    },
    h(
      "header",
      {},
      h("strong", { text: proposal.id }),
      h("span", { text: proposal.kind }),
      h("span", { text: proposal.service }),
      h("span", {
        class: `badge state-${proposal.state}`,
        "data-testid": "proposal-state",
        text: proposal.state,
      }),
      proposal.incidentId ? h("span", { class: "meta", text: `for ${proposal.incidentId}` }) : null,
    ),
    proposal.summary ? h("p", { class: "summary", text: proposal.summary }) : null,
    !action && planText(proposal.plan)
      ? h("p", { class: "plan", text: planText(proposal.plan) })
      : null,
    !action && proposal.preview && proposal.preview.error
      ? h("p", {
          class: "error",
          "data-testid": "preview-error",
          text: `Dry run: ${proposal.preview.error}`,
        })
      : null,
    !action && proposal.preview && proposal.preview.diff
      ? h(
          "details",
          { open: true, "data-testid": "preview" },
          h("summary", { text: "Diff approving would push (dry run)" }),
          diffView(proposal.preview.diff),
        )
      : null,
    proposal.failure
      ? h("p", {
          class: "error",
          text: `Action failed${proposal.failure.needsTriage ? " (needs triage)" : ""}: ${proposal.failure.reason}`,
        })
      : null,
    proposal.approvals.length > 0
      ? h(
          "ul",
          { class: "approvals", "aria-label": "Approvals", "data-testid": "approvals" },
          proposal.approvals.map((a) =>
            h(
              "li",
              {},
              h("strong", { text: a.by }),
              ` approved ${time(a.at)}: `,
              h("q", { text: a.reason }),
            ),
          ),
        )
      : null,
    action
      ? h(
          "dl",
          { class: "action", "data-testid": "action" },
          h("dt", { text: "branch" }),
          h("dd", {}, h("code", { "data-testid": "action-branch", text: action.branch })),
          h("dt", { text: "commit" }),
          h("dd", {}, h("code", { text: action.commit })),
          h("dt", { text: "pull request" }),
          h(
            "dd",
            {},
            action.prUrl
              ? h("a", {
                  href: action.prUrl,
                  rel: "noopener noreferrer",
                  target: "_blank",
                  text: action.prUrl,
                })
              : "none (branch pushed)",
          ),
        )
      : null,
    action && action.diff
      ? h("details", { open: true }, h("summary", { text: "Diff pushed" }), diffView(action.diff))
      : null,
    pending
      ? h(
          "div",
          { class: "actions" },
          h("button", {
            type: "button",
            class: "primary",
            "data-testid": "approve",
            "aria-label": `Approve ${proposal.id}`,
            text: "Approve",
            onclick: () => openDecision("approve", proposal),
          }),
          h("button", {
            type: "button",
            class: "danger",
            "data-testid": "reject",
            "aria-label": `Reject ${proposal.id}`,
            text: "Reject",
            onclick: () => openDecision("reject", proposal),
          }),
        )
      : null,
  );
}

function renderProposals(proposals) {
  const target = $("proposals");
  target.removeAttribute("aria-busy");
  const open = proposals.filter((p) => OPEN_PROPOSALS.includes(p.state));
  const recent = proposals
    .filter((p) => !OPEN_PROPOSALS.includes(p.state))
    .slice(0, RECENT_PROPOSALS);
  target.replaceChildren(
    h("h3", { text: "Waiting for a decision or the actuator" }),
    open.length === 0
      ? h("p", { class: "empty", text: "No open proposals." })
      : h("div", { "data-testid": "open-proposals" }, open.map(proposalCard)),
    h("h3", { text: "Recently decided" }),
    recent.length === 0
      ? h("p", { class: "empty", text: "None yet." })
      : h("div", { "data-testid": "recent-proposals" }, recent.map(proposalCard)),
  );
}

function renderFreezes(freezes) {
  const target = $("freezes");
  target.removeAttribute("aria-busy");
  if (freezes.length === 0) {
    target.replaceChildren(h("p", { class: "empty", text: "No freezes in force." }));
    return;
  }
  target.replaceChildren(
    table(
      ["Service", "Origin", "From", "Until", "By", "Reason"],
      freezes.map((f) =>
        h(
          "tr",
          { "data-testid": "freeze", "data-service": f.service },
          h("th", { scope: "row", text: f.service }),
          h("td", { text: f.origin }),
          h("td", { text: time(f.from) }),
          h("td", { text: time(f.until) }),
          h("td", { text: f.actor }),
          h("td", { text: f.reason }),
        ),
      ),
    ),
  );
}

/** Failed release-train guards: each blocks its service's gate until it is cleared. */
function renderGuards(guards) {
  const target = $("guards");
  target.removeAttribute("aria-busy");
  if (guards.length === 0) {
    target.replaceChildren(h("p", { class: "empty", text: "No failed release guards." }));
    return;
  }
  target.replaceChildren(
    h("p", {
      class: "meta",
      text: "Each blocks its service's gate until its revert is executed or an approver clears it (safedeploy guards clear SERVICE --reason TEXT).",
    }),
    table(
      ["Service", "Train", "Step", "Since", "Why"],
      guards.map((g) =>
        h(
          "tr",
          { "data-testid": "guard", "data-service": g.service, "data-train": g.trainId },
          h("th", { scope: "row", text: g.service }),
          h("td", { text: `${g.train} (${g.trainId})` }),
          h("td", { text: g.step === null ? "-" : String(g.step + 1) }),
          h("td", { text: time(g.at) }),
          h("td", { text: g.reason }),
        ),
      ),
    ),
  );
}

/** Messages the services could not handle: newest first, with why (nothing acted on them). */
function renderDeadLetters(stored) {
  const target = $("deadletters");
  target.removeAttribute("aria-busy");
  if (stored.length === 0) {
    target.replaceChildren(h("p", { class: "empty", text: "No dead letters." }));
    return;
  }
  target.replaceChildren(
    table(
      ["When", "From", "Kind", "Deliveries", "Reason"],
      stored.map(({ seq, storedAt, letter }) =>
        h(
          "tr",
          { "data-testid": "dead-letter", "data-seq": String(seq) },
          h("td", { text: time(letter?.at ?? storedAt) }),
          h("td", { text: letter ? `${letter.stream} / ${letter.consumer}` : "-" }),
          h("td", { text: letter?.kind ?? "-" }),
          h("td", { text: letter ? String(letter.deliveryCount) : "-" }),
          h("td", { text: letter?.reason ?? "not a dead letter (published there by hand?)" }),
        ),
      ),
    ),
  );
}

// ---------------------------------------------------------------- release trains

const shortSha = (sha) => (typeof sha === "string" ? sha.slice(0, 7) : null);

/** "in 1m 05s" / "5s ago" from a duration in milliseconds. */
function spanText(ms) {
  const seconds = Math.round(Math.abs(ms) / 1000);
  const text =
    seconds < 60
      ? `${seconds}s`
      : `${Math.floor(seconds / 60)}m ${String(seconds % 60).padStart(2, "0")}s`;
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

/** The text of a guard window's countdown at `now`. */
function guardText(until, now = Date.now()) {
  const left = new Date(until).getTime() - now;
  if (Number.isNaN(left)) return `guard until ${until}`;
  return left > 0 ? `guard window ends ${spanText(left)}` : "guard window over, checking…";
}

let guardTimer;

/** Ticks every guard countdown on the page once a second while there is one. */
function tickGuards() {
  const clocks = document.querySelectorAll("[data-guard-until]");
  for (const clock of clocks) clock.textContent = guardText(clock.dataset.guardUntil);
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
 */
function evidenceText(item) {
  if (item === null || typeof item !== "object") return String(item);
  if (item.type === "hook") {
    const status = item.status === null || item.status === undefined ? "" : ` ${item.status}`;
    return `${item.hook} hook (${item.kind} ${item.target}): ${item.outcome}${status}, ${item.detail}`;
  }
  const { type, ...rest } = item;
  const fields = Object.entries(rest)
    .map(([key, value]) => `${key}=${typeof value === "object" ? JSON.stringify(value) : value}`)
    .join(", ");
  return `${type ?? "evidence"}: ${fields}`;
}

function trainStep(step) {
  const guarding = step.phase === "guarding" && typeof step.guardUntil === "string";
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
    h(
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
      guarding
        ? h("span", {
            class: "guard",
            "data-testid": "step-guard",
            "data-guard-until": step.guardUntil,
            title: `guard window until ${time(step.guardUntil)}`,
            text: guardText(step.guardUntil),
          })
        : null,
    ),
    step.phase === "awaiting-approval" && step.approval
      ? h("p", {
          class: "meta",
          "data-testid": "step-approval",
          text: `waiting for approvals: ${step.approval.approvals.length} of ${step.approval.required} (${step.approval.approvals.join(", ") || "none"}); approve proposal ${step.approval.proposalId} under Proposals or with safedeploy proposals approve ${step.approval.proposalId}`,
        })
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
    train.revert
      ? h(
          "p",
          { class: "revert", "data-testid": "train-revert" },
          `Revert of step ${train.revert.step + 1} (${train.revert.service}) proposed: `,
          h("a", {
            href: `#${encodeURIComponent(proposalAnchor(train.revert.proposalId))}`,
            "data-testid": "train-revert-link",
            text: train.revert.proposalId,
          }),
          " (approve it under Proposals)",
        )
      : null,
    train.triage
      ? h(
          "div",
          { class: "triage", "data-testid": "train-triage" },
          h("p", {
            class: "error",
            text: `Needs triage: the regression could be step ${train.triage.steps.map((i) => i + 1).join(" or ")}; nothing was reverted.`,
          }),
          h(
            "ul",
            { "aria-label": "Triage evidence" },
            train.triage.evidence.map((line) => h("li", { text: line })),
          ),
        )
      : null,
    train.followUps.length > 0
      ? h(
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
        )
      : null,
  );
}

function renderTrains(trains) {
  const target = $("trains");
  target.removeAttribute("aria-busy");
  const newest = [...trains].sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  target.replaceChildren(
    newest.length === 0
      ? h("p", { class: "empty", text: "No release trains yet." })
      : h("div", { "data-testid": "train-list" }, newest.map(trainCard)),
  );
  tickGuards();
}

async function loadTrains() {
  let listed;
  try {
    listed = await api(`/v1/trains?limit=${RECENT_TRAINS}`);
  } catch (error) {
    // Without a release-train service the rest of the board still works: say so here only.
    if (error instanceof ApiRefusal && error.status === 503) {
      const target = $("trains");
      target.removeAttribute("aria-busy");
      target.replaceChildren(
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

// ---------------------------------------------------------------- loading

const LOADERS = {
  services: async () => renderServices((await api("/v1/services?limit=500")).items),
  incidents: async () => renderIncidents((await api("/v1/incidents?limit=100")).items),
  trains: loadTrains,
  proposals: async () => renderProposals((await api("/v1/proposals?limit=100")).items),
  freezes: async () => renderFreezes((await api("/v1/freezes?limit=100")).items),
  guards: async () => renderGuards((await api("/v1/guards?limit=100")).items),
  deadletters: async () => renderDeadLetters((await api("/v1/deadletters?limit=20")).items),
};

function showBanner(text) {
  const banner = $("banner");
  banner.textContent = text ?? "";
  banner.hidden = !text;
}

async function load(names) {
  const results = await Promise.allSettled(names.map((name) => LOADERS[name]()));
  const failed = results.find((result) => result.status === "rejected");
  if (failed && token) showBanner(describeRefusal(failed.reason));
  else if (!failed) showBanner(null);
  document.body.dataset.loaded = String(Date.now());
}

const refresh = { names: new Set(), timer: undefined };

/** Refreshes `names` soon, once, however many events ask for it meanwhile. */
function scheduleRefresh(...names) {
  for (const name of names) refresh.names.add(name);
  clearTimeout(refresh.timer);
  refresh.timer = setTimeout(() => {
    const batch = [...refresh.names];
    refresh.names.clear();
    void load(batch);
  }, 150);
}

/** Which lists an event of `type` can change. */
function affectedBy(type) {
  if (type.startsWith("budget.")) return ["services"];
  if (type.startsWith("incidents.")) return ["incidents", "services"];
  if (type.startsWith("governance.freeze")) return ["freezes", "services"];
  if (type.startsWith("governance.guard")) return ["guards", "services"];
  if (type.startsWith("governance.train-") || type === "governance.follow-up") return ["trains"];
  if (type.startsWith("governance.proposal") || type.startsWith("governance.action")) {
    return ["proposals"];
  }
  if (type.startsWith("governance.")) return ["services", "proposals"];
  // Dead letters are not envelopes: the feed sends them untyped.
  if (type === "message") return ["deadletters"];
  return [];
}

// ---------------------------------------------------------------- live events

let events = null;

function setLive(state, text) {
  const live = $("live");
  live.className = `live ${state}`;
  live.textContent = text;
  live.dataset.state = state;
}

/** Follows /v1/events with the token, reconnecting with Last-Event-ID until `signal` aborts. */
async function followEvents(signal) {
  const parser = createSseParser((event) => {
    const lists = affectedBy(event.type);
    if (lists.length > 0) scheduleRefresh(...lists);
  });
  let first = true;
  while (!signal.aborted) {
    try {
      const headers = { accept: "text/event-stream", authorization: `Bearer ${token}` };
      if (parser.lastEventId) headers["last-event-id"] = parser.lastEventId;
      const response = await fetch("/v1/events", { headers, signal, cache: "no-store" });
      if (response.status === 401) {
        signOut("The API refused this token: sign in again.");
        return;
      }
      if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
      setLive("on", "live");
      // Anything may have changed while disconnected.
      if (!first) scheduleRefresh(...Object.keys(LOADERS));
      first = false;
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        parser.push(value);
      }
    } catch {
      // A dropped connection: reconnect below, resuming from the last event id.
    }
    if (signal.aborted) return;
    setLive("off", "reconnecting…");
    await new Promise((resolve) => setTimeout(resolve, parser.retry ?? 2000));
  }
}

// ---------------------------------------------------------------- approve / reject

let decision = null;

function openDecision(verb, proposal) {
  decision = { verb, proposal };
  $("decision-title").textContent = `${verb === "approve" ? "Approve" : "Reject"} ${proposal.id}`;
  $("decision-summary").textContent =
    `${proposal.kind} of ${proposal.service}${proposal.summary ? `: ${proposal.summary}` : ""}`;
  const confirm = $("decision-confirm");
  confirm.textContent = verb === "approve" ? "Approve" : "Reject";
  confirm.className = verb === "approve" ? "primary" : "danger";
  confirm.disabled = false;
  $("decision-error").textContent = "";
  const reason = $("decision-reason");
  reason.value = "";
  $("decision").showModal();
  reason.focus();
}

async function submitDecision(event) {
  event.preventDefault();
  if (decision === null) return;
  const reason = $("decision-reason").value.trim();
  if (reason === "") {
    $("decision-error").textContent = "Say why: the reason is recorded in the audit log.";
    return;
  }
  const { verb, proposal } = decision;
  const confirm = $("decision-confirm");
  confirm.disabled = true;
  try {
    await api(`/v1/proposals/${encodeURIComponent(proposal.id)}/${verb}`, {
      method: "POST",
      body: { reason },
    });
    decision = null;
    $("decision").close();
    scheduleRefresh("proposals", "incidents", "services");
  } catch (error) {
    $("decision-error").textContent = describeRefusal(error);
    confirm.disabled = false;
  }
}

// ---------------------------------------------------------------- session

function signOut(message) {
  token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  events?.abort();
  events = null;
  $("board").hidden = true;
  $("login").hidden = false;
  $("sign-out").hidden = true;
  $("who").textContent = "";
  $("login-error").textContent = message ?? "";
  setLive("off", "signed out");
  if ($("decision").open) $("decision").close();
}

async function signIn(candidate) {
  token = candidate;
  try {
    await api("/v1/services?limit=1");
  } catch (error) {
    const status = error instanceof ApiRefusal ? error.status : null;
    signOut(status === 401 ? "This token is not valid." : describeRefusal(error));
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, candidate);
  $("login").hidden = true;
  $("login-error").textContent = "";
  $("board").hidden = false;
  $("sign-out").hidden = false;
  setLive("off", "connecting…");
  events = new AbortController();
  void followEvents(events.signal);
  await load(Object.keys(LOADERS));
}

$("login-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const value = $("token").value.trim();
  $("token").value = "";
  if (value !== "") void signIn(value);
});
$("sign-out").addEventListener("click", () => signOut(""));
$("decision-form").addEventListener("submit", (event) => void submitDecision(event));
$("decision-cancel").addEventListener("click", () => {
  decision = null;
  $("decision").close();
});

if (token) void signIn(token);
else signOut("");
