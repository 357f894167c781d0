import type { CatalogService } from "@safedeploy/catalog";
import { CommandFailedError } from "@safedeploy/jetstream";
import type { TypedKv } from "@safedeploy/jetstream";
import type { Envelope } from "@safedeploy/schema";
import type { CanaryRecord, FreezeRecord, GuardRecord, PolicyRecord } from "./store.js";
import type { FreezeWindowDeps } from "./handlers/freeze-windows.js";

/** What the policy handlers need: the catalog, their KV state, the bus and a clock. */
export interface PolicyDeps {
  readonly services: ReadonlyMap<string, CatalogService>;
  readonly records: TypedKv<PolicyRecord>;
  readonly freezes: TypedKv<FreezeRecord>;
  readonly guards: TypedKv<GuardRecord>;
  readonly canaries: TypedKv<CanaryRecord>;
  readonly publish: (envelope: Envelope) => Promise<unknown>;
  readonly now: () => string;
  /** The collector's poll interval: evidence is stale after three of them unless the policy says. */
  readonly pollIntervalMs: number;
  /** The catalog's recurring freeze windows and their overrides; absent: none. */
  readonly freezeWindows?: FreezeWindowDeps;
}

/** The catalog service a command names, or `not_found`. */
export function knownService(deps: PolicyDeps, name: string): CatalogService {
  const service = deps.services.get(name);
  if (service === undefined) throw new CommandFailedError("not_found", `no service named ${name}`);
  return service;
}
