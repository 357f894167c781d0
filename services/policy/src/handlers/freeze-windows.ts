import {
  compileFreezeWindow,
  evaluateFreezeWindows,
  freezeWindowOf,
  selectsService,
} from "@safedeploy/core";
import type { CompiledFreezeWindow, FreezeOverride, FreezeWindow } from "@safedeploy/core";
import type { Catalog, CatalogService } from "@safedeploy/catalog";
import { CommandFailedError, openKv } from "@safedeploy/jetstream";
import type { Bus, TypedKv } from "@safedeploy/jetstream";
import { createEnvelope, messageId } from "@safedeploy/schema";
import type { CommandRequest, CommandResult } from "@safedeploy/schema";
import { z } from "zod";
import { knownService } from "../deps.js";
import type { PolicyDeps } from "../deps.js";
import { exclusively, refreshVerdict } from "./judge.js";

/** Per service, in the `freezes` bucket under `override.<service>`: its emergency overrides. */
export const OverrideRecord = z.object({
  overrides: z.array(
    z.object({
      id: z.string(),
      from: z.string(),
      until: z.string(),
      actor: z.string(),
      reason: z.string(),
    }),
  ),
});
export type OverrideRecord = z.infer<typeof OverrideRecord>;

/** The longest an emergency override may last. */
export const MAX_OVERRIDE_MS = 24 * 3_600_000;

/** A service's recurring windows, compiled once, and where overrides are kept. */
export interface FreezeWindowDeps {
  readonly windows: readonly CompiledFreezeWindow[];
  readonly overrides: TypedKv<OverrideRecord>;
}

const overrideKey = (service: string) => `override.${service}`;
/** Whether a `freezes` key holds overrides (the others hold a service's freezes). */
export const isOverrideKey = (key: string): boolean => key.startsWith("override.");

/** Compiles the catalog's `kind: FreezeWindow` documents and opens the override store. */
export async function openFreezeWindows(bus: Bus, catalog: Catalog): Promise<FreezeWindowDeps> {
  return {
    windows: catalog.freezeWindows.map((document) => compileFreezeWindow(freezeWindowOf(document))),
    overrides: await openKv(bus, "freezes", OverrideRecord, { mirror: { keys: isOverrideKey } }),
  };
}

const selecting = (deps: FreezeWindowDeps, service: CatalogService) =>
  deps.windows.filter((c) => selectsService(c.window, service));

/**
 * The recurring windows freezing the service at `now`, as gate freezes (`origin: recurring`) that
 * last until the next opening; none while an admin's override is in force.
 */
export async function recurringFreezes(
  deps: FreezeWindowDeps | undefined,
  service: CatalogService,
  now: string,
): Promise<FreezeWindow[]> {
  if (deps === undefined) return [];
  const windows = selecting(deps, service);
  if (windows.length === 0) return [];
  const overrides = (await deps.overrides.get(overrideKey(service.name)))?.value.overrides ?? [];
  const state = evaluateFreezeWindows(windows, service, now, overrides);
  if (!state.frozen) return [];
  // Fail closed: no opening found means frozen beyond the search, never open.
  const until = state.nextOpening ?? "9999-12-31T23:59:59.999Z";
  const opening =
    state.nextOpening === null
      ? "no opening found within 400 days"
      : `next opening ${state.nextOpening}`;
  return state.reasons.map((reason) => ({
    id: `recurring:${reason.window}`,
    from: now,
    until,
    reason: `${reason.message}; ${opening}`,
    origin: "recurring" as const,
  }));
}

/** `freeze.override`: an admin lets the service through its recurring windows until `until`. */
export const overrideFreezeWindows =
  (deps: PolicyDeps, windows: FreezeWindowDeps) =>
  async (request: CommandRequest<"freeze.override">): Promise<CommandResult<"freeze.override">> => {
    const service = knownService(deps, request.service);
    const now = deps.now();
    const span = Date.parse(request.until) - Date.parse(now);
    if (!(span > 0 && span <= MAX_OVERRIDE_MS)) {
      const message = "must be in the future and at most 24h from now";
      // No details: the gateway names the body's `until` field itself.
      throw new CommandFailedError("invalid_request", `until ${message}`);
    }
    const frozenBy = evaluateFreezeWindows(selecting(windows, service), service, now).reasons;
    const override: FreezeOverride = {
      id: `override:${request.service}:${now}`,
      from: now,
      until: new Date(request.until).toISOString(),
      actor: request.actor,
      reason: request.reason,
    };
    const names = [...new Set(frozenBy.map((r) => r.window))];
    await exclusively(deps, service.name, async () => {
      await windows.overrides.mutate(overrideKey(request.service), (current) => ({
        // Expired overrides are dropped: the audit log keeps every one.
        overrides: [
          ...(current?.value.overrides ?? []).filter((o) => Date.parse(o.until) > Date.parse(now)),
          override,
        ],
      }));
      await deps.publish(
        createEnvelope(
          {
            type: "governance.freeze-overridden",
            id: messageId("governance.freeze-overridden", override.id),
            service: request.service,
            data: {
              overrideId: override.id,
              from: now,
              until: override.until,
              actor: override.actor,
              reason: override.reason,
              windows: names,
            },
          },
          { source: "policy", time: now, correlationId: override.id },
        ),
      );
      await refreshVerdict(deps, service, now, (record) => record.slos, { id: override.id });
    });
    return { ...override, service: request.service, windows: names };
  };
