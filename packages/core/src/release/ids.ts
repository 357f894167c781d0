/**
 * The id grammars the release train uses, from core's one module of ids (`../ids.ts`): the train
 * modules import them from here, so the one import that leaves this folder is this one.
 */
// eslint-disable-next-line no-restricted-imports -- core's own ids module: the rule's "./ only" regex predates core's subfolders
export { hookIdempotencyKey, promotionProposalId } from "../ids.js";
// eslint-disable-next-line no-restricted-imports -- as above
export type { HookName } from "../ids.js";
