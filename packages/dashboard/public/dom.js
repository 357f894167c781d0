// @ts-check
// Building the page: elements by id, elements from attributes and children, tables, times, diffs.
/* global document, Node, HTMLElement */

/**
 * A child of an element: a node, or text (nothing when null, undefined or false).
 * @typedef {Node | string | number | null | undefined | false} Child
 */

/**
 * Attributes of an element: `text` sets its text, `on*` functions listen to events, `true` is
 * an empty attribute and null, undefined or false leave the attribute out.
 * @typedef {Record<string, string | number | boolean | null | undefined | ((event: Event) => void)>} Attributes
 */

/**
 * The page's element with this id, checked to be a `type` (an HTMLElement unless told).
 * @template {HTMLElement} [T=HTMLElement]
 * @param {string} id
 * @param {new () => T} [type]
 * @returns {T}
 */
export function byId(id, type) {
  const found = document.getElementById(id);
  if (found === null) throw new Error(`missing #${id}`);
  const expected = type ?? HTMLElement;
  if (!(found instanceof expected)) throw new Error(`#${id} is not a ${expected.name}`);
  return /** @type {T} */ (found);
}

/**
 * An element with attributes (`text`, `class`, `data-*`, aria, events as `on*`) and children.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attributes} [attributes]
 * @param {...(Child | readonly Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attributes = {}, ...children) {
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

/**
 * A table with one header cell per column and the given body rows.
 * @param {readonly string[]} columns
 * @param {readonly HTMLTableRowElement[]} rows
 * @param {Attributes} [attributes]
 */
export function table(columns, rows, attributes = {}) {
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

/**
 * A card's content, in place of what it showed (and no longer busy).
 * @param {string} id
 * @param {...Node} content
 */
export function fillCard(id, ...content) {
  const target = byId(id);
  target.removeAttribute("aria-busy");
  target.replaceChildren(...content);
}

/**
 * A timestamp in the reader's locale; "-" when there is none, as given when it does not parse.
 * @param {string | null | undefined} iso
 */
export const time = (iso) => {
  if (typeof iso !== "string") return "-";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
};

/**
 * A unified diff, one span a line, classed by what the line is (file, add, del, hunk, ctx).
 * @param {string} diff
 */
export function diffView(diff) {
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
