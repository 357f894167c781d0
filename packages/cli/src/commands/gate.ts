import { parseArgs } from "node:util";
import { ResourceName } from "@safedeploy/schema";
import type { GateReason } from "@safedeploy/schema";
import { GateAnswer, apiPath, printJson, withApi } from "../api.js";
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

/** `safedeploy gate SERVICE [--json]`: 0 allowed, 3 blocked. */
export const gate: Command = {
  name: "gate",
  summary: "may SERVICE be promoted now? (exit 0 allowed, 3 blocked)",
  usage: `Usage: safedeploy gate SERVICE [--json]

Asks the API at $SAFEDEPLOY_API (token $SAFEDEPLOY_TOKEN) whether SERVICE may be promoted
now and prints every reason it may not, as CODE: MESSAGE (VALUE vs THRESHOLD). Meant for CI
pipelines: exit 0 allowed, 3 blocked, 1 when the API cannot be reached, refuses or does not
know SERVICE, 2 usage error.

Options:
  --json  print the API's answer {service, allowed, reasons: [{code, message, value, threshold}], evaluatedAt}`,
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
          value.evaluatedAt === undefined ? "" : ` (evaluated ${shortTime(value.evaluatedAt)})`;
        io.stdout(`${service}: promotion ${value.allowed ? "allowed" : "BLOCKED"}${at}\n`);
        for (const reason of value.reasons) io.stdout(`  ${describeReason(reason)}\n`);
      }
      return value.allowed ? EXIT.ok : EXIT.blocked;
    });
  },
};
