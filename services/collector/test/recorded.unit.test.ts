// The recorded-mode reader: two fleet-wide answers per window, looked up by service and SLO label,
// shared by every job of an interval, and a failed load never cached.
import { describe, expect, it } from "vitest";
import { PrometheusError } from "@safedeploy/prometheus";
import type { PrometheusClient, Sample } from "@safedeploy/prometheus";
import { recordedReader } from "../src/measure.js";

const at = new Date("2026-11-24T09:00:00.000Z");
const series = (service: string, slo: string, value: number): Sample => ({
  labels: { sloth_service: service, sloth_slo: slo },
  value,
  timestamp: at.getTime() / 1_000,
});

/** Answers `slo:sli_error:…` and `safedeploy:sli_total:…` queries from the given series. */
function prometheus(
  ratios: Sample[],
  totals: Sample[],
  queries: string[],
  fail: { next: Error | null } = { next: null },
): PrometheusClient {
  return {
    queued: 0,
    query: () => Promise.reject(new Error("unused")),
    queryScalar: () => Promise.reject(new Error("unused")),
    queryRange: () => Promise.reject(new Error("unused")),
    queryVector: (promql) => {
      queries.push(promql);
      const failure = fail.next;
      if (failure !== null) {
        fail.next = null;
        return Promise.reject(failure);
      }
      const data = promql.startsWith("slo:sli_error:") ? ratios : totals;
      return Promise.resolve({ data, warnings: [] });
    },
  };
}

describe("the recorded reader", () => {
  it("finds each service's SLO among the fleet's series, and shares the answers", async () => {
    const queries: string[] = [];
    const reader = recordedReader(
      prometheus(
        [series("checkout", "availability", 0.01), series("cart", "availability", 0.5)],
        [series("checkout", "availability", 200), series("cart", "availability", 10)],
        queries,
      ),
    );
    const [checkout, cart] = await Promise.all([
      reader.window("checkout", "availability", "5m", at),
      reader.window("cart", "availability", "5m", at),
    ]);
    expect(checkout).toMatchObject({ window: "5m", errors: 2, total: 200, status: "ok" });
    expect(cart).toMatchObject({ errors: 5, total: 10, status: "ok" });
    expect(checkout.errorQuery).toBe("slo:sli_error:ratio_rate5m");
    // One pair of queries for the window, whatever the number of services asking.
    expect(queries).toEqual(["slo:sli_error:ratio_rate5m", "safedeploy:sli_total:rate5m"]);
  });

  it("says absent for a series Prometheus does not have, and no data for traffic without a ratio", async () => {
    const reader = recordedReader(prometheus([], [series("quiet", "availability", 0)], []));
    expect(await reader.window("missing", "availability", "1h", at)).toMatchObject({
      errors: null,
      total: null,
      status: "no-data",
    });
    expect(await reader.window("quiet", "availability", "1h", at)).toMatchObject({
      errors: null,
      total: 0,
      status: "no-data",
    });
  });

  it("does not keep a failed load: the retry asks Prometheus again", async () => {
    const queries: string[] = [];
    const fail = {
      next: new PrometheusError("Prometheus unreachable: ECONNREFUSED", {
        errorType: "network",
        retryable: true,
      }) as Error | null,
    };
    const reader = recordedReader(
      prometheus(
        [series("checkout", "availability", 0)],
        [series("checkout", "availability", 100)],
        queries,
        fail,
      ),
    );
    await expect(reader.window("checkout", "availability", "5m", at)).rejects.toBeInstanceOf(
      PrometheusError,
    );
    expect(await reader.window("checkout", "availability", "5m", at)).toMatchObject({
      errors: 0,
      total: 100,
      status: "ok",
    });
    expect(queries).toHaveLength(4);
  });

  it("forgets answers evaluated before the eviction time", async () => {
    const queries: string[] = [];
    const reader = recordedReader(
      prometheus(
        [series("checkout", "availability", 0)],
        [series("checkout", "availability", 1)],
        queries,
      ),
    );
    await reader.window("checkout", "availability", "5m", at);
    await reader.window("checkout", "availability", "5m", at);
    expect(queries).toHaveLength(2);
    reader.evict(new Date(at.getTime() + 1));
    await reader.window("checkout", "availability", "5m", at);
    expect(queries).toHaveLength(4);
  });
});
