import { parseArgs } from "node:util";
import { ResourceName } from "@safedeploy/schema";
import type { GateReason } from "@safedeploy/schema";
import { GateAnswer, apiPath, printJson, verdictOf, withApi } from "../api.js";
import { EXIT, UsageError } from "../io.js";
import type { Command } from "../io.js";
import { shortTime } from "../table.js";

const measured = (value: GateReason["value"]) =>
  typeof value === "number" ? String(value) : value;

/** `code: message (value vs threshold)`, the parenthesis only when both are known. */
export function describeReason(reason: GateReason): string {
  const value = measured(reason.value);
  const threshold = measured(reason.threshold);
  const against =
    value === null && threshold === null ? "" : ` (${value ?? "-"} vs ${threshold ?? "-"})`;
  return `${reason.code}: ${reason.message}${against}`;
}

const EXIT_FOR = { pass: EXIT.ok, block: EXIT.blocked, unknown: EXIT.unknown } as const;
const SAYS = {
  pass: "allowed",
  block: "BLOCKED",
  unknown: "UNKNOWN (the gate cannot see: no data, stale evidence or failed queries)",
} as const;

/** `safedeploy gate SERVICE [--json]`: 0 pass, 3 block, 4 unknown. */
export const gate: Command = {
  name: "gate",
  summary: "may SERVICE be promoted now? (exit 0 pass, 3 block, 4 unknown)",
  usage: `Usage: safedeploy gate SERVICE [--json]

Asks the API at $SAFEDEPLOY_API (token $SAFEDEPLOY_TOKEN) whether SERVICE may be promoted
now and prints every reason it may not, as CODE: MESSAGE (VALUE vs THRESHOLD), and how old
the evidence is. Meant for CI pipelines: exit 0 pass, 3 block (a reason says no), 4 unknown
(no data, evidence older than the policy's staleAfter, or failed queries: never a pass),
1 when the API cannot be reached, refuses or does not know SERVICE, 2 usage error.

Options:
  --json  print the API's answer {service, allowed, verdict, reasons: [{code, message, value, threshold}], evaluatedAt, evidenceAge}`,
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: { json: { type: "boolean", default: false } },
    });
    const [service, ...extra] = positionals;
    if (service === undefined) throw new UsageError("gate needs a SERVICE");
    if (extra.length > 0) throw new UsageError("gate takes one SERVICE");
    if (!ResourceName.safeParse(service).success) {
      throw new UsageError(`not a service name: ${JSON.stringify(service)}`);
    }
    return withApi("gate", io, async (api) => {
      const { value, raw } = await api.get(apiPath(["services", service, "gate"]), GateAnswer);
      if (values.json) {
        printJson(io, raw);
      } else {
        const at =
          value.evaluatedAt === undefined ? "" : ` (evaluated ${shortTime(value.evaluatedAt)}`;
        const age =
          value.evidenceAge === undefined || value.evidenceAge === null
            ? at === ""
              ? ""
              : ")"
            : `${at === "" ? " (" : ", "}evidence ${value.evidenceAge} s old)`;
        io.stdout(`${service}: promotion ${SAYS[verdictOf(value)]}${at}${age}\n`);
        for (const reason of value.reasons) io.stdout(`  ${describeReason(reason)}\n`);
      }
      return EXIT_FOR[verdictOf(value)];
    });
  },
};
