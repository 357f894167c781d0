// @ts-check
// The Failed release guards card: each blocks its service's gate until it is cleared.
import { fillCard, h, table, time } from "./dom.js";

/** @typedef {import("@safedeploy/schema").GuardView} GuardView */
/** @typedef {import("./api.js").Api} Api */

/** @param {GuardView} guard */
function guardRow(guard) {
  return h(
    "tr",
    { "data-testid": "guard", "data-service": guard.service, "data-train": guard.trainId },
    h("th", { scope: "row", text: guard.service }),
    h("td", { text: `${guard.train} (${guard.trainId})` }),
    h("td", { text: guard.step === null ? "-" : String(guard.step + 1) }),
    h("td", { text: time(guard.at) }),
    h("td", { text: guard.reason }),
  );
}

/** @param {readonly GuardView[]} guards */
function renderGuards(guards) {
  if (guards.length === 0) {
    fillCard("guards", h("p", { class: "empty", text: "No failed release guards." }));
    return;
  }
  fillCard(
    "guards",
    h("p", {
      class: "meta",
      text: "Each blocks its service's gate until its revert is executed or an approver clears it (safedeploy guards clear SERVICE --reason TEXT).",
    }),
    table(["Service", "Train", "Step", "Since", "Why"], guards.map(guardRow)),
  );
}

/** @param {Api} api */
export async function loadGuards(api) {
  renderGuards((await api.list("guards", 100)).items);
}
