// @ts-check
// The Delivery (DORA) card: deploys, lead time, change failure rate and time to restore over the
// last 30 days, per service, per team and overall (`/v1/dora`; docs/dora.md says what counts).
import { fillCard, h, table } from "./dom.js";

/** @typedef {import("./api.js").Api} Api */

/**
 * @typedef {object} DurationStats
 * @property {number} samples
 * @property {number | null} medianSeconds
 */
/**
 * The metrics of one row of `/v1/dora`.
 * @typedef {object} DoraMetrics
 * @property {number} deploys
 * @property {number} deploysPerDay
 * @property {DurationStats} leadTime
 * @property {number} failedDeploys
 * @property {number | null} changeFailureRate
 * @property {number} incidents
 * @property {number} unresolvedIncidents
 * @property {DurationStats} timeToRestore
 */
/**
 * @typedef {object} DoraAnswer
 * @property {string} since
 * @property {string} until
 * @property {DoraMetrics} overall
 * @property {(DoraMetrics & { service: string, team: string | null })[]} services
 * @property {(DoraMetrics & { team: string | null })[]} teams
 */

/**
 * Seconds as their two largest units (`3h 20m`), "-" for none.
 * @param {number | null} seconds
 */
export function duration(seconds) {
  if (seconds === null) return "-";
  let rest = Math.round(seconds);
  if (rest <= 0) return "0s";
  /** @type {string[]} */
  const parts = [];
  for (const [unit, size] of /** @type {const} */ ([
    ["d", 86400],
    ["h", 3600],
    ["m", 60],
    ["s", 1],
  ])) {
    const amount = Math.floor(rest / size);
    rest -= amount * size;
    if (amount > 0 || parts.length > 0) parts.push(amount > 0 ? `${amount}${unit}` : "");
    if (parts.length === 2) break;
  }
  return parts.filter(Boolean).join(" ");
}

/**
 * @param {string} name
 * @param {string} team
 * @param {DoraMetrics} m
 */
function row(name, team, m) {
  const rate =
    m.changeFailureRate === null
      ? "-"
      : `${(m.changeFailureRate * 100).toFixed(0)}% (${m.failedDeploys}/${m.deploys})`;
  return h(
    "tr",
    { "data-row": name },
    h("th", { scope: "row", text: name }),
    h("td", { text: team }),
    h("td", { class: "num", text: String(m.deploys) }),
    h("td", { class: "num", text: m.deploysPerDay.toFixed(2) }),
    h("td", { class: "num", text: duration(m.leadTime.medianSeconds) }),
    h("td", { class: "num", "data-testid": "change-failure-rate", text: rate }),
    h("td", { class: "num", text: duration(m.timeToRestore.medianSeconds) }),
    h("td", {
      class: "num",
      text:
        m.unresolvedIncidents > 0
          ? `${m.incidents} (${m.unresolvedIncidents} open)`
          : String(m.incidents),
    }),
  );
}

/** @param {Api} api */
export async function loadDora(api) {
  const answer = /** @type {DoraAnswer} */ (await api.get("/v1/dora?since=30d"));
  const rows = [
    ...answer.services.map((s) => row(s.service, s.team ?? "-", s)),
    ...answer.teams.map((t) => row(`team ${t.team ?? "(none)"}`, t.team ?? "-", t)),
    row("all", "", answer.overall),
  ];
  fillCard(
    "dora",
    table(
      [
        "",
        "Team",
        "Deploys",
        "Per day",
        "Lead time (median)",
        "Change failure rate",
        "Time to restore (median)",
        "Incidents",
      ],
      rows,
      { class: "dora", "aria-label": "DORA metrics of the last 30 days" },
    ),
  );
}
