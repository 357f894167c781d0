// @ts-check
// The Dead letters card: messages the services could not handle, newest first, with why
// (nothing acted on them).
import { fillCard, h, table, time } from "./dom.js";

/** @typedef {import("./api.js").Api} Api */
/** @typedef {import("./api.js").DeadLetterItem} DeadLetterItem */

/** @param {DeadLetterItem} stored */
function deadLetterRow({ seq, storedAt, letter }) {
  return h(
    "tr",
    { "data-testid": "dead-letter", "data-seq": String(seq) },
    h("td", { text: time(letter?.at ?? storedAt) }),
    h("td", { text: letter ? `${letter.stream} / ${letter.consumer}` : "-" }),
    h("td", { text: letter?.kind ?? "-" }),
    h("td", { text: letter ? String(letter.deliveryCount) : "-" }),
    h("td", { text: letter?.reason ?? "not a dead letter (published there by hand?)" }),
  );
}

/** @param {readonly DeadLetterItem[]} stored */
function renderDeadLetters(stored) {
  if (stored.length === 0) {
    fillCard("deadletters", h("p", { class: "empty", text: "No dead letters." }));
    return;
  }
  fillCard(
    "deadletters",
    table(["When", "From", "Kind", "Deliveries", "Reason"], stored.map(deadLetterRow)),
  );
}

/** @param {Api} api */
export async function loadDeadLetters(api) {
  renderDeadLetters((await api.list("deadletters", 20)).items);
}
