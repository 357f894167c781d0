/**
 * @packageDocumentation
 * The audit log and read model in PostgreSQL: every message of every stream stored once, keyed by
 * (stream, sequence) and hash-chained per stream; a chain verifier naming the first edited,
 * missing or reordered row; the read model (services, evaluations, incidents, proposals,
 * approvals, actions, freezes, verdicts) kept in the same transaction; and evidence bundles built
 * from the log. Every function takes a `Queryable` (pool or transaction client) or a pool.
 */
export { appendBatch, payloadValue } from "./append.js";
export type { AppendReport, AuditMessage, AuditPool } from "./append.js";
export { CURRENT_HASH_VERSION, GENESIS_HASH, chainHash, derivedColumns } from "./chain.js";
export type { ChainedFields, HashVersion } from "./chain.js";
export { listDeadLetters } from "./dead-letters.js";
export type { StoredDeadLetter } from "./dead-letters.js";
export { EVIDENCE_PARTS, evidenceBundle } from "./evidence.js";
export type { EvidenceBundle, EvidencePart, EvidenceSource } from "./evidence.js";
export { AUDIT_MIGRATIONS_DIR, migrateAudit } from "./migrations.js";
export { envelopeOf, projectEnvelope } from "./project.js";
export type { Projection } from "./project.js";
export {
  ACTIVE_INCIDENT_STATES,
  getIncident,
  getProposal,
  getService,
  listFreezes,
  listGuards,
  listIncidents,
  listProposals,
  listServices,
  readModelVersion,
  snapshot,
} from "./read-model.js";
export type {
  FreezeRecord,
  IncidentRecord,
  KeysetPage,
  ProposalRecord,
  ServiceState,
  SloState,
  Snapshot,
} from "./read-model.js";
export { verifyChain } from "./verify.js";
export type { BadRow, ChainReport, StreamAnchor } from "./verify.js";
export { readChartMarkers, readDoraHistory, readEvaluationHistory } from "./history.js";
export type { DoraHistory, TimeRange } from "./history.js";
export { readIncidentTimeline } from "./timeline.js";
export type { IncidentTimeline, TimelineEntry } from "./timeline.js";
