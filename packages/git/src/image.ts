import { isMap, isScalar, isSeq, parseAllDocuments } from "yaml";

/** The image edit of one manifest file, or why it cannot be made. */
export type ImageEdit =
  | {
      readonly kind: "edited";
      readonly text: string;
      /** `Kind/name` of the workload whose container was changed. */
      readonly workload: string;
      readonly container: string;
      readonly from: string;
    }
  | { readonly kind: "no-workload" }
  /** `unchanged`: the workload already runs the image, so there is nothing to commit. */
  | { readonly kind: "problem"; readonly reason: string; readonly unchanged?: true };

interface Candidate {
  readonly workload: string;
  readonly container: string;
  readonly image: string;
  readonly range: readonly [number, number];
}

/**
 * Sets the image of one container of the workload (a Deployment, Argo Rollouts Rollout,
 * StatefulSet, ... anything with `spec.template.spec.containers`) in `source`, one or more YAML
 * documents. With `container`, the container of that name; without, the only container in the
 * file. Only the bytes of the image scalar are replaced (its quotes kept), so comments, key order
 * and indentation stay exactly as they were. Already at `image`, several candidates, or an
 * unreadable image → a problem. Pure: no I/O.
 */
export function editImage(source: string, container: string | undefined, image: string): ImageEdit {
  if (/[\s"'\\]/.test(image) || image === "") {
    return { kind: "problem", reason: `refusing the image reference ${JSON.stringify(image)}` };
  }
  const documents = parseAllDocuments(source);
  const broken = documents.find((doc) => doc.errors.length > 0);
  if (broken !== undefined) {
    return {
      kind: "problem",
      reason: `invalid YAML: ${broken.errors[0]?.message ?? "parse error"}`,
    };
  }
  const candidates: Candidate[] = [];
  for (const doc of documents) {
    const containers = doc.getIn(["spec", "template", "spec", "containers"], true);
    if (!isSeq(containers)) continue;
    const kind = doc.get("kind");
    const name = doc.getIn(["metadata", "name"]);
    const workload = `${typeof kind === "string" ? kind : "(no kind)"}/${typeof name === "string" ? name : "(unnamed)"}`;
    for (const item of containers.items) {
      if (!isMap(item)) continue;
      const named = item.get("name");
      const containerName = typeof named === "string" ? named : "";
      if (container !== undefined && containerName !== container) continue;
      const node = item.get("image", true);
      if (!isScalar(node) || typeof node.value !== "string" || node.range == null) {
        return {
          kind: "problem",
          reason: `${workload}: container ${containerName || "(unnamed)"} has no readable image`,
        };
      }
      candidates.push({
        workload,
        container: containerName,
        image: node.value,
        range: [node.range[0], node.range[1]],
      });
    }
  }
  const [only, ...others] = candidates;
  if (only === undefined) return { kind: "no-workload" };
  if (others.length > 0) {
    const named = candidates.map((c) => `${c.workload}:${c.container || "(unnamed)"}`).join(", ");
    return {
      kind: "problem",
      reason:
        container === undefined
          ? `several containers (${named}); name the container`
          : `several containers named ${container} (${named})`,
    };
  }
  if (only.image === image) {
    return { kind: "problem", reason: `${only.workload} already runs ${image}`, unchanged: true };
  }
  // The scalar's range covers its quotes; keep them and replace what is between.
  const [start, end] = only.range;
  const raw = source.slice(start, end);
  const quote = raw.startsWith('"') || raw.startsWith("'") ? raw[0] : "";
  const valueEnd = quote === "" ? start + raw.trimEnd().length : end;
  return {
    kind: "edited",
    workload: only.workload,
    container: only.container,
    from: only.image,
    text: `${source.slice(0, start)}${quote}${image}${quote}${source.slice(valueEnd)}`,
  };
}
