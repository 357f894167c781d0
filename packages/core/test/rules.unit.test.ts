import { describe, expect, it } from "vitest";
import {
  errorRatioRecord,
  escapeLabelValue,
  hasWindowPlaceholder,
  labelMatcher,
  recordingRuleGroups,
  renderSliQuery,
  totalRateRecord,
} from "@safedeploy/core";

const checkout = {
  service: "checkout",
  slo: "availability",
  objective: 99.9,
  errorQuery: 'sum(rate(http_requests_total{service="checkout",code=~"5.."}[{{.window}}]))',
  totalQuery: 'sum(rate(http_requests_total{service="checkout"}[{{ .window }}]))',
};

describe("renderSliQuery", () => {
  it("replaces every window placeholder", () => {
    expect(renderSliQuery("a[{{.window}}] / b[{{ .window }}]", "5m")).toBe("a[5m] / b[5m]");
    expect(hasWindowPlaceholder(checkout.errorQuery)).toBe(true);
    expect(hasWindowPlaceholder("sum(x)")).toBe(false);
  });

  it("refuses a window that is not a duration, so nothing can be injected", () => {
    expect(() => renderSliQuery("x[{{.window}}]", "5m]) or vector(1) #")).toThrow(RangeError);
  });
});

describe("PromQL escaping", () => {
  it("escapes quotes, backslashes and newlines in label values", () => {
    expect(escapeLabelValue('a"b\\c\nd')).toBe('a\\"b\\\\c\\nd');
    expect(labelMatcher("service", 'x"} or vector(1)')).toBe('service="x\\"} or vector(1)"');
  });

  it("refuses label names that are not identifiers", () => {
    expect(() => labelMatcher('service"', "x")).toThrow(RangeError);
  });
});

describe("recordingRuleGroups", () => {
  it("emits Sloth-named rules with Sloth labels for every window", () => {
    const [group] = recordingRuleGroups([checkout], ["5m", "1h"]);
    expect(group?.name).toBe("sloth-slo-sli-recordings-checkout-availability");
    expect(group?.rules.map((rule) => rule.record)).toEqual([
      "slo:sli_error:ratio_rate5m",
      "safedeploy:sli_total:rate5m",
      "slo:sli_error:ratio_rate1h",
      "safedeploy:sli_total:rate1h",
      "slo:objective:ratio",
    ]);
    expect(group?.rules[0]?.labels).toEqual({
      sloth_service: "checkout",
      sloth_slo: "availability",
      sloth_id: "checkout-availability",
    });
    expect(group?.rules[0]?.expr).toContain("[5m]");
    expect(group?.rules[0]?.expr).not.toContain("{{");
    expect(group?.rules.at(-1)?.expr).toBe("vector(0.999)");
    expect(errorRatioRecord("30d")).toBe("slo:sli_error:ratio_rate30d");
    expect(totalRateRecord("30d")).toBe("safedeploy:sli_total:rate30d");
  });
});
