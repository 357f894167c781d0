/**
 * The grammars of SafeDeploy's deterministic ids, each in one place: the same cause always names
 * the same freeze, guard, promotion or hook call, so replicas and retries agree on them.
 */

/** Which hook of a strategy: canary `promoteHook`/`rollbackHook`, blue_green `cutoverHook`. */
export type HookName = "promote" | "cutover" | "rollback";

/** A freeze window: `freeze:<service>:<origin>:<from>`. */
export function freezeId(service: string, origin: "manual" | "exhaustion", from: string): string {
  return `freeze:${service}:${origin}:${from}`;
}

/** A failed release guard: one per (service, train, step); `train` for the train as a whole. */
export function guardId(service: string, trainId: string, step: number | null): string {
  return `guard:${service}:${trainId}:${step === null ? "train" : `s${step + 1}`}`;
}

/**
 * The proposal id (and so the branch `safedeploy/<id>`) of a train step's promotion:
 * `<trainId>-s<n>`, n counted from 1.
 */
export function promotionProposalId(trainId: string, step: number): string {
  return `${trainId}-s${step + 1}`;
}

/** The idempotency key (and action id) of one hook of one step: `<trainId>-s<n>-<hook>`. */
export function hookIdempotencyKey(trainId: string, step: number, hook: HookName): string {
  return `${promotionProposalId(trainId, step)}-${hook}`;
}

const TRAIN_ACTION = /^(TRN-[0-9A-F]+)-s(\d+)(?:-(promote|cutover|rollback))?$/;

/**
 * The train, step and (for a manifest hook) hook a promotion or hook id names, or null for anyone
 * else's proposal.
 */
export function parseTrainActionId(
  proposalId: string,
): { trainId: string; step: number; hook: HookName | null } | null {
  const match = TRAIN_ACTION.exec(proposalId);
  if (match?.[1] === undefined || match[2] === undefined) return null;
  const hook = match[3] as HookName | undefined;
  return { trainId: match[1], step: Number(match[2]) - 1, hook: hook ?? null };
}
