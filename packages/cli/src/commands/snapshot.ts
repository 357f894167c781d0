import { parseArgs } from "node:util";
import { SnapshotAnswer, apiPath, printAnswer, withApi } from "../api.js";
import { verdictOf } from "../api.js";
import type {
  Freeze,
  Guard,
  Incident,
  Proposal,
  ServiceStatus,
  SnapshotAnswer as Snapshot,
} from "../api.js";
import { UsageError } from "../io.js";
import type { Command } from "../io.js";
import { budgetBar, formatTable, shortTime } from "../table.js";
import type { Cell } from "../table.js";

/** `allowed`, `blocked (code, code)`, `unknown (code)`, or `-` before the first verdict. */
export function gateCell(gate: ServiceStatus["gate"]): string {
  if (gate === null) return "-";
  const verdict = verdictOf(gate);
  if (verdict === "pass") return "allowed";
  const word = verdict === "unknown" ? "unknown" : "blocked";
  const codes = gate.reasons.map((reason) => reason.code);
  return codes.length === 0 ? word : `${word} (${codes.join(", ")})`;
}

/** One row per SLO (the service's name, incident and gate on its first row only). */
export function servicesTable(services: readonly ServiceStatus[]): string {
  const rows: Cell[][] = [];
  for (const service of services) {
    const slos =
      service.slos.length === 0
        ? [{ slo: null, severity: service.severity, budgetRemaining: service.budgetRemaining }]
        : service.slos;
    slos.forEach((slo, index) => {
      rows.push([
        index === 0 ? service.name : "",
        slo.slo,
        budgetBar(slo.budgetRemaining),
        slo.severity,
        index === 0 ? service.activeIncident : "",
        index === 0 ? gateCell(service.gate) : "",
      ]);
    });
  }
  return formatTable(["SERVICE", "SLO", "BUDGET LEFT", "SEVERITY", "INCIDENT", "GATE"], rows);
}

export function incidentsTable(incidents: readonly Incident[]): string {
  return formatTable(
    ["ID", "SERVICE", "STATE", "SEVERITY", "CLASS", "OPENED", "UPDATED"],
    incidents.map((incident) => [
      incident.id,
      incident.service,
      incident.state,
      incident.severity,
      incident.class,
      shortTime(incident.openedAt),
      shortTime(incident.updatedAt),
    ]),
  );
}

export function proposalsTable(proposals: readonly Proposal[]): string {
  return formatTable(
    ["ID", "SERVICE", "KIND", "STATE", "INCIDENT", "APPROVALS", "CREATED"],
    proposals.map((proposal) => [
      proposal.id,
      proposal.service,
      proposal.kind,
      proposal.state,
      proposal.incidentId,
      proposal.approvals.length,
      shortTime(proposal.createdAt),
    ]),
  );
}

export function freezesTable(freezes: readonly Freeze[]): string {
  return formatTable(
    ["SERVICE", "ORIGIN", "FROM", "UNTIL", "BY", "REASON"],
    freezes.map((freeze) => [
      freeze.service,
      freeze.origin,
      shortTime(freeze.from),
      shortTime(freeze.until),
      freeze.actor,
      freeze.reason,
    ]),
  );
}

export function guardsTable(guards: readonly Guard[]): string {
  return formatTable(
    ["SERVICE", "TRAIN", "STEP", "SINCE", "CLEARED", "WHY"],
    guards.map((guard) => [
      guard.service,
      `${guard.train} (${guard.trainId})`,
      guard.step === null ? "-" : guard.step + 1,
      shortTime(guard.at),
      guard.clearedAt === null ? "-" : `${shortTime(guard.clearedAt)} by ${guard.clearedBy ?? "?"}`,
      guard.reason,
    ]),
  );
}

function describe(snapshot: Snapshot): string {
  const blocked =
    snapshot.blocked ??
    snapshot.services.filter((s) => s.gate?.allowed === false).map((s) => s.name);
  return [
    `Snapshot${snapshot.at === undefined ? "" : ` at ${shortTime(snapshot.at)}`}: ` +
      `${snapshot.services.length} services, ${snapshot.incidents.length} active incidents, ` +
      `${snapshot.proposals.length} open proposals, ${snapshot.freezes.length} freezes` +
      (snapshot.guards.length === 0 ? "" : `, ${snapshot.guards.length} failed release guards`) +
      "; " +
      `promotion blocked: ${blocked.length === 0 ? "none" : blocked.join(", ")}\n`,
    `\nServices\n${servicesTable(snapshot.services)}`,
    `\nActive incidents\n${incidentsTable(snapshot.incidents)}`,
    `\nOpen proposals\n${proposalsTable(snapshot.proposals)}`,
    `\nFreezes\n${freezesTable(snapshot.freezes)}`,
    ...(snapshot.guards.length === 0
      ? []
      : [
          `\nFailed release guards (each blocks its service until its revert is executed or ` +
            `an approver clears it: safedeploy guards clear SERVICE --reason TEXT)\n` +
            guardsTable(snapshot.guards),
        ]),
  ].join("");
}

/** `safedeploy snapshot [--json]`. */
export const snapshot: Command = {
  name: "snapshot",
  summary: "services, budgets, incidents, proposals and freezes of a running control plane",
  usage: `Usage: safedeploy snapshot [--json]

Prints the whole system from the API at $SAFEDEPLOY_API (default http://127.0.0.1:8080,
token $SAFEDEPLOY_TOKEN): every service with the error budget left per SLO as a bar, its
severity, active incident and promotion gate (allowed, blocked or unknown, with the reason
codes); then the active incidents, the proposals waiting for a human or the actuator, the
freezes in force and the failed release guards that block a service.
Exit 0, 1 when the API cannot be reached or refuses, 2 usage error.

Options:
  --json  print the API's snapshot {at, services, incidents, proposals, freezes, guards, blocked}`,
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: { json: { type: "boolean", default: false } },
    });
    if (positionals.length > 0) throw new UsageError("snapshot takes no arguments");
    return withApi("snapshot", io, async (api) => {
      const answer = await api.get(apiPath(["snapshot"]), SnapshotAnswer);
      return printAnswer(io, answer, values.json, describe);
    });
  },
};
