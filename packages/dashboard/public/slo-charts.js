// @ts-check
// The SLO history card: for a chosen SLO, its error budget over the SLO's window (burn-down) and
// the burn rate of each window of the policy's rules over time, with incidents, deploys and
// freezes marked — all from the audit log (`/v1/services/{name}/slos/{slo}/history`).
import { LINE_COLORS, timeChart } from "./charts.js";
import { byId, fillCard, h } from "./dom.js";

/** @typedef {import("./api.js").Api} Api */
/** @typedef {import("./charts.js").ChartMarker} ChartMarker */

/**
 * The gateway's `SloHistory`.
 * @typedef {object} SloHistory
 * @property {string} service
 * @property {string} slo
 * @property {number} objective
 * @property {string} window
 * @property {string} since
 * @property {string} until
 * @property {{ severity: string, factor: number, long: string, short: string }[]} rules
 * @property {{ times: number[], budgetRemaining: (number | null)[], burnRates: { window: string, values: (number | null)[] }[], evaluations: number }} series
 * @property {ChartMarker[]} markers
 */

const percent = (/** @type {number} */ value) => `${(value * 100).toFixed(0)}%`;

/**
 * The history of one SLO over a range (default: its window up to now).
 * @param {Api} api
 * @param {string} service
 * @param {string} slo
 * @param {{ since?: string, until?: string }} [range]
 * @returns {Promise<SloHistory>}
 */
export async function sloHistory(api, service, slo, range = {}) {
  const query = new URLSearchParams(
    /** @type {Record<string, string>} */ (
      Object.fromEntries(Object.entries(range).filter(([, v]) => v))
    ),
  );
  const path = `/v1/services/${encodeURIComponent(service)}/slos/${encodeURIComponent(slo)}/history`;
  return /** @type {SloHistory} */ (await api.get(query.size > 0 ? `${path}?${query}` : path));
}

/**
 * The burn-rate chart of a history: one line per window, the rules' factors as thresholds.
 * @param {SloHistory} history
 * @param {number} width
 */
export function burnChart(history, width) {
  const factors = [...new Set(history.rules.map((r) => r.factor))];
  return timeChart({
    title: `${history.service} / ${history.slo}: burn rate per window`,
    testId: "burn-chart",
    times: history.series.times,
    lines: history.series.burnRates.map((b, i) => ({
      label: `burn ${b.window}`,
      values: b.values,
      color: LINE_COLORS[i % LINE_COLORS.length] ?? "#4a5568",
    })),
    markers: history.markers,
    thresholds: factors.map((factor) => ({ value: factor, label: `×${factor}` })),
    format: (v) => v.toFixed(1),
    range: { min: 0 },
    width,
  });
}

/**
 * The budget burn-down chart of a history: budget left over the SLO's window.
 * @param {SloHistory} history
 * @param {number} width
 */
export function budgetChart(history, width) {
  return timeChart({
    title: `${history.service} / ${history.slo}: error budget left (${history.objective}% over ${history.window})`,
    testId: "budget-chart",
    times: history.series.times,
    lines: [{ label: "budget left", values: history.series.budgetRemaining, color: "#6b46c1" }],
    markers: history.markers,
    thresholds: [{ value: 0, label: "exhausted" }],
    format: percent,
    range: { max: 1 },
    width,
  });
}

/**
 * Draws the charts of `service`/`slo` into the card.
 * @param {Api} api
 * @param {string} choice `service/slo`
 */
async function drawCharts(api, choice) {
  const [service = "", slo = ""] = choice.split("/");
  const target = byId("slo-charts-body");
  target.setAttribute("aria-busy", "true");
  const history = await sloHistory(api, service, slo);
  const width = Math.max(320, Math.min(900, target.clientWidth || 640));
  const charts = await Promise.all([budgetChart(history, width), burnChart(history, width)]);
  target.removeAttribute("aria-busy");
  target.dataset.slo = choice;
  target.dataset.evaluations = String(history.series.evaluations);
  target.replaceChildren(...charts);
}

/**
 * The SLO history card: a choice of every SLO the services list, and its two charts.
 * @param {Api} api
 */
export async function loadSloCharts(api) {
  const services = (await api.list("services", 500)).items;
  const choices = services.flatMap((s) => s.slos.map((slo) => `${s.name}/${slo.slo}`));
  if (choices.length === 0) {
    fillCard("slo-charts", h("p", { class: "empty", text: "No SLO has been evaluated yet." }));
    return;
  }
  const previous = byId("slo-charts").dataset.choice;
  const chosen = previous && choices.includes(previous) ? previous : (choices[0] ?? "");
  const select = h(
    "select",
    { id: "slo-choice", "data-testid": "slo-choice" },
    choices.map((c) => h("option", { value: c, text: c, selected: c === chosen })),
  );
  select.addEventListener("change", () => {
    byId("slo-charts").dataset.choice = select.value;
    void drawCharts(api, select.value);
  });
  fillCard(
    "slo-charts",
    h("label", { for: "slo-choice", text: "SLO " }),
    select,
    h("div", { id: "slo-charts-body", class: "charts", "data-testid": "slo-charts-body" }),
  );
  byId("slo-charts").dataset.choice = chosen;
  await drawCharts(api, chosen);
}
