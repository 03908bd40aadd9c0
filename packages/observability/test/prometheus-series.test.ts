import { Counter, Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import { promMetrics } from "../src/index.js";

/** The value of `name` with `labels` in the registry's JSON, read as a scrape reads it. */
async function scraped(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
  metricName = name,
): Promise<number | undefined> {
  const metric = (await registry.getMetricsAsJSON()).find((m) => m.name === name);
  const entry = metric?.values.find(
    (v) =>
      (v as { metricName?: string }).metricName ===
        (metricName === name ? undefined : metricName) &&
      Object.entries(labels).every(([k, value]) => v.labels[k] === value),
  );
  return entry?.value;
}

describe("bound series count in plain numbers until prom-client reads them", () => {
  it("a bound counter's increments all show at the scrape, and again after more", async () => {
    const registry = new Registry();
    const counter = promMetrics(registry).counter("t_commands_total", "Commands.", ["command"]);
    const mail = counter.bind({ command: "MAIL" });
    for (let i = 0; i < 1000; i++) mail.inc();
    mail.inc(5);
    expect(await scraped(registry, "t_commands_total", { command: "MAIL" })).toBe(1005);
    mail.inc();
    expect(await registry.metrics()).toContain('t_commands_total{command="MAIL"} 1006');
  });

  it("two observers binding the same series share one accumulator", async () => {
    const registry = new Registry();
    const first = promMetrics(registry).counter("t_shared_total", "Shared.", ["result"]);
    const second = promMetrics(registry).counter("t_shared_total", "Shared.", ["result"]);
    first.bind({ result: "accepted" }).inc(2);
    second.bind({ result: "accepted" }).inc(3);
    first.inc({ result: "accepted" }); // unbound increments go straight to prom-client
    expect(await scraped(registry, "t_shared_total", { result: "accepted" })).toBe(6);
  });

  it("a bound counter refuses what prom-client refuses, when it is called", () => {
    const registry = new Registry();
    const series = promMetrics(registry).counter("t_checked_total", "Checked.").bind({});
    expect(() => series.inc(-1)).toThrow(/decrease/);
    expect(() => series.inc(Number.NaN)).toThrow(TypeError);
  });

  it("a bound histogram's observations reach prom-client at the scrape, or at 256 waiting", async () => {
    const registry = new Registry();
    const histogram = promMetrics(registry).histogram(
      "t_size_bytes",
      "Sizes.",
      ["result"],
      [1024, 10_240],
    );
    const accepted = histogram.bind({ result: "accepted" });
    accepted.observe(100);
    accepted.observe(5000);
    expect(
      await scraped(registry, "t_size_bytes", { result: "accepted" }, "t_size_bytes_count"),
    ).toBe(2);
    expect(
      await scraped(registry, "t_size_bytes", { result: "accepted" }, "t_size_bytes_sum"),
    ).toBe(5100);
    expect(() => accepted.observe(Number.POSITIVE_INFINITY)).toThrow(TypeError);

    // Without a scrape the queue is applied when full, so memory stays bounded: 255 waiting
    // observations are still held back (a reset does not clear them), the 256th applies them all.
    const count = () =>
      scraped(registry, "t_size_bytes", { result: "accepted" }, "t_size_bytes_count");
    for (let i = 0; i < 255; i++) accepted.observe(1);
    registry.resetMetrics();
    expect(await count()).toBe(255);
    for (let i = 0; i < 256; i++) accepted.observe(1);
    registry.resetMetrics();
    expect(await count()).toBeUndefined();
  });

  it("a metric registered by someone else is counted directly", async () => {
    const registry = new Registry();
    const theirs = new Counter({
      name: "t_theirs_total",
      help: "Made elsewhere.",
      labelNames: ["command"],
      registers: [registry],
    });
    const series = promMetrics(registry).counter("t_theirs_total", "Ours.", ["command"]);
    series.bind({ command: "RCPT" }).inc(4);
    const value = (await theirs.get()).values.find((v) => v.labels.command === "RCPT")?.value;
    expect(value).toBe(4);
  });
});
