import { readFile, readdir, stat } from "node:fs/promises";
import { extname, join } from "node:path";
import { parseAllDocuments } from "yaml";
import {
  DEFAULT_POLICY_SPEC,
  PolicyDocument,
  ReleaseTrainDocument,
  ServiceDocument,
  resolvePolicy,
} from "@safedeploy/schema";
import type { PolicySpec } from "@safedeploy/schema";
import type { z } from "zod";

/** One thing wrong with a catalog: where (file, 0-based document, field path) and what. */
export interface CatalogError {
  readonly file: string;
  readonly document: number;
  /** e.g. `spec.slos[0].objective`; empty for the document as a whole. */
  readonly path: string;
  readonly message: string;
}

/** Where a document came from. */
export interface Source {
  readonly file: string;
  readonly document: number;
}

export interface CatalogService {
  readonly name: string;
  readonly owner: string;
  readonly spec: ServiceDocument["spec"];
  /** The default Policy with the Service's own overrides applied. */
  readonly policy: PolicySpec;
  readonly source: Source;
}

export interface Catalog {
  readonly services: readonly CatalogService[];
  readonly policies: readonly (PolicyDocument & { source: Source })[];
  readonly trains: readonly (ReleaseTrainDocument & { source: Source })[];
  readonly defaultPolicy: PolicySpec;
}

export type CatalogResult =
  | { readonly ok: true; readonly catalog: Catalog }
  | { readonly ok: false; readonly errors: readonly CatalogError[] };

/** A document's kind and name, known even when the rest of it is invalid. */
interface Identity {
  readonly kind: string;
  readonly name: string;
  readonly source: Source;
}

export interface ParsedText {
  readonly documents: ParsedDocument[];
  readonly errors: CatalogError[];
  readonly identities: Identity[];
}

type ParsedDocument =
  | { kind: "Service"; value: ServiceDocument; source: Source }
  | { kind: "Policy"; value: PolicyDocument; source: Source }
  | { kind: "ReleaseTrain"; value: ReleaseTrainDocument; source: Source };

const SCHEMAS = {
  Service: ServiceDocument,
  Policy: PolicyDocument,
  ReleaseTrain: ReleaseTrainDocument,
};
const KINDS = Object.keys(SCHEMAS);

/** `["spec", "slos", 0, "objective"]` → `spec.slos[0].objective`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let text = "";
  for (const key of path) {
    if (typeof key === "number") text += `[${key}]`;
    else text += text === "" ? String(key) : `.${String(key)}`;
  }
  return text;
}

function issuesToErrors(source: Source, error: z.ZodError): CatalogError[] {
  return error.issues.flatMap((issue): CatalogError[] => {
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) => ({
        ...source,
        path: formatPath([...issue.path, key]),
        message: "unknown field",
      }));
    }
    const message =
      issue.code === "invalid_type" && issue.input === undefined ? "is required" : issue.message;
    return [{ ...source, path: formatPath(issue.path), message }];
  });
}

/** Parses and validates the YAML documents of one file's text. Never throws. */
export function parseCatalogText(text: string, file: string): ParsedText {
  const documents: ParsedDocument[] = [];
  const errors: CatalogError[] = [];
  const identities: Identity[] = [];
  parseAllDocuments(text).forEach((doc, index) => {
    const source = { file, document: index };
    if (doc.errors.length > 0) {
      for (const yamlError of doc.errors) {
        const at = yamlError.linePos?.[0];
        const where = at === undefined ? "" : ` at line ${at.line}, column ${at.col}`;
        errors.push({
          ...source,
          path: "",
          message: `YAML syntax error${where}: ${yamlError.message.split("\n")[0] ?? ""}`,
        });
      }
      return;
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return; // an empty document, e.g. after a trailing ---
    if (typeof value !== "object" || Array.isArray(value)) {
      errors.push({
        ...source,
        path: "",
        message: "must be a mapping with apiVersion, kind, metadata and spec",
      });
      return;
    }
    const kind = (value as { kind?: unknown }).kind;
    if (typeof kind !== "string" || !KINDS.includes(kind)) {
      errors.push({ ...source, path: "kind", message: `must be one of ${KINDS.join(", ")}` });
      return;
    }
    const name = (value as { metadata?: { name?: unknown } }).metadata?.name;
    // Even an invalid document claims its name: a duplicate is an error either way.
    if (typeof name === "string") identities.push({ kind, name, source });
    const schema = SCHEMAS[kind as keyof typeof SCHEMAS];
    const parsed = schema.safeParse(value);
    if (!parsed.success) {
      errors.push(...issuesToErrors(source, parsed.error));
      return;
    }
    documents.push({ kind, value: parsed.data, source } as ParsedDocument);
  });
  return { documents, errors, identities };
}

async function catalogFiles(path: string): Promise<string[]> {
  const info = await stat(path);
  if (info.isFile()) return [path];
  const files: string[] = [];
  for (const entry of (await readdir(path, { withFileTypes: true })).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    if (entry.name.startsWith(".")) continue;
    const child = join(path, entry.name);
    if (entry.isDirectory()) files.push(...(await catalogFiles(child)));
    else if ([".yaml", ".yml"].includes(extname(entry.name))) files.push(child);
  }
  return files;
}

/** Cross-document rules: unique names per kind, trains naming known services. */
function crossCheck(
  documents: readonly ParsedDocument[],
  identities: readonly Identity[],
): CatalogError[] {
  const errors: CatalogError[] = [];
  const seen = new Map<string, Source>();
  for (const identity of identities) {
    const key = `${identity.kind}/${identity.name}`;
    const first = seen.get(key);
    if (first === undefined) seen.set(key, identity.source);
    else {
      errors.push({
        ...identity.source,
        path: "metadata.name",
        message: `duplicate ${identity.kind} "${identity.name}" (first defined in ${first.file}#${first.document})`,
      });
    }
  }
  const services = new Set(identities.filter((d) => d.kind === "Service").map((d) => d.name));
  for (const doc of documents) {
    if (doc.kind !== "ReleaseTrain") continue;
    doc.value.spec.steps.forEach((step, index) => {
      if (!services.has(step.service)) {
        errors.push({
          ...doc.source,
          path: `spec.steps[${index}].service`,
          message: `unknown service "${step.service}"`,
        });
      }
    });
  }
  return errors;
}

/** Builds the catalog from validated documents, or lists every error found anywhere. */
export function assembleCatalog(parsed: readonly ParsedText[]): CatalogResult {
  const documents = parsed.flatMap((text) => text.documents);
  const identities = parsed.flatMap((text) => text.identities);
  const all = [...parsed.flatMap((text) => text.errors), ...crossCheck(documents, identities)];
  if (all.length > 0) {
    const order = (e: CatalogError) => `${e.file}\u0000${String(e.document).padStart(6, "0")}`;
    return { ok: false, errors: all.sort((a, b) => order(a).localeCompare(order(b))) };
  }
  const policies = documents.flatMap((d) =>
    d.kind === "Policy" ? [{ ...d.value, source: d.source }] : [],
  );
  const defaultPolicy =
    policies.find((p) => p.metadata.name === "default")?.spec ?? DEFAULT_POLICY_SPEC;
  return {
    ok: true,
    catalog: {
      defaultPolicy,
      policies,
      trains: documents.flatMap((d) =>
        d.kind === "ReleaseTrain" ? [{ ...d.value, source: d.source }] : [],
      ),
      services: documents.flatMap((d) =>
        d.kind === "Service"
          ? [
              {
                name: d.value.metadata.name,
                owner: d.value.metadata.owner,
                spec: d.value.spec,
                policy: resolvePolicy(defaultPolicy, d.value.spec.policy),
                source: d.source,
              },
            ]
          : [],
      ),
    },
  };
}

/**
 * Loads a catalog from a YAML file or a directory (recursively, `.yaml`/`.yml`, in name order).
 * Reports every error at once; never throws for bad input.
 */
export async function loadCatalog(path: string): Promise<CatalogResult> {
  let files: string[];
  try {
    files = await catalogFiles(path);
  } catch (error) {
    const reason =
      (error as NodeJS.ErrnoException).code === "ENOENT"
        ? "no such file or directory"
        : String(error);
    return {
      ok: false,
      errors: [{ file: path, document: 0, path: "", message: `cannot read catalog: ${reason}` }],
    };
  }
  if (files.length === 0) {
    return {
      ok: false,
      errors: [{ file: path, document: 0, path: "", message: "no .yaml or .yml files found" }],
    };
  }
  const parsed: ParsedText[] = [];
  for (const file of files) parsed.push(parseCatalogText(await readFile(file, "utf8"), file));
  return assembleCatalog(parsed);
}

/** `file#document: path: message`, the one-line form the CLI prints. */
export function formatCatalogError(error: CatalogError): string {
  return `${error.file}#${error.document}: ${error.path === "" ? "" : `${error.path}: `}${error.message}`;
}
