// @ts-check
// The Freezes in force card: who froze which service, from when until when, and why.
import { fillCard, h, table, time } from "./dom.js";

/** @typedef {import("./api.js").Api} Api */
/** @typedef {import("./api.js").Freeze} Freeze */

/** @param {Freeze} freeze */
function freezeRow(freeze) {
  return h(
    "tr",
    { "data-testid": "freeze", "data-service": freeze.service },
    h("th", { scope: "row", text: freeze.service }),
    h("td", { text: freeze.origin }),
    h("td", { text: time(freeze.from) }),
    h("td", { text: time(freeze.until) }),
    h("td", { text: freeze.actor }),
    h("td", { text: freeze.reason }),
  );
}

/** @param {readonly Freeze[]} freezes */
function renderFreezes(freezes) {
  if (freezes.length === 0) {
    fillCard("freezes", h("p", { class: "empty", text: "No freezes in force." }));
    return;
  }
  fillCard(
    "freezes",
    table(["Service", "Origin", "From", "Until", "By", "Reason"], freezes.map(freezeRow)),
  );
}

/** @param {Api} api */
export async function loadFreezes(api) {
  renderFreezes((await api.list("freezes", 100)).items);
}
