import { runService } from "@safedeploy/runtime";
import { auditService } from "./service.js";

// Read here rather than in the runtime's config: only the audit service migrates as another role.
const migratorUrl = process.env.SAFEDEPLOY_AUDIT_MIGRATOR_URL;

runService(auditService(migratorUrl === undefined ? {} : { migratorUrl }));
