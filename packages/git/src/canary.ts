import { isMap, isScalar, isSeq, parseAllDocuments } from "yaml";

/** The edit of one manifest file, or why it cannot be made. */
export type CanaryEdit =
  | { readonly kind: "edited"; readonly text: string; readonly rollout: string }
  | { readonly kind: "no-rollout" }
  | { readonly kind: "problem"; readonly reason: string };

/**
 * Changes the first `setWeight` step of the Argo Rollouts `Rollout` in `source` (one or more YAML
 * documents) from `from` to `to`. The `yaml` Document API finds the node; only the bytes of that
 * scalar are replaced, so comments, key order, quoting and indentation stay exactly as they were.
 * Pure: no I/O.
 */
export function editCanaryWeight(source: string, from: number, to: number): CanaryEdit {
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
