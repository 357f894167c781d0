/*
 * Rendering SLI queries. Catalog queries are Sloth-style templates: `{{.window}}` is replaced by a
 * window such as `5m`. Values substituted into PromQL are validated first, so a catalog can never
 * smuggle PromQL in through a name.
 */

import { parseDuration } from "@safedeploy/schema";

const WINDOW_PLACEHOLDER = /\{\{\s*\.window\s*\}\}/;
const WINDOW_PLACEHOLDERS = new RegExp(WINDOW_PLACEHOLDER, "g");
const SAFE_LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Replaces every `{{.window}}` in a Sloth-style SLI query with `window`. */
export function renderSliQuery(template: string, window: string): string {
  if (parseDuration(window) === undefined)
    throw new RangeError(`not a PromQL duration: ${JSON.stringify(window)}`);
  return template.replace(WINDOW_PLACEHOLDERS, window);
}

/** Whether a template uses the window placeholder at least once. */
export function hasWindowPlaceholder(template: string): boolean {
  return WINDOW_PLACEHOLDER.test(template);
}

/** Escapes a label value for a double-quoted PromQL string. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** A `name="value"` matcher with the value escaped and the name checked. */
export function labelMatcher(name: string, value: string): string {
  if (!SAFE_LABEL_NAME.test(name))
    throw new RangeError(`not a label name: ${JSON.stringify(name)}`);
  return `${name}="${escapeLabelValue(value)}"`;
}
