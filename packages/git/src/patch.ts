import { isMap, isScalar, parseAllDocuments } from "yaml";
import type { Document } from "yaml";
import type { CanaryEdit } from "./canary.js";

/** Kinds a manifest patch of a release step targets: the service's workload. */
const WORKLOADS = ["Rollout", "Deployment", "StatefulSet", "DaemonSet"];

type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value);

/** Applies a JSON merge patch (RFC 7386) to one document through the Document API. */
function mergeInto(
  doc: Document.Parsed,
  at: readonly string[],
  patch: Record<string, unknown>,
): boolean {
  let changed = false;
  for (const [key, value] of Object.entries(patch)) {
    const path = [...at, key];
    if (value === null) {
      if (doc.hasIn(path)) {
        doc.deleteIn(path);
        changed = true;
      }
    } else if (isObject(value) && isMap(doc.getIn(path, true))) {
      changed = mergeInto(doc, path, value) || changed;
    } else if (JSON.stringify(doc.getIn(path)) !== JSON.stringify(value)) {
      const node = doc.getIn(path, true);
      // A scalar keeps its node (and so its comment); anything else is replaced.
      if (isScalar(node) && !isObject(value) && !Array.isArray(value)) node.value = value;
      else doc.setIn(path, doc.createNode(value as JsonValue));
      changed = true;
    }
  }
  return changed;
}

/**
 * Applies a JSON merge patch (RFC 7386: objects merge, anything else replaces, null removes) to
 * the one workload (a Rollout, Deployment, StatefulSet or DaemonSet) in `source`, through the
 * `yaml` Document API, so comments and the untouched keys stay as they were; the other documents
 * of the file are left byte for byte. Several workloads, or a patch that changes nothing → a
 * problem. Pure: no I/O.
 */
export function editManifestPatch(
  source: string,
  patch: Readonly<Record<string, unknown>>,
): CanaryEdit {
  const documents = parseAllDocuments(source);
  const broken = documents.find((doc) => doc.errors.length > 0);
  if (broken !== undefined) {
    return {
      kind: "problem",
      reason: `invalid YAML: ${broken.errors[0]?.message ?? "parse error"}`,
    };
  }
  const workloads = documents.filter((doc) => WORKLOADS.includes(String(doc.get("kind"))));
  if (workloads.length === 0) return { kind: "no-rollout" };
  if (workloads.length > 1)
    return { kind: "problem", reason: "more than one workload in the file" };
  const [doc] = workloads as [Document.Parsed];
  const named = doc.getIn(["metadata", "name"]);
  const name = `${String(doc.get("kind"))}/${typeof named === "string" ? named : "(unnamed)"}`;
  if (!mergeInto(doc, [], patch)) {
    return { kind: "problem", reason: `${name} already is as the patch says`, unchanged: true };
  }
  // The yaml library writes parsed documents back with their comments and markers; a document
  // the patch does not touch is kept as its original bytes.
  const text = documents
    .map((document, index) => {
      if (document === doc) return document.toString();
      // The first document owns what stands before it, the last what follows it.
      const from = index === 0 ? 0 : document.range[0];
      const to = index === documents.length - 1 ? source.length : document.range[2];
      return source.slice(from, to);
    })
    .join("");
  return { kind: "edited", rollout: name, text };
}
