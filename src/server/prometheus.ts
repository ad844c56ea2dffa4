/**
 * A writer for the Prometheus text exposition format (version 0.0.4): metric families with
 * HELP and TYPE lines, samples with escaped labels, and cumulative histograms from snapshots.
 */
import type { HistogramSnapshot } from "../engine/histogram";

/** The Content-Type of a /metrics answer. */
export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type Labels = Record<string, string>;

const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
const escapeHelp = (v: string) => v.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");

function labelText(labels: Labels): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${escapeLabel(v)}"`);
  return parts.length > 0 ? `{${parts.join(",")}}` : "";
}

/** A number as Prometheus writes it (+Inf, -Inf, NaN spelled out). */
function valueText(v: number): string {
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

/** Accumulates metric families; `text()` is the whole exposition. */
export class PrometheusWriter {
  private readonly lines: string[] = [];

  private family(name: string, type: "counter" | "gauge" | "histogram", help: string): void {
    this.lines.push(`# HELP ${name} ${escapeHelp(help)}`, `# TYPE ${name} ${type}`);
  }

  /** A counter or gauge with one sample per label set. */
  scalar(name: string, type: "counter" | "gauge", help: string, samples: [Labels, number][]): void {
    this.family(name, type, help);
    for (const [labels, value] of samples) this.lines.push(`${name}${labelText(labels)} ${valueText(value)}`);
  }

  /** A histogram: `_bucket` per bound (cumulative) and +Inf, then `_sum` and `_count`. */
  histogram(name: string, help: string, labels: Labels, h: HistogramSnapshot): void {
    this.family(name, "histogram", help);
    h.bounds.forEach((bound, i) => this.lines.push(`${name}_bucket${labelText({ ...labels, le: valueText(bound) })} ${h.counts[i]}`));
    this.lines.push(
      `${name}_bucket${labelText({ ...labels, le: "+Inf" })} ${h.count}`,
      `${name}_sum${labelText(labels)} ${valueText(h.sum)}`,
      `${name}_count${labelText(labels)} ${h.count}`,
    );
  }

  text(): string {
    return this.lines.join("\n") + "\n";
  }
}
