export { AUDIT_CONSUMERS, auditService } from "./service.js";
export type { AuditTuning } from "./service.js";
