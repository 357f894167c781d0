import { z } from "zod";

/**
 * The Prometheus HTTP API's response shapes (https://prometheus.io/docs/prometheus/latest/querying/api/),
 * which Prometheus-compatible servers (VictoriaMetrics, Thanos, Mimir) also return.
 */

/** `[unixSeconds, "value"]`; values are strings so they can carry NaN and ±Inf. */
const SamplePair = z.tuple([z.number(), z.string()]);
const Labels = z.record(z.string(), z.string());

const VectorData = z.object({
  resultType: z.literal("vector"),
  result: z.array(z.object({ metric: Labels, value: SamplePair })),
});
const MatrixData = z.object({
  resultType: z.literal("matrix"),
  result: z.array(z.object({ metric: Labels, values: z.array(SamplePair) })),
});
const ScalarData = z.object({ resultType: z.literal("scalar"), result: SamplePair });
const StringData = z.object({ resultType: z.literal("string"), result: SamplePair });

export const QueryData = z.discriminatedUnion("resultType", [
  VectorData,
  MatrixData,
  ScalarData,
  StringData,
]);
export type QueryData = z.infer<typeof QueryData>;

export const ApiResponse = z.discriminatedUnion("status", [
  z.object({
    status: z.literal("success"),
    data: QueryData,
    warnings: z.array(z.string()).optional(),
    infos: z.array(z.string()).optional(),
  }),
  z.object({
    status: z.literal("error"),
    errorType: z.string(),
    error: z.string(),
    warnings: z.array(z.string()).optional(),
  }),
]);
export type ApiResponse = z.infer<typeof ApiResponse>;

/** Parses a Prometheus sample value: `"NaN"`, `"+Inf"`, `"-Inf"` become the JS numbers. */
export function sampleValue(text: string): number {
  switch (text) {
    case "+Inf":
      return Number.POSITIVE_INFINITY;
    case "-Inf":
      return Number.NEGATIVE_INFINITY;
    default:
      return Number(text);
  }
}
