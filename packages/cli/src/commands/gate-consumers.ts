// The gate as other delivery tools consume it: a Flagger webhook and a GitOps Promoter
// WebRequestCommitStatus. Printed by `safedeploy generate flagger-gate|gitops-promoter`.

/**
 * Flagger Canary `analysis.webhooks` entries asking SafeDeploy's gate before the canary starts
 * (`confirm-rollout`) and before it is promoted (`confirm-promotion`). Flagger goes on only on a
 * 2xx answer, and `/v1/flagger/gate` answers 200 only for `pass`; Flagger webhooks cannot send
 * headers, so the (viewer) token travels as `access_token` in the URL.
 */
export function flaggerGateWebhooks(input: {
  readonly service: string;
  readonly api: string;
  readonly token: string;
}): string {
  const url = `${input.api}/v1/flagger/gate?access_token=${encodeURIComponent(input.token)}`;
  const hook = (type: string) => `    - name: safedeploy-gate-${type}
      type: ${type}
      url: "${url}"
      timeout: 15s
      metadata:
        service: ${input.service}
`;
  return `# Flagger Canary webhooks: SafeDeploy's gate for ${input.service}. Paste under the Canary's
# spec.analysis. Flagger advances only on HTTP 2xx: the gate answers 200 for pass and 403 for
# block or unknown (no data, stale evidence, policy service not answering), with the reasons in
# the body, which Flagger logs. The URL carries a SafeDeploy viewer token: keep the Canary in a
# repository only trusted people can read, or put a proxy that adds the header in front.
analysis:
  webhooks:
${hook("confirm-rollout")}${hook("confirm-promotion")}`;
}

/**
 * A GitOps Promoter `WebRequestCommitStatus` polling SafeDeploy's gate: success for `pass`,
 * failure for `block` (the gate fails fast), pending for `unknown` or a non-200 answer, and the
 * previous phase carried forward on reconciles without a request (`Response == nil`).
 */
export function gitopsPromoterGate(input: {
  readonly service: string;
  readonly api: string;
  readonly strategy: string;
  readonly secret: string;
  readonly interval: string;
}): string {
  return `# GitOps Promoter gate: SafeDeploy's verdict for ${input.service} as a commit status. Add
# "safedeploy-gate" to the PromotionStrategy's activeCommitStatuses or proposedCommitStatuses.
# The Secret ${input.secret} holds a SafeDeploy viewer token under the key "token".
apiVersion: promoter.argoproj.io/v1alpha1
kind: WebRequestCommitStatus
metadata:
  name: safedeploy-gate-${input.service}
  labels:
    app.kubernetes.io/managed-by: safedeploy
spec:
  promotionStrategyRef:
    name: ${input.strategy}
  key: safedeploy-gate
  reportOn: proposed
  descriptionTemplate: "SafeDeploy gate for ${input.service}: {{ .Phase }}"
  urlTemplate: "${input.api}/v1/services/${input.service}"
  httpRequest:
    urlTemplate: "${input.api}/v1/services/${input.service}/gate"
    methodTemplate: GET
    timeout: 15s
    authentication:
      bearer:
        secretRef:
          name: ${input.secret}
  success:
    when:
      expression: |
        Response == nil ? { phase: Phase } :
        Response.StatusCode != 200 ? { phase: "pending" } :
        Response.Body.verdict == "pass" ? { phase: "success" } :
        Response.Body.verdict == "block" ? { phase: "failure" } :
        { phase: "pending" }
  mode:
    polling:
      interval: ${input.interval}
`;
}
