import type { ChangeCommitted, ChangeRequest } from "./repo.js";

/** What a forge needs to propose a pushed branch for review. */
export interface ForgeChange {
  readonly branch: string;
  readonly baseBranch: string;
  readonly title: string;
  readonly body: string;
  readonly labels: readonly string[];
}

/** The review request a forge opened or found for a branch. */
export interface ForgeReview {
  /** Pull request URL; null for the plain git forge, which only pushes the branch. */
  readonly prUrl: string | null;
  readonly number: number | null;
  /** True when an open pull request for the branch already existed and was reused. */
  readonly reused: boolean;
}

/**
 * Provider-neutral forge: turns a pushed branch into a review request, idempotently (the same
 * branch never gets a second pull request). Errors carry `retryable`.
 */
export interface Forge {
  readonly kind: "git" | "github";
  openChange(change: ForgeChange): Promise<ForgeReview>;
  /** A token git can use for HTTPS pushes to this forge, if it has one (short-lived for Apps). */
  pushToken(): Promise<string | undefined>;
}

/** The plain git forge: the pushed branch is the whole result. */
export function gitForge(): Forge {
  return {
    kind: "git",
    openChange: () => Promise.resolve({ prUrl: null, number: null, reused: false }),
    pushToken: () => Promise.resolve(undefined),
  };
}

/** A link shown in the pull request body (proposal, incident, dashboard). */
export interface ReviewLink {
  readonly label: string;
  readonly url: string;
}

/** Title, body and labels of the pull request for a committed change. */
export function reviewFor(
  request: Pick<ChangeRequest, "proposalId" | "incidentId" | "kind">,
  committed: ChangeCommitted,
  baseBranch: string,
  links: readonly ReviewLink[] = [],
): ForgeChange {
  const incident = request.incidentId === null ? "" : ` for incident **${request.incidentId}**`;
  const sections = [
    `SafeDeploy proposal **${request.proposalId}** (${request.kind})${incident}, approved for execution.`,
    committed.body,
    `Commit \`${committed.commit}\` on \`${committed.branch}\`, based on \`${baseBranch}\` at \`${committed.baseCommit}\`.`,
    "```text\n" + committed.diffStat + "\n```",
  ];
  if (links.length > 0) sections.push(links.map((l) => `- [${l.label}](${l.url})`).join("\n"));
  sections.push("_Opened by the SafeDeploy git actuator. Merging it is the rollout._");
  return {
    branch: committed.branch,
    baseBranch,
    title: `${committed.subject} (${request.proposalId})`,
    body: sections.join("\n\n"),
    labels: ["safedeploy", request.kind],
  };
}
