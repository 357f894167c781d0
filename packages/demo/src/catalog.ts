/**
 * The demo catalog: one service, `checkout`, with a canary strategy and a Policy whose windows are
 * shortened from the SRE Workbook's hours to seconds, so a bad deploy burns visibly within a
 * minute. The objective is 80% over 5m: the bad version's 80% errors burn the budget at 4×, over
 * the fast-burn factor 2 (10s/5s windows) about 5 s after the deploy, a little before the short
 * healthy history lets the budget run out.
 */
export const DEMO_SERVICE = "checkout";

/** Directory of checkout in the demo environment repo (the rollback path). */
export const DEMO_ROLLBACK_PATH = "envs/prod/checkout";

export function demoCatalog(): string {
  return `apiVersion: safedeploy.dev/v1
kind: Policy
metadata: { name: default }
spec:
  requireCanary: true
  burnRates:
    - { severity: fast-burn, factor: 2, long: 10s, short: 5s }
    - { severity: slow-burn, factor: 1, long: 1m, short: 10s }
  maxPromotionBurnRate: 1
  freezeOnExhaustion: 1m
  noData: block
  openIncidentOn: [fast-burn, exhausted]
  resolveAfter: 20s
  approvals: { required: 1 }
---
apiVersion: safedeploy.dev/v1
kind: Service
metadata:
  name: ${DEMO_SERVICE}
  owner: team-payments
spec:
  slos:
    - name: availability
      objective: 80
      window: 5m
      minEvents: 10
      sli:
        errorQuery: sum(rate(http_requests_total{service="${DEMO_SERVICE}",code=~"5.."}[{{.window}}]))
        totalQuery: sum(rate(http_requests_total{service="${DEMO_SERVICE}"}[{{.window}}]))
  deployment:
    strategy: canary
    canary: { steps: [10, 50, 100], bakeTime: 30s }
  rollback:
    strategy: git-revert
    path: ${DEMO_ROLLBACK_PATH}
  promotion:
    safetyMargin: 0.25
`;
}
