/** The canary step a service is in, as the policy service keeps it. */
export interface CanaryState {
  /** Traffic weight of the canary, percent. */
  readonly weight: number;
  /** When the service entered this step. */
  readonly since: string;
  /** When this step's bake was found healthy (a promotion was asked for), or null. */
  readonly healthyAt: string | null;
}

export type CanaryReadiness =
  | { readonly ready: true; readonly next: number }
  | { readonly ready: false; readonly reason: string };

/** The weight after `weight` in the declared steps, or null at the last step. */
export function nextCanaryWeight(steps: readonly number[], weight: number): number | null {
  return steps.find((step) => step > weight) ?? null;
}

/**
 * Whether a canary step has baked: the service has been in it for `bakeTimeMs` by the time of the
 * evidence, the gate allows promotion on that evidence, a later step exists, and this step was
 * not already found healthy (so each step asks for one promotion).
 */
export function canaryReadiness(input: {
  readonly canary: CanaryState | null;
  readonly steps: readonly number[];
  readonly bakeTimeMs: number;
  readonly allowed: boolean;
  readonly evaluatedAt: string;
}): CanaryReadiness {
  const { canary } = input;
  if (canary === null) return { ready: false, reason: "not in a canary step" };
  if (canary.healthyAt !== null) return { ready: false, reason: "this step already baked" };
  const next = nextCanaryWeight(input.steps, canary.weight);
  if (next === null) return { ready: false, reason: `weight ${canary.weight} is the last step` };
  if (!input.allowed) return { ready: false, reason: "the gate blocks promotion" };
  const baked = Date.parse(input.evaluatedAt) - Date.parse(canary.since);
  if (baked < input.bakeTimeMs) {
    return { ready: false, reason: `baked ${baked} ms of ${input.bakeTimeMs} ms` };
  }
  return { ready: true, next };
}
