import {
  directQueries,
  errorRatioRecord,
  recordedQueries,
  sliWindow,
  totalRateRecord,
} from "@safedeploy/core";
import type { Measurement } from "@safedeploy/core";
import { PrometheusError } from "@safedeploy/prometheus";
import type { PrometheusClient, Sample } from "@safedeploy/prometheus";
import type { SliWindow } from "@safedeploy/schema";

/** Prometheus could not be reached: retry the job later rather than publish a guess. */
export function isOutage(error: unknown): boolean {
  return error instanceof PrometheusError && error.retryable;
}

function fromSamples(samples: readonly Sample[]): Measurement {
  if (samples.length === 0) return { kind: "absent" };
  // A query without sum() returns one series per label set: the SLI is their total.
  return { kind: "value", value: samples.reduce((sum, sample) => sum + sample.value, 0) };
}

/** Runs one query; an outage propagates (retry), a bad query becomes a `failed` measurement. */
async function measure(client: PrometheusClient, promql: string, time: Date): Promise<Measurement> {
  try {
    return fromSamples((await client.queryVector(promql, { time })).data);
  } catch (error) {
    if (isOutage(error)) throw error;
    return { kind: "failed", error: error instanceof Error ? error.message : String(error) };
  }
}

/** Direct mode: the SLO's own queries, rendered for the window. */
export async function measureDirect(
  client: PrometheusClient,
  slo: { errorQuery: string; totalQuery: string },
  window: string,
  time: Date,
): Promise<SliWindow> {
  const queries = directQueries(slo, window);
  const [errors, total] = await Promise.all([
    measure(client, queries.errorQuery, time),
    measure(client, queries.totalQuery, time),
  ]);
  return sliWindow(window, queries, errors, total);
}

type RecordedWindow = ReadonlyMap<string, { ratio: number; total: number }>;

const key = (service: string, slo: string) => `${service}\u0000${slo}`;

/**
 * Recorded mode: per window, two queries return every SLO at once. Results are cached per
 * evaluation time, so the jobs of one interval share them.
 */
export function recordedReader(client: PrometheusClient) {
  const cache = new Map<string, Promise<RecordedWindow>>();
  // One window's pair of answers at a time: each holds every series of the fleet, and holding all
  // twelve at once set the collector's peak memory; on a few cores Prometheus answers them no
  // faster in parallel.
  let previousLoad: Promise<unknown> = Promise.resolve();

  function load(window: string, time: Date): Promise<RecordedWindow> {
    const next = previousLoad.catch(() => undefined).then(() => loadNow(window, time));
    previousLoad = next;
    return next;
  }

  async function loadNow(window: string, time: Date): Promise<RecordedWindow> {
    const [ratios, totals] = await Promise.all([
      client.queryVector(errorRatioRecord(window), { time }),
      client.queryVector(totalRateRecord(window), { time }),
    ]);
    const result = new Map<string, { ratio: number; total: number }>();
    const totalBy = new Map(
      totals.data.map((sample) => [
        key(sample.labels.sloth_service ?? "", sample.labels.sloth_slo ?? ""),
        sample.value,
      ]),
    );
    for (const sample of ratios.data) {
      const id = key(sample.labels.sloth_service ?? "", sample.labels.sloth_slo ?? "");
      result.set(id, { ratio: sample.value, total: totalBy.get(id) ?? Number.NaN });
    }
    for (const [id, total] of totalBy)
      if (!result.has(id)) result.set(id, { ratio: Number.NaN, total });
    return result;
  }

  return {
    async window(service: string, slo: string, window: string, time: Date): Promise<SliWindow> {
      const cacheKey = `${window}@${time.getTime()}`;
      let pending = cache.get(cacheKey);
      if (pending === undefined) {
        pending = load(window, time);
        cache.set(cacheKey, pending);
        // A failed load must not poison the cache for the retry.
        pending.catch(() => cache.delete(cacheKey));
      }
      let values: RecordedWindow;
      try {
        values = await pending;
      } catch (error) {
        if (isOutage(error)) throw error;
        const message = error instanceof Error ? error.message : String(error);
        return sliWindow(
          window,
          recordedQueries(window),
          { kind: "failed", error: message },
          { kind: "failed", error: message },
        );
      }
      const found = values.get(key(service, slo));
      const total: Measurement =
        found === undefined ? { kind: "absent" } : { kind: "value", value: found.total };
      const errors: Measurement =
        found === undefined || !Number.isFinite(found.ratio)
          ? { kind: "absent" }
          : { kind: "value", value: found.ratio * found.total };
      return sliWindow(window, recordedQueries(window), errors, total);
    },
    /** Drops cached windows evaluated before `before`. */
    evict(before: Date): void {
      for (const cacheKey of cache.keys()) {
        const at = Number(cacheKey.slice(cacheKey.indexOf("@") + 1));
        if (at < before.getTime()) cache.delete(cacheKey);
      }
    },
  };
}
export type RecordedReader = ReturnType<typeof recordedReader>;
