import { parseArgs } from "node:util";
import { resolve } from "node:path";
import { formatCatalogError, loadCatalog } from "@safedeploy/catalog";
import { EXIT, UsageError } from "../io.js";
import type { Command } from "../io.js";

export const validate: Command = {
  name: "validate",
  summary: "validate a catalog (exit 0 valid, 1 invalid)",
  usage: `safedeploy validate [PATH] [--json]

Validates every catalog document under PATH (a YAML file or a directory, searched
recursively for .yaml and .yml). PATH defaults to $SAFEDEPLOY_CATALOG, else ./catalog.
Every error is printed as FILE#DOCUMENT: FIELD.PATH: MESSAGE.`,
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: { json: { type: "boolean", default: false } },
    });
    if (positionals.length > 1) throw new UsageError("validate takes at most one PATH");
    const path = positionals[0] ?? io.env.SAFEDEPLOY_CATALOG ?? "./catalog";
    const result = await loadCatalog(resolve(io.cwd, path));
    // Paths are shown as given, relative to where the user stands.
    const shown = (text: string) => text.replaceAll(`${resolve(io.cwd)}/`, "");
    if (values.json) {
      io.stdout(
        `${JSON.stringify(
          result.ok
            ? {
                valid: true,
                services: result.catalog.services.map((s) => s.name),
                policies: result.catalog.policies.map((p) => p.metadata.name),
                trains: result.catalog.trains.map((t) => t.metadata.name),
              }
            : {
                valid: false,
                errors: result.errors.map((e) => ({
                  ...e,
                  file: shown(e.file),
                  message: shown(e.message),
                })),
              },
          null,
          2,
        )}\n`,
      );
      return result.ok ? EXIT.ok : EXIT.negative;
    }
    if (!result.ok) {
      for (const error of result.errors) io.stderr(`${shown(formatCatalogError(error))}\n`);
      io.stderr(
        `${result.errors.length} error${result.errors.length === 1 ? "" : "s"} in ${path}\n`,
      );
      return EXIT.negative;
    }
    const { services, policies, trains } = result.catalog;
    io.stdout(
      `${path}: valid (${services.length} service${services.length === 1 ? "" : "s"}, ` +
        `${policies.length} polic${policies.length === 1 ? "y" : "ies"}, ` +
        `${trains.length} release train${trains.length === 1 ? "" : "s"})\n`,
    );
    return EXIT.ok;
  },
};
