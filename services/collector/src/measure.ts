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

/** The value under `key`, made by `create` and kept the first time it is asked for. */
function kept<K, V>(map: Map<K, V>, key: K, create: () => V): V {
  let value = map.get(key);
  if (value === undefined) {
    value = create();
    map.set(key, value);
  }
  return value;
}

/** An SLO's recorded values in one window (NaN: that series is missing). */
interface Values {
  ratio: number;
  total: number;
}

/** One window's recorded values, by service, then SLO (label values: no key strings to build). */
type RecordedWindow = ReadonlyMap<string, ReadonlyMap<string, Values>>;

/**
 * Recorded mode: per window, two queries return every SLO at once. Results are cached per
 * evaluation time, so the jobs of one interval share them. `client` bounds how many answers are
 * awaited at once (each holds every series of the fleet).
 */
export function recordedReader(client: PrometheusClient) {
  /** By evaluation time (ms), then window. */
  const cache = new Map<number, Map<string, Promise<RecordedWindow>>>();
  const queries = new Map<string, ReturnType<typeof recordedQueries>>();
  const queriesOf = (window: string) => kept(queries, window, () => recordedQueries(window));
  async function loadNow(window: string, time: Date): Promise<RecordedWindow> {
    const [ratios, totals] = await Promise.all([
      client.queryVector(errorRatioRecord(window), { time }),
      client.queryVector(totalRateRecord(window), { time }),
    ]);
    const result = new Map<string, Map<string, Values>>();
    const entry = (sample: Sample): Values =>
      kept(
        kept(result, sample.labels.sloth_service ?? "", () => new Map<string, Values>()),
        sample.labels.sloth_slo ?? "",
        () => ({ ratio: Number.NaN, total: Number.NaN }),
      );
    for (const sample of totals.data) entry(sample).total = sample.value;
    for (const sample of ratios.data) entry(sample).ratio = sample.value;
    return result;
  }

  function loaded(window: string, time: Date): Promise<RecordedWindow> {
    const at = time.getTime();
    return kept(
      kept(cache, at, () => new Map<string, Promise<RecordedWindow>>()),
      window,
      () => {
        const started = loadNow(window, time);
        // A failed load must not poison the cache for the retry.
        started.catch(() => cache.get(at)?.delete(window));
        return started;
      },
    );
  }

  return {
    async window(service: string, slo: string, window: string, time: Date): Promise<SliWindow> {
      let values: RecordedWindow;
      try {
        values = await loaded(window, time);
      } catch (error) {
        if (isOutage(error)) throw error;
        const message = error instanceof Error ? error.message : String(error);
        return sliWindow(
          window,
          queriesOf(window),
          { kind: "failed", error: message },
          { kind: "failed", error: message },
        );
      }
      const found = values.get(service)?.get(slo);
      const total: Measurement =
        found === undefined ? { kind: "absent" } : { kind: "value", value: found.total };
      const errors: Measurement =
        found === undefined || !Number.isFinite(found.ratio)
          ? { kind: "absent" }
          : { kind: "value", value: found.ratio * found.total };
      return sliWindow(window, queriesOf(window), errors, total);
    },
    /** Drops cached windows evaluated before `before`. */
    evict(before: Date): void {
      for (const at of cache.keys()) if (at < before.getTime()) cache.delete(at);
    },
  };
}
export type RecordedReader = ReturnType<typeof recordedReader>;
