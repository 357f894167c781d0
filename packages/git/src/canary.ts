import { isMap, isScalar, isSeq, parseAllDocuments } from "yaml";
import type { Document } from "yaml";

/** The edit of one manifest file, or why it cannot be made. */
export type CanaryEdit =
  | { readonly kind: "edited"; readonly text: string; readonly rollout: string }
  | { readonly kind: "no-rollout" }
  /** `unchanged`: the file already is as asked, so there is nothing to commit. */
  | { readonly kind: "problem"; readonly reason: string; readonly unchanged?: true };

type Found =
  | { readonly kind: "found"; readonly rollout: Document.Parsed; readonly name: string }
  | Exclude<CanaryEdit, { kind: "edited" }>;

/** The one Argo Rollouts `Rollout` among the documents of `source`, or why there is none. */
function findRollout(source: string): Found {
  const documents = parseAllDocuments(source);
  const rollouts = documents.filter((doc) => doc.get("kind") === "Rollout");
  if (rollouts.length === 0) {
    const broken = documents.find((doc) => doc.errors.length > 0);
    return broken === undefined
      ? { kind: "no-rollout" }
      : { kind: "problem", reason: `invalid YAML: ${broken.errors[0]?.message ?? "parse error"}` };
  }
  if (rollouts.length > 1) {
    return { kind: "problem", reason: "more than one Rollout in the file" };
  }
  const rollout = rollouts[0];
  if (rollout === undefined) return { kind: "no-rollout" };
  const named = rollout.getIn(["metadata", "name"]);
  const name = typeof named === "string" ? named : "(unnamed)";
  if (rollout.errors.length > 0) {
    return {
      kind: "problem",
      reason: `Rollout ${name} is invalid YAML: ${rollout.errors[0]?.message ?? ""}`,
    };
  }
  return { kind: "found", rollout, name };
}

/**
 * Pauses the Argo Rollouts `Rollout` in `source` (`spec.paused: true`), so the execution plane
 * promotes nothing further: what an approved block-promotion asks for. `spec.paused: false` has
 * its value replaced; otherwise one line `paused: true` is inserted as the first key of `spec`, at
 * its indentation. Every other byte stays as it was. Already paused → a problem (nothing to do).
 */
export function editRolloutPaused(source: string): CanaryEdit {
  const found = findRollout(source);
  if (found.kind !== "found") return found;
  const { rollout, name } = found;
  const spec = rollout.get("spec", true);
  if (!isMap(spec) || spec.flow === true) {
    return { kind: "problem", reason: `Rollout ${name} has no block-style spec to pause` };
  }
  const paused = spec.get("paused", true);
  if (isScalar(paused)) {
    if (paused.value === true)
      return { kind: "problem", reason: `Rollout ${name} is already paused` };
    if (paused.range == null)
      return { kind: "problem", reason: `Rollout ${name}: unreadable spec.paused` };
    const [start, end] = paused.range;
    return {
      kind: "edited",
      rollout: name,
      text: source.slice(0, start) + "true" + source.slice(end),
    };
  }
  const first = spec.items[0]?.key;
  if (!isScalar(first) || first.range == null) {
    return { kind: "problem", reason: `Rollout ${name} has an empty spec` };
  }
  const start = first.range[0];
  const indent = start - (source.lastIndexOf("\n", start - 1) + 1);
  return {
    kind: "edited",
    rollout: name,
    text: `${source.slice(0, start)}paused: true\n${" ".repeat(indent)}${source.slice(start)}`,
  };
}

/**
 * Changes the first `setWeight` step of the Argo Rollouts `Rollout` in `source` (one or more YAML
 * documents) from `from` to `to`. The `yaml` Document API finds the node; only the bytes of that
 * scalar are replaced, so comments, key order, quoting and indentation stay exactly as they were.
 * Pure: no I/O.
 */
export function editCanaryWeight(source: string, from: number, to: number): CanaryEdit {
  const found = findRollout(source);
  if (found.kind !== "found") return found;
  const { rollout, name } = found;
  const steps = rollout.getIn(["spec", "strategy", "canary", "steps"], true);
  if (!isSeq(steps)) {
    return { kind: "problem", reason: `Rollout ${name} has no spec.strategy.canary.steps` };
  }
  const step = steps.items.find((item) => isMap(item) && item.has("setWeight"));
  if (!isMap(step)) {
    return { kind: "problem", reason: `Rollout ${name} has no setWeight step` };
  }
  const weight = step.get("setWeight", true);
  if (!isScalar(weight) || typeof weight.value !== "number" || weight.range == null) {
    return { kind: "problem", reason: `Rollout ${name}: the first setWeight is not a number` };
  }
  if (weight.value !== from) {
    return {
      kind: "problem",
      reason: `Rollout ${name}: the first setWeight is ${weight.value}, not ${from} (the manifest drifted)`,
    };
  }
  const [start, end] = weight.range;
  return {
    kind: "edited",
    rollout: name,
    text: source.slice(0, start) + String(to) + source.slice(end),
  };
}
