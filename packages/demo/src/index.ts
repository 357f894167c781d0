/**
 * @packageDocumentation
 * What `safedeploy demo` runs beside the control plane: the demo `checkout` app exporting
 * Prometheus metrics whose error rate (and `/healthz` content) follows its deployed version, the
 * demo catalog with shortened windows, and a local environment repo with an Argo Rollouts manifest
 * history.
 */
export { DEMO_VERSIONS, startDemoApp } from "./app.js";
export type {
  DemoApp,
  DemoAppOptions,
  DemoHealth,
  DemoHealthStatus,
  DemoVersion,
  DemoVersionBehaviour,
} from "./app.js";
export { DEMO_ROLLBACK_PATH, DEMO_SERVICE, demoCatalog } from "./catalog.js";
export { checkoutRollout, createDemoEnvRepo, rolloutManifest } from "./envrepo.js";
export type { DemoEnvRepo } from "./envrepo.js";
