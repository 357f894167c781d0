import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { parseAllDocuments } from "yaml";
import {
  IMPORT_DEFAULTS,
  foreignFormat,
  formatImportIssue,
  importDocuments,
  importedYaml,
} from "@safedeploy/catalog";
import type { ImportOptions, SourceDocument } from "@safedeploy/catalog";
import { RepoPath } from "@safedeploy/schema";
import { EXIT, UsageError } from "../io.js";
import type { CliIo, Command } from "../io.js";

const STRATEGIES = ["canary", "blue_green", "rolling"] as const;

function optionsOf(values: {
  owner?: string | undefined;
  "rollback-path"?: string | undefined;
  strategy?: string | undefined;
}): ImportOptions {
  const owner = values.owner ?? IMPORT_DEFAULTS.owner;
  if (owner.trim() === "") throw new UsageError("--owner must not be empty");
  const rollbackPath = values["rollback-path"] ?? IMPORT_DEFAULTS.rollbackPath;
  if (!RepoPath.safeParse(rollbackPath.replaceAll("{service}", "x")).success) {
    throw new UsageError("--rollback-path must be a relative path inside the environment repo");
  }
  const strategy = values.strategy ?? IMPORT_DEFAULTS.strategy;
  if (!(STRATEGIES as readonly string[]).includes(strategy)) {
    throw new UsageError(`--strategy must be one of ${STRATEGIES.join(", ")}`);
  }
  return { owner, rollbackPath, strategy: strategy as ImportOptions["strategy"] };
}

/** The documents of FILE in the named format; everything else in it is an issue. */
async function readSources(
  format: "sloth" | "openslo",
  file: string,
  io: CliIo,
): Promise<{ sources: SourceDocument[]; problems: string[] }> {
  const text = await readFile(resolve(io.cwd ?? ".", file), "utf8");
  const sources: SourceDocument[] = [];
  const problems: string[] = [];
  parseAllDocuments(text).forEach((doc, index) => {
    if (doc.errors.length > 0) {
      problems.push(
        `${file}#${index}: YAML syntax error: ${doc.errors[0]?.message.split("\n")[0] ?? ""}`,
      );
      return;
    }
    const value: unknown = doc.toJS();
    if (value === null || value === undefined) return;
    if (foreignFormat(value) !== format) {
      problems.push(
        `${file}#${index}: not imported: not a ${format === "sloth" ? "Sloth prometheus/v1 spec" : "OpenSLO document"}`,
      );
      return;
    }
    sources.push({ file, document: index, value: value as Record<string, unknown> });
  });
  return { sources, problems };
}

/** `safedeploy import sloth|openslo FILE...`: 0 some SLOs imported, 1 none, 2 usage. */
export const importCommand: Command = {
  name: "import",
  summary: "turn Sloth or OpenSLO SLO files into catalog Services (exit 0 imported, 1 nothing)",
  usage: `Usage: safedeploy import sloth|openslo FILE... [--owner NAME] [--rollback-path PATH]
                         [--strategy canary|blue_green|rolling] [--out DIR]

Converts Sloth prometheus/v1 specs or OpenSLO v1 documents (SLO, SLI, DataSource,
AlertPolicy, AlertCondition; references resolve across the FILEs) into catalog Service
documents, printed on stdout or written to DIR/<service>.yaml. What the source lacks comes
from the options:
  --owner NAME          owner when the source names none (Sloth labels.owner, OpenSLO
                        metadata.labels.owner)                     default: ${IMPORT_DEFAULTS.owner}
  --rollback-path PATH  rollback.path; {service} is the service name
                                                                   default: ${IMPORT_DEFAULTS.rollbackPath}
  --strategy S          deployment strategy (canary: steps 10,50,100, bakeTime 10m)
                                                                   default: ${IMPORT_DEFAULTS.strategy}
Everything not carried over is printed on stderr as FILE#DOCUMENT: PATH: not imported|ignored:
WHY; nothing is guessed. Exit 0 when at least one SLO was imported (even with such lines),
1 when none could be, 2 usage error.`,
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        owner: { type: "string" },
        "rollback-path": { type: "string" },
        strategy: { type: "string" },
        out: { type: "string" },
      },
    });
    const [format, ...files] = positionals;
    if (format !== "sloth" && format !== "openslo")
      throw new UsageError("name a format: sloth or openslo");
    if (files.length === 0) throw new UsageError("name at least one FILE");
    const options = optionsOf(values);
    const sources: SourceDocument[] = [];
    for (const file of files) {
      let read;
      try {
        read = await readSources(format, file, io);
      } catch (error) {
        io.stderr(`${file}: cannot read: ${(error as Error).message}\n`);
        return EXIT.negative;
      }
      sources.push(...read.sources);
      for (const problem of read.problems) io.stderr(`${problem}\n`);
    }
    const result = importDocuments(sources, options);
    for (const issue of result.issues) io.stderr(`${formatImportIssue(issue)}\n`);
    const slos = result.services.reduce((n, s) => n + s.sloNames.length, 0);
    if (slos === 0) {
      io.stderr("nothing imported\n");
      return EXIT.negative;
    }
    if (values.out === undefined) io.stdout(importedYaml(result));
    else {
      const dir = resolve(io.cwd ?? ".", values.out);
      await mkdir(dir, { recursive: true });
      for (const service of result.services) {
        const one = importedYaml({ services: [service], issues: [] });
        await writeFile(join(dir, `${service.document.metadata.name}.yaml`), one, "utf8");
      }
    }
    io.stderr(`imported ${slos} SLO(s) into ${result.services.length} service(s)\n`);
    return EXIT.ok;
  },
};
