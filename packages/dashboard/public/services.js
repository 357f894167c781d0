// @ts-check
// The Services card: each service's error budget per SLO, severity, incident and promotion gate.
import { fillCard, h, table } from "./dom.js";

/** @typedef {import("@safedeploy/schema").Severity} Severity */
/** @typedef {import("./api.js").Api} Api */
/** @typedef {import("./api.js").ServiceSummary} ServiceSummary */
/** @typedef {import("./api.js").Verdict} Verdict */

/** @param {Severity | null | undefined} severity */
export function severityBadge(severity) {
  const value = severity ?? "no-data";
  return h("span", { class: `badge sev-${value}`, "data-testid": "severity", text: value });
}

/**
 * @param {string} label
 * @param {number | null} remaining the fraction of the budget left
 * @param {Severity | null} severity
 */
function budgetBar(label, remaining, severity) {
  const known = typeof remaining === "number" && Number.isFinite(remaining);
  const percent = known ? Math.round(remaining * 100) : null;
  const width = percent === null ? 0 : Math.min(100, Math.max(0, percent));
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

/**
 * The gate's answer: pass, block, or unknown (it cannot see); older verdicts lack `verdict`.
 * @param {Verdict} gate
 */
const verdictOf = (gate) => gate.verdict ?? (gate.allowed ? "pass" : "block");

/** @param {Verdict | null} gate */
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

/** @param {ServiceSummary} service */
function serviceRow(service) {
  const slos =
    service.slos.length > 0
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
}

/** @param {readonly ServiceSummary[]} services */
function renderServices(services) {
  if (services.length === 0) {
    fillCard("services", h("p", { class: "empty", text: "No services evaluated yet." }));
    return;
  }
  fillCard(
    "services",
    table(
      ["Service", "Error budget left (per SLO)", "Severity", "Incident", "Promotion gate"],
      services.map(serviceRow),
      { class: "services" },
    ),
  );
}

/** @param {Api} api */
export async function loadServices(api) {
  renderServices((await api.list("services", 500)).items);
}
