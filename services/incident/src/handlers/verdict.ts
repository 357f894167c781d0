import { decidePolicyIncident } from "@safedeploy/core";
import type { Envelope } from "@safedeploy/schema";
import { foldIntoRecord, incidentIdFor } from "../record.js";
import type { RecordDeps } from "../record.js";

/**
 * Folds a promotion verdict into the service's incident record: a structural policy violation
 * opens a policy incident (when none is active), and its correction resolves it.
 */
export const onVerdict =
  (deps: RecordDeps) =>
  (verdict: Envelope<"governance.verdict">): Promise<void> =>
    foldIntoRecord(deps, verdict.service, verdict, verdict.data.evaluatedAt, (state) =>
      decidePolicyIncident(
        state,
        {
          id: verdict.id,
          service: verdict.service,
          reasons: verdict.data.reasons,
          evaluatedAt: verdict.data.evaluatedAt,
        },
        () => incidentIdFor(verdict.id),
      ),
    );
