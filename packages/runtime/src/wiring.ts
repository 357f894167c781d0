import { hostname } from "node:os";
import { formatCatalogError, loadCatalog } from "@safedeploy/catalog";
import type { Catalog } from "@safedeploy/catalog";
import { connectBus, provision } from "@safedeploy/jetstream";
import type { Bus } from "@safedeploy/jetstream";
import type { ServiceContext } from "./lifecycle.js";

/** A service's catalog could not be loaded; the message lists every error. */
export class CatalogLoadError extends Error {
  override readonly name = "CatalogLoadError";
}

/** Loads the catalog at `SAFEDEPLOY_CATALOG`, or fails the start naming every error. */
export async function loadServiceCatalog(context: ServiceContext): Promise<Catalog> {
  const result = await loadCatalog(context.config.catalogPath);
  if (!result.ok) {
    throw new CatalogLoadError(
      `catalog ${context.config.catalogPath} is invalid:\n${result.errors.map(formatCatalogError).join("\n")}`,
    );
  }
  context.log.info({ services: result.catalog.services.length }, "catalog loaded");
  return result.catalog;
}

/**
 * Connects to NATS in the configured namespace and adds the `nats` readiness check. Without a NATS
 * user (a development server with no authorisation) it also provisions the topology, idempotent,
 * so every replica may. Connected as a user it provisions nothing: its permissions let it only
 * bind to what the provisioner created (`safedeploy provision`, run by `up` and the compose init).
 */
export async function openServiceBus(context: ServiceContext): Promise<Bus> {
  const bus = await connectBus({
    servers: context.config.natsServers,
    name: `${context.name}@${hostname()}:${process.pid}`,
    ns: context.config.namespace,
    log: context.log.child({ component: "jetstream" }),
  });
  if (bus.user === undefined) {
    const report = await provision(bus);
    if (report.created.length > 0 || report.updated.length > 0) {
      context.log.info(
        { created: report.created, updated: report.updated },
        "topology provisioned",
      );
    }
  }
  context.addReadinessCheck("nats", () =>
    bus.isConnected() ? Promise.resolve() : Promise.reject(new Error("NATS disconnected")),
  );
  return bus;
}
