import { parseArgs } from "node:util";
import { formatCatalogError, loadCatalog } from "@safedeploy/catalog";
import type { CatalogResult } from "@safedeploy/catalog";
import { EXIT, UsageError } from "../io.js";
import type { Command } from "../io.js";

const plural = (count: number, one: string, many: string) => `${count} ${count === 1 ? one : many}`;

function asJson(result: CatalogResult): unknown {
  if (!result.ok) return { valid: false, errors: result.errors };
  const { services, policies, trains } = result.catalog;
  return {
    valid: true,
    errors: [],
    services: services.map((service) => service.name),
    policies: policies.map((policy) => policy.metadata.name),
    trains: trains.map((train) => train.metadata.name),
  };
}

/** `safedeploy validate [PATH] [--json]`: 0 valid, 1 invalid. */
export const validate: Command = {
  name: "validate",
  summary: "validate a catalog (exit 0 valid, 1 invalid)",
  usage: `Usage: safedeploy validate [PATH] [--json]

Validates every catalog document under PATH (a YAML file, or a directory searched
recursively for .yaml and .yml files). PATH defaults to $SAFEDEPLOY_CATALOG, else ./catalog.
Sloth prometheus/v1 and OpenSLO v1 files are accepted too, converted as "safedeploy import"
does with its defaults; what cannot be converted is an error.
Every error is printed on stderr as FILE#DOCUMENT: FIELD.PATH: MESSAGE (DOCUMENT counts
from 0 within the file), then a count. Exit 0 valid, 1 invalid, 2 usage error.

Options:
  --json  print {"valid", "errors": [{file, document, path, message}], ...} on stdout`,
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: { json: { type: "boolean", default: false } },
    });
    if (positionals.length > 1) throw new UsageError("validate takes at most one PATH");
    const path = positionals[0] ?? io.env.SAFEDEPLOY_CATALOG ?? "./catalog";
    const result = await loadCatalog(path, { cwd: io.cwd });
    if (values.json) {
      io.stdout(`${JSON.stringify(asJson(result), null, 2)}\n`);
      return result.ok ? EXIT.ok : EXIT.negative;
    }
    if (!result.ok) {
      for (const error of result.errors) io.stderr(`${formatCatalogError(error)}\n`);
      io.stderr(`${path}: invalid (${plural(result.errors.length, "error", "errors")})\n`);
      return EXIT.negative;
    }
    const { services, policies, trains } = result.catalog;
    io.stdout(
      `${path}: valid (${plural(services.length, "service", "services")}, ` +
        `${plural(policies.length, "policy", "policies")}, ` +
        `${plural(trains.length, "release train", "release trains")})\n`,
    );
    return EXIT.ok;
  },
};
