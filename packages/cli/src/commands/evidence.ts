import { mkdir, writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { EVIDENCE_PARTS, evidenceBundle } from "@safedeploy/audit";
import { EXIT, UsageError } from "../io.js";
import type { Command } from "../io.js";
import { databaseUrlOf, withDatabase } from "./audit.js";

/** `safedeploy evidence export INCIDENT --out DIR [--json]`: 0 written, 1 unknown incident. */
export const evidence: Command = {
  name: "evidence",
  summary: "export an incident's evidence bundle from the audit log",
  usage: `Usage: safedeploy evidence export INCIDENT --out DIR [--json]

Builds the evidence bundle of INCIDENT from the audit log (PostgreSQL at $DATABASE_URL) and
writes DIR/incident-INCIDENT/{decision,slo,budget,proposal,approval,resolution}.json. Each file
holds the stored messages ("items") and, in the same order, where each came from ("sources":
stream, seq, position, messageId, type and the audit hash that seals it).
Exit 0 written, 1 unknown incident, 2 usage error (including DATABASE_URL not set).

Options:
  --out DIR  directory to write into (created if missing); required
  --json     print {"incident", "directory", "files": [{name, items}]} on stdout`,
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        out: { type: "string" },
        json: { type: "boolean", default: false },
      },
    });
    if (positionals[0] !== "export") {
      throw new UsageError(
        positionals[0] === undefined
          ? "evidence needs a subcommand: export"
          : `unknown subcommand "${positionals[0]}"`,
      );
    }
    const incident = positionals[1];
    if (incident === undefined) throw new UsageError("evidence export needs an INCIDENT id");
    if (positionals.length > 2) throw new UsageError("evidence export takes one INCIDENT");
    if (!/^[A-Za-z0-9._:-]+$/.test(incident)) {
      throw new UsageError(`not an incident id: ${JSON.stringify(incident)}`);
    }
    if (values.out === undefined || values.out === "") {
      throw new UsageError("evidence export needs --out DIR");
    }
    const url = databaseUrlOf(io);
    const bundle = await withDatabase(url, (pool) => evidenceBundle(pool, incident));
    if (bundle === null) {
      io.stderr(`safedeploy evidence: no incident ${incident} in the audit log\n`);
      return EXIT.negative;
    }
    const directory = resolve(io.cwd ?? process.cwd(), values.out, `incident-${incident}`);
    await mkdir(directory, { recursive: true });
    const files: { name: string; items: number }[] = [];
    for (const name of EVIDENCE_PARTS) {
      const part = bundle[name];
      const document = {
        incidentId: bundle.incidentId,
        service: bundle.service,
        part: name,
        items: part.items,
        sources: part.sources,
      };
      await writeFile(resolve(directory, `${name}.json`), `${JSON.stringify(document, null, 2)}\n`);
      files.push({ name: `${name}.json`, items: part.items.length });
    }
    if (values.json) {
      io.stdout(`${JSON.stringify({ incident, directory, files }, null, 2)}\n`);
    } else {
      io.stdout(
        `evidence of ${incident} written to ${directory}: ` +
          `${files.map((f) => `${f.name} (${f.items})`).join(", ")}\n`,
      );
    }
    return EXIT.ok;
  },
};
