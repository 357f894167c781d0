import { parseArgs } from "node:util";
import { ProposalState } from "@safedeploy/schema";
import { Proposal, apiPath, listOf, printAnswer, withApi } from "../api.js";
import { enumOption, idArgument, onlyOptions, serviceOption } from "../args.js";
import { UsageError } from "../io.js";
import type { Command } from "../io.js";
import { formatTable, shortTime } from "../table.js";
import { proposalsTable } from "./snapshot.js";

/** The proposal's fields, approvals, action (branch, commit, PR) and the diff it pushed. */
export function describeProposal(proposal: Proposal): string {
  const out = [
    `${proposal.id}  ${proposal.kind}  ${proposal.service}  ${proposal.state}\n`,
    `  incident ${proposal.incidentId ?? "-"}, created ${shortTime(proposal.createdAt)}\n`,
  ];
  if (proposal.summary !== undefined && proposal.summary !== "")
    out.push(`  ${proposal.summary}\n`);
  const target = proposal.target ?? proposal.preview?.target ?? null;
  if (target !== null) {
    out.push(
      `  reverts ${target.commit.slice(0, 12)} "${target.subject}" by ${target.author}, ` +
        `committed ${shortTime(target.committedAt)}\n  why that commit: ${target.why}\n`,
    );
  }
  const harm = proposal.preview?.harm ?? null;
  if (harm !== null) out.push(`  needs triage: the revert would re-apply harm (${harm})\n`);
  if (proposal.failure !== undefined && proposal.failure !== null) {
    out.push(
      `  action failed${proposal.failure.needsTriage === true ? " (needs triage)" : ""}: ` +
        `${proposal.failure.reason}\n`,
    );
  }
  out.push(
    `\nApprovals\n${formatTable(
      ["AT", "BY", "REASON"],
      proposal.approvals.map((a) => [shortTime(a.at), a.by, a.reason]),
    )}`,
  );
  const action = proposal.action;
  if (action === null) {
    out.push("\nAction\n(not executed yet)\n");
    const preview = proposal.preview;
    if (preview?.error != null) out.push(`\nPreview\n(no diff: ${preview.error})\n`);
    else if (preview != null && preview.diff !== "") {
      const diff = preview.diff.endsWith("\n") ? preview.diff : `${preview.diff}\n`;
      out.push(`\nDiff approving would push (dry run)\n${diff}`);
    }
  } else {
    out.push(
      `\nAction\n  branch  ${action.branch}\n  commit  ${action.commit}\n` +
        `  PR      ${action.prUrl ?? "-"}\n`,
    );
    if (action.diff !== "") {
      out.push(`\nDiff\n${action.diff.endsWith("\n") ? action.diff : `${action.diff}\n`}`);
    }
  }
  return out.join("");
}

const USAGE = `Usage: safedeploy proposals list [--state STATE] [--service SERVICE] [--json]
       safedeploy proposals show ID [--json]
       safedeploy proposals approve ID [--reason TEXT] [--json]
       safedeploy proposals reject ID --reason TEXT [--json]

Proposals of the control plane at $SAFEDEPLOY_API (default http://127.0.0.1:8080, token
$SAFEDEPLOY_TOKEN).
  list     proposals, newest first, optionally in one state and/or of one service
  show     one proposal: approvals, the action's branch, commit and pull request, and the diff
  approve  approve it (needs an approver token; approving again changes nothing)
  reject   reject it, saying why (needs an approver token)
STATE is one of ${ProposalState.options.join(", ")}.
Exit 0, 1 when the API cannot be reached or refuses (message shown), 2 usage error.

Options:
  --state STATE      list: only proposals in this state
  --service SERVICE  list: only this service's proposals
  --reason TEXT      approve (optional) / reject (required): recorded with your token's name
  --json             print the API's JSON answer`;

/** `safedeploy proposals list|show|approve|reject`. */
export const proposals: Command = {
  name: "proposals",
  summary: "list, show, approve and reject proposals (list | show ID | approve ID | reject ID)",
  usage: USAGE,
  async run(args, io) {
    const { values, positionals } = parseArgs({
      args: [...args],
      allowPositionals: true,
      options: {
        json: { type: "boolean", default: false },
        service: { type: "string" },
        state: { type: "string" },
        reason: { type: "string" },
      },
    });
    const [sub, ...rest] = positionals;
    const onlyFor = (allowed: readonly string[]) => {
      onlyOptions(`proposals ${sub ?? ""}`, values, allowed);
    };
    switch (sub) {
      case "list": {
        onlyFor(["service", "state"]);
        if (rest.length > 0) throw new UsageError("proposals list takes no arguments");
        const filter = {
          state: enumOption(values.state, ProposalState, "proposal state"),
          service: serviceOption(values.service),
        };
        return withApi("proposals", io, async (api) => {
          const answer = await api.get(apiPath(["proposals"], filter), listOf(Proposal));
          return printAnswer(io, answer, values.json, (page) => proposalsTable(page.items));
        });
      }
      case "show": {
        onlyFor([]);
        const id = idArgument(rest[0], "a proposal ID", "proposals show");
        if (rest.length > 1) throw new UsageError("proposals show takes one ID");
        return withApi("proposals", io, async (api) => {
          const answer = await api.get(apiPath(["proposals", id]), Proposal);
          return printAnswer(io, answer, values.json, describeProposal);
        });
      }
      case "approve":
      case "reject": {
        onlyFor(["reason"]);
        const id = idArgument(rest[0], "a proposal ID", `proposals ${sub}`);
        if (rest.length > 1) throw new UsageError(`proposals ${sub} takes one ID`);
        let reason = values.reason?.trim() ?? "";
        if (reason === "") {
          if (sub === "reject") throw new UsageError("proposals reject needs --reason TEXT");
          reason = "approved with safedeploy proposals approve";
        }
        return withApi("proposals", io, async (api) => {
          const answer = await api.post(apiPath(["proposals", id, sub]), { reason }, Proposal);
          return printAnswer(
            io,
            answer,
            values.json,
            ({ state, approvals }) =>
              `${id} is now ${state} (${approvals.length} approval${approvals.length === 1 ? "" : "s"})\n`,
          );
        });
      }
      case undefined:
        throw new UsageError("proposals needs a subcommand: list, show, approve or reject");
      default:
        throw new UsageError(`unknown subcommand "${sub}"`);
    }
  },
};
