import { createServer } from "node:http";
import type { AddressInfo, Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PrometheusError, createPrometheusClient } from "@safedeploy/prometheus";
import { freePort, startPrometheus, startTrafficExporter } from "@safedeploy/testing";
import type { PrivatePrometheus, TrafficExporter } from "@safedeploy/testing";

let exporter: TrafficExporter;
let prometheus: PrivatePrometheus;

beforeAll(async () => {
  exporter = await startTrafficExporter({ checkout: { rps: 100, errorRatio: 0.1 } });
  prometheus = await startPrometheus({ scrape: [{ jobName: "demo", targets: [exporter.target] }] });
  const client = createPrometheusClient({ baseUrl: prometheus.url });
  // Wait for two scrapes so rate() has data.
  for (let i = 0; i < 200; i++) {
    const { data } = await client.queryVector(
      'count(count_over_time(http_requests_total{service="checkout"}[1m]) >= 3)',
    );
    if (data.length > 0) break;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}, 60_000);

afterAll(async () => {
  await prometheus.dispose();
  await exporter.close();
});

/** A proxy in front of the real Prometheus that injects faults and counts concurrency. */
async function faultyProxy(
  fault: (n: number) => { status: number; body: string } | "pass" | "hang",
  delayMs = 0,
) {
  let requests = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const sockets = new Set<Socket>();
  const server = createServer((request, response) => {
    requests += 1;
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    const decision = fault(requests);
    const done = () => {
      inFlight -= 1;
    };
    if (decision === "hang") return;
    if (decision !== "pass") {
      response
        .writeHead(decision.status, { "Content-Type": "application/json" })
        .end(decision.body, done);
      return;
    }
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      setTimeout(() => {
        void fetch(`${prometheus.url}${request.url ?? ""}`, {
          method: request.method ?? "GET",
          headers: { "Content-Type": request.headers["content-type"] ?? "" },
          ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}),
        }).then(async (upstream) => {
          response
            .writeHead(upstream.status, { "Content-Type": "application/json" })
            .end(await upstream.text(), done);
        });
      }, delayMs);
    });
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    stats: () => ({ requests, maxInFlight }),
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
    },
  };
}

describe("against a real Prometheus", () => {
  it("returns instant vectors with labels and values", async () => {
    const client = createPrometheusClient({ baseUrl: prometheus.url });
    const { data, warnings } = await client.queryVector(
      'sum by (service) (rate(http_requests_total{service="checkout",code="500"}[30s])) / sum by (service) (rate(http_requests_total{service="checkout"}[30s]))',
    );
    expect(warnings).toEqual([]);
    expect(data).toHaveLength(1);
    expect(data[0]?.labels).toEqual({ service: "checkout" });
    expect(data[0]?.value).toBeGreaterThan(0.05);
    expect(data[0]?.value).toBeLessThan(0.15);
  });

  it("returns scalars and keeps NaN and infinities", async () => {
    const client = createPrometheusClient({ baseUrl: prometheus.url });
    expect((await client.queryScalar("scalar(vector(42))")).data).toBe(42);
    expect((await client.queryScalar("scalar(vector(0) / 0)")).data).toBeNaN();
    expect((await client.queryVector("vector(1) / 0")).data[0]?.value).toBe(
      Number.POSITIVE_INFINITY,
    );
    expect((await client.queryVector('http_requests_total{service="nobody"}')).data).toEqual([]);
  });

  it("runs range queries", async () => {
    const client = createPrometheusClient({ baseUrl: prometheus.url });
    const end = new Date();
    const { data } = await client.queryRange("vector(1)", {
      start: new Date(end.getTime() - 10_000),
      end,
      stepSeconds: 1,
    });
    expect(data.resultType).toBe("matrix");
  });

  it("surfaces a bad query as a terminal error with Prometheus' own message", async () => {
    const client = createPrometheusClient({ baseUrl: prometheus.url });
    const error = await client.queryVector("sum(").catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PrometheusError);
    expect(error).toMatchObject({ errorType: "bad_data", retryable: false, status: 400 });
    expect((error as Error).message).toMatch(/^Prometheus bad_data: .*parse error/);
  });

  it("refuses a result of the wrong type", async () => {
    const client = createPrometheusClient({ baseUrl: prometheus.url });
    await expect(client.queryScalar("vector(1)")).rejects.toMatchObject({ errorType: "bad_data" });
    await expect(client.queryVector("scalar(vector(1))")).rejects.toMatchObject({
      errorType: "bad_data",
    });
  });
});

describe("faults", () => {
  it("retries a transient 503 and succeeds", async () => {
    const proxy = await faultyProxy((n) =>
      n <= 2
        ? { status: 503, body: '{"status":"error","errorType":"unavailable","error":"busy"}' }
        : "pass",
    );
    const client = createPrometheusClient({ baseUrl: proxy.url, attempts: 3, backoffMs: 10 });
    expect((await client.queryScalar("scalar(vector(7))")).data).toBe(7);
    expect(proxy.stats().requests).toBe(3);
    await proxy.close();
  });

  it("gives up after the bounded attempts and says why", async () => {
    const proxy = await faultyProxy(() => ({ status: 502, body: "<html>bad gateway</html>" }));
    const client = createPrometheusClient({ baseUrl: proxy.url, attempts: 2, backoffMs: 10 });
    await expect(client.query("vector(1)")).rejects.toMatchObject({ retryable: true, status: 502 });
    expect(proxy.stats().requests).toBe(2);
    await proxy.close();
  });

  it("surfaces warnings on a successful answer", async () => {
    const proxy = await faultyProxy(() => ({
      status: 200,
      body: JSON.stringify({
        status: "success",
        data: { resultType: "vector", result: [] },
        warnings: ["partial response: store gateway down"],
      }),
    }));
    const client = createPrometheusClient({ baseUrl: proxy.url });
    expect((await client.queryVector("up")).warnings).toEqual([
      "partial response: store gateway down",
    ]);
    await proxy.close();
  });

  it("times out a hanging server and classifies it as retryable", async () => {
    const proxy = await faultyProxy(() => "hang");
    const client = createPrometheusClient({
      baseUrl: proxy.url,
      timeoutMs: 300,
      attempts: 2,
      backoffMs: 10,
    });
    await expect(client.query("vector(1)")).rejects.toMatchObject({
      errorType: "timeout",
      retryable: true,
    });
    await proxy.close();
  });

  it("reports an unreachable server as a network error", async () => {
    const port = await freePort();
    const client = createPrometheusClient({ baseUrl: `http://127.0.0.1:${port}`, attempts: 1 });
    await expect(client.query("vector(1)")).rejects.toMatchObject({
      errorType: "network",
      retryable: true,
    });
  });

  it("never runs more queries at once than its concurrency limit", async () => {
    const proxy = await faultyProxy(() => "pass", 50);
    const client = createPrometheusClient({ baseUrl: proxy.url, concurrency: 3 });
    await Promise.all(Array.from({ length: 12 }, () => client.queryScalar("scalar(vector(1))")));
    expect(proxy.stats().requests).toBe(12);
    expect(proxy.stats().maxInFlight).toBe(3);
    await proxy.close();
  });
});
