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

/** Rows per page: a fleet of 10,000 is paged, never drawn at once. */
export const SERVICES_PER_PAGE = 100;

/**
 * Where the table is: the cursor of each page seen so far (the first page has none), and which
 * of them is shown. A refresh (an event) redraws the page in view, not the first.
 */
const pages = { cursors: /** @type {(string | null)[]} */ ([null]), index: 0 };

/**
 * @param {Api} api
 * @param {number} shown rows on this page
 * @param {string | null} next
 * @param {number | null} total services in all, when the summary said
 */
function pager(api, shown, next, total) {
  const first = pages.index * SERVICES_PER_PAGE + 1;
  const range =
    shown === 0
      ? "none"
      : `${first.toLocaleString("en")}–${(first + shown - 1).toLocaleString("en")}`;
  const go = (/** @type {number} */ step) => () => {
    pages.index += step;
    void loadServices(api);
  };
  return h(
    "nav",
    { class: "pager", "aria-label": "Services pages", "data-testid": "services-pager" },
    h("button", {
      type: "button",
      text: "Previous",
      "data-testid": "services-prev",
      disabled: pages.index === 0,
      onclick: go(-1),
    }),
    h("span", {
      class: "meta",
      "data-testid": "services-range",
      text: `Services ${range}${total === null ? "" : ` of ${total.toLocaleString("en")}`}`,
    }),
    h("button", {
      type: "button",
      text: "Next",
      "data-testid": "services-next",
      disabled: next === null,
      onclick: go(1),
    }),
  );
}

/**
 * @param {Api} api
 * @param {import("./api.js").Page<ServiceSummary>} page
 * @param {number | null} total
 */
function renderServices(api, page, total) {
  if (page.items.length === 0 && pages.index === 0) {
    fillCard("services", h("p", { class: "empty", text: "No services evaluated yet." }));
    return;
  }
  fillCard(
    "services",
    pager(api, page.items.length, page.next, total),
    table(
      ["Service", "Error budget left (per SLO)", "Severity", "Incident", "Promotion gate"],
      page.items.map(serviceRow),
      { class: "services" },
    ),
  );
}

/** @param {Api} api */
async function totalServices(api) {
  const summary = /** @type {{ totals?: { services?: unknown } } | null} */ (
    await api.get("/v1/snapshot?view=summary").catch(() => null)
  );
  const total = summary?.totals?.services;
  return typeof total === "number" ? total : null;
}

/** @param {Api} api */
export async function loadServices(api) {
  const [page, total] = await Promise.all([
    api.list("services", SERVICES_PER_PAGE, pages.cursors[pages.index] ?? null),
    totalServices(api),
  ]);
  // The cursor of the page after this one, for Next (a fleet that shrank may have moved it).
  pages.cursors[pages.index + 1] = page.next;
  pages.cursors.length = pages.index + 2;
  renderServices(api, page, total);
}
