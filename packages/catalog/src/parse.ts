import { Composer, LineCounter, Parser } from "yaml";
import { CatalogDocument, DEFAULT_POLICY_SPEC, resolvePolicy } from "@safedeploy/schema";
import type {
  FreezeWindowDocument,
  NotifierDocument,
  PolicyDocument,
  PolicySpec,
  ReleaseTrainDocument,
  ServiceDocument,
} from "@safedeploy/schema";
import type { z } from "zod";
import { foreignFormat, importDocuments } from "./import/index.js";
import type { SourceDocument } from "./import/index.js";

/** One thing wrong with a catalog: where (file, 0-based document, field path) and what. */
export interface CatalogError {
  readonly file: string;
  /** 0-based index of the YAML document in its file. */
  readonly document: number;
  /** e.g. `spec.slos[0].objective`; empty for the document or file as a whole. */
  readonly path: string;
  readonly message: string;
}

/** Where a document came from. */
export interface Source {
  readonly file: string;
  readonly document: number;
}

/** A Service as the rest of the system sees it, with its effective policy. */
export interface CatalogService {
  readonly name: string;
  readonly owner: string;
  readonly spec: ServiceDocument["spec"];
  /** The default Policy with the Service's own `spec.policy` applied. */
  readonly policy: PolicySpec;
  readonly source: Source;
}

/** A valid catalog: every document checked, names unique, policies resolved. */
export interface Catalog {
  readonly services: readonly CatalogService[];
  readonly policies: readonly (PolicyDocument & { readonly source: Source })[];
  readonly trains: readonly (ReleaseTrainDocument & { readonly source: Source })[];
  /** `kind: Notifier` documents: where the notifier sends which events. */
  readonly notifiers: readonly (NotifierDocument & { readonly source: Source })[];
  /** `kind: FreezeWindow` documents: recurring windows the policy service evaluates. */
  readonly freezeWindows: readonly (FreezeWindowDocument & { readonly source: Source })[];
  /** The Policy named `default`, else {@link DEFAULT_POLICY_SPEC}. */
  readonly defaultPolicy: PolicySpec;
}

/** A catalog, or every error found in it. */
export type CatalogResult =
  | { readonly ok: true; readonly catalog: Catalog }
  | { readonly ok: false; readonly errors: readonly CatalogError[] };

/** A document's kind and name, known even when the rest of it is invalid. */
export interface DocumentIdentity {
  readonly kind: CatalogDocument["kind"];
  readonly name: string;
  readonly source: Source;
}

/** A validated document and where it came from. */
export interface ParsedDocument {
  readonly document: CatalogDocument;
  readonly source: Source;
}

/** What one file's text holds: its valid documents, its errors, and the names it claims. */
export interface ParsedText {
  readonly file: string;
  readonly documents: readonly ParsedDocument[];
  readonly errors: readonly CatalogError[];
  /** Every kind and name claimed, by valid and invalid documents alike (for duplicates). */
  readonly identities: readonly DocumentIdentity[];
  /** Sloth and OpenSLO documents, converted with the import defaults when the catalog is assembled. */
  readonly foreign?: readonly SourceDocument[];
}

const KINDS: readonly string[] = ["Service", "Policy", "ReleaseTrain", "Notifier", "FreezeWindow"];

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

function identityOf(value: object, source: Source): DocumentIdentity | undefined {
  const { kind, metadata } = value as { kind?: unknown; metadata?: unknown };
  if (typeof kind !== "string" || !KINDS.includes(kind)) return undefined;
  if (typeof metadata !== "object" || metadata === null) return undefined;
  const { name } = metadata as { name?: unknown };
  if (typeof name !== "string") return undefined;
  return { kind: kind as DocumentIdentity["kind"], name, source };
}

/**
 * Parses the YAML documents of one file's text and validates each one. Pure; never throws:
 * syntax errors (with line and column) and schema errors come back in `errors`.
 */
export function parseCatalogText(text: string, file: string): ParsedText {
  const documents: ParsedDocument[] = [];
  const errors: CatalogError[] = [];
  const identities: DocumentIdentity[] = [];
  const foreign: SourceDocument[] = [];
  // One document at a time (what parseAllDocuments does, without holding every document's syntax
  // tree at once): a 10,000-service catalog peaked at 350 MB of heap the services never gave back.
  const lineCounter = new LineCounter();
  const composed = new Composer().compose(
    new Parser(lineCounter.addNewLine).parse(text),
    true,
    text.length,
  );
  let index = -1;
  for (const yamlDocument of composed) {
    index += 1;
    const source = { file, document: index };
    if (yamlDocument.errors.length > 0) {
      for (const yamlError of yamlDocument.errors) {
        const at = yamlError.linePos?.[0] ?? lineCounter.linePos(yamlError.pos[0]);
        const where = ` at line ${at.line}, column ${at.col}`;
        errors.push({
          ...source,
          path: "",
          message: `YAML syntax error${where}: ${yamlError.message.split("\n")[0] ?? ""}`,
        });
      }
      continue;
    }
    let value: unknown;
    try {
      value = yamlDocument.toJS();
    } catch (error) {
      // e.g. an alias expanding too often ("billion laughs"), refused by the yaml package.
      errors.push({ ...source, path: "", message: `YAML error: ${(error as Error).message}` });
      continue;
    }
    if (value === null || value === undefined) continue; // an empty document, e.g. after a trailing ---
    if (typeof value !== "object" || Array.isArray(value)) {
      errors.push({
        ...source,
        path: "",
        message: "must be a mapping with apiVersion, kind, metadata and spec",
      });
      continue;
    }
    // Even an invalid document claims its name: a duplicate is an error either way.
    if (foreignFormat(value) !== undefined) {
      foreign.push({ ...source, value: value as Record<string, unknown> });
      continue;
    }
    const identity = identityOf(value, source);
    if (identity !== undefined) identities.push(identity);
    // reportInput: an issue must tell a missing field ("is required") from a wrong one.
    const parsed = CatalogDocument.safeParse(value, { reportInput: true });
    if (parsed.success) documents.push({ document: parsed.data, source });
    else errors.push(...issuesToErrors(source, parsed.error));
  }
  return { file, documents, errors, identities, ...(foreign.length > 0 ? { foreign } : {}) };
}

/** Cross-document rules: one name per kind, release trains naming known services. */
function crossCheck(parsed: readonly ParsedText[]): CatalogError[] {
  const errors: CatalogError[] = [];
  const firstOf = new Map<string, Source>();
  for (const identity of parsed.flatMap((text) => text.identities)) {
    const key = `${identity.kind}/${identity.name}`;
    const first = firstOf.get(key);
    if (first === undefined) firstOf.set(key, identity.source);
    else {
      errors.push({
        ...identity.source,
        path: "metadata.name",
        message: `duplicate ${identity.kind} "${identity.name}" (first defined in ${first.file}#${first.document})`,
      });
    }
  }
  for (const { document, source } of parsed.flatMap((text) => text.documents)) {
    if (document.kind !== "Notifier") continue;
    (document.spec.services ?? []).forEach((service, index) => {
      if (!firstOf.has(`Service/${service}`)) {
        errors.push({
          ...source,
          path: `spec.services[${index}]`,
          message: `unknown service "${service}"`,
        });
      }
    });
  }
  for (const { document, source } of parsed.flatMap((text) => text.documents)) {
    if (document.kind !== "FreezeWindow") continue;
    (document.spec.services ?? []).forEach((service, index) => {
      if (service !== "*" && !firstOf.has(`Service/${service}`)) {
        errors.push({
          ...source,
          path: `spec.services[${index}]`,
          message: `unknown service "${service}"`,
        });
      }
    });
  }
  for (const { document, source } of parsed.flatMap((text) => text.documents)) {
    if (document.kind !== "ReleaseTrain") continue;
    document.spec.steps.forEach((step, index) => {
      // Invalid services count as known: their own errors say what is wrong with them.
      if (!firstOf.has(`Service/${step.service}`)) {
        errors.push({
          ...source,
          path: `spec.steps[${index}].service`,
          message: `unknown service "${step.service}"`,
        });
      }
    });
  }
  return errors;
}

/**
 * The Services made from the Sloth and OpenSLO documents of all files (references resolve across
 * files), with the import defaults; what cannot be mapped is an error naming its file and path.
 */
function importedText(parsed: readonly ParsedText[]): ParsedText {
  const result = importDocuments(parsed.flatMap((text) => text.foreign ?? []));
  const errors = result.issues
    .filter((issue) => issue.level === "unmapped")
    .map((issue) => ({
      file: issue.file,
      document: issue.document,
      path: issue.path,
      message: `cannot import: ${issue.message}`,
    }));
  const documents = result.services.map(({ document, source }) => ({ document, source }));
  const identities = result.services.map(({ document, source }) => ({
    kind: "Service" as const,
    name: document.metadata.name,
    source,
  }));
  return { file: "", documents, errors, identities };
}

/**
 * Builds the catalog from the parsed files (in the order given), or returns every error found
 * anywhere, ordered by file and document. Pure.
 */
export function assembleCatalog(given: readonly ParsedText[]): CatalogResult {
  const parsed = [...given, importedText(given)];
  const errors = [...parsed.flatMap((text) => text.errors), ...crossCheck(parsed)];
  if (errors.length > 0) {
    const fileOrder = new Map(parsed.map((text, index) => [text.file, index]));
    const rank = (error: CatalogError) => fileOrder.get(error.file) ?? parsed.length;
    // Array.prototype.sort is stable: a document's errors keep the order the schema found them.
    errors.sort((a, b) => rank(a) - rank(b) || a.document - b.document);
    return { ok: false, errors };
  }
  const documents = parsed.flatMap((text) => text.documents);
  const policies = documents.flatMap(({ document, source }) =>
    document.kind === "Policy" ? [{ ...document, source }] : [],
  );
  const defaultPolicy =
    policies.find((policy) => policy.metadata.name === "default")?.spec ?? DEFAULT_POLICY_SPEC;
  const services = documents.flatMap(({ document, source }): CatalogService[] =>
    document.kind === "Service"
      ? [
          {
            name: document.metadata.name,
            owner: document.metadata.owner,
            spec: document.spec,
            policy: resolvePolicy(defaultPolicy, document.spec.policy),
            source,
          },
        ]
      : [],
  );
  const trains = documents.flatMap(({ document, source }) =>
    document.kind === "ReleaseTrain" ? [{ ...document, source }] : [],
  );
  const notifiers = documents.flatMap(({ document, source }) =>
    document.kind === "Notifier" ? [{ ...document, source }] : [],
  );
  const freezeWindows = documents.flatMap(({ document, source }) =>
    document.kind === "FreezeWindow" ? [{ ...document, source }] : [],
  );
  return {
    ok: true,
    catalog: { services, policies, trains, notifiers, freezeWindows, defaultPolicy },
  };
}

/** `file#document: path: message` (no `path: ` when the error is about the whole document). */
export function formatCatalogError(error: CatalogError): string {
  const path = error.path === "" ? "" : `${error.path}: `;
  return `${error.file}#${error.document}: ${path}${error.message}`;
}
