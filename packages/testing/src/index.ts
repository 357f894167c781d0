/**
 * @packageDocumentation
 * Test harness against real servers: per-file NATS namespaces and PostgreSQL databases, private
 * nats-server and Prometheus processes a test can stop and restart.
 */
export { closeServers, listenLocal } from "./http.js";
export { policyYaml, serviceYaml, yamlDocuments } from "./catalog.js";
export type { TestServiceOptions, TestSli } from "./catalog.js";
export { dockerAvailable } from "./docker.js";
export { recordProposal } from "./proposals.js";
export {
  budgetEvaluationEvent,
  gateReason,
  incidentOpenedEvent,
  sliSnapshotEvent,
  verdictEvent,
} from "./events.js";
export { createTestEnvRepo, deploymentManifest, git } from "./git.js";
export type { TestEnvRepo } from "./git.js";
export { startTrafficExporter } from "./exporter.js";
export type { Traffic, TrafficExporter } from "./exporter.js";
export {
  createTestBus,
  deleteNamespace,
  readStream,
  testNamespace,
  testNatsUrl,
  testServiceEnv,
} from "./nats.js";
export type { TestBus } from "./nats.js";
export { startNatsServer } from "./nats-server.js";
export { benchMachine, loadAverage, targetLine, writeBenchResult } from "./bench.js";
export { startNatsCluster } from "./nats-cluster.js";
export type { ClusterNode, PrivateNatsCluster } from "./nats-cluster.js";
export { createTestDatabase, testDatabaseAdminUrl } from "./postgres.js";
export type { TestDatabase } from "./postgres.js";
export type { PrivateNatsServer } from "./nats-server.js";
export { prometheusConfig, startPrometheus } from "./prometheus.js";
export type { PrivatePrometheus, PrivatePrometheusOptions, ScrapeTarget } from "./prometheus.js";
export { findExecutable, freePort, spawnCollecting, startProcess, waitUntil } from "./process.js";
export type { CollectedProcess, ManagedProcess, StartProcessOptions } from "./process.js";
