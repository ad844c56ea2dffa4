/**
 * The benchmark figure of one or more result files (one curve per label), as one SVG:
 *
 *   ┌──────────────────────┬──────────────────────┬──────────────────┐
 *   │ throughput (req/s)   │ per-token latency    │ legend, workload │
 *   │ vs mean latency      │ P50/P90/P95 at C     │ and SLA notes    │
 *   ├──────────────────────┼──────────────────────┼──────────────────┤
 *   │ effective throughput │ ... @ 4 tokens/s     │ ... @ 6 tokens/s │
 *   │ vs clients @ 2 tok/s │                      │                  │
 *   └──────────────────────┴──────────────────────┴──────────────────┘
 */
import type { BenchResult } from "./results";
import type { Box } from "./svgChart";
import { PALETTE, barChart, esc, legend, lineChart, notes, svgDocument } from "./svgChart";

const W = 430;
const H = 310;
const COLS = 3;

/** The client count the token-latency bars use: 16 when every result has it, else the largest common one. */
export function tokenLatencyClients(results: readonly BenchResult[]): number | undefined {
  const sets = results.map((r) => new Set(r.points.map((p) => p.clients)));
  const common = [...(sets[0] ?? [])].filter((c) => sets.every((s) => s.has(c))).sort((a, b) => a - b);
  if (common.includes(16)) return 16;
  return common[common.length - 1];
}

/** The figure's SVG text. */
export function benchFigure(results: readonly BenchResult[], title: string): string {
  const colors = results.map((_, i) => PALETTE[i % PALETTE.length]!);
  const rates = results[0]?.sla.genTokensPerS ?? [];
  const rows = 1 + Math.ceil(rates.length / COLS);
  const box = (col: number, row: number): Box => ({ x: col * W, y: 30 + row * H, w: W, h: H });
  const body: string[] = [`<text x="${(COLS * W) / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>`];

  body.push(
    lineChart(box(0, 0), {
      title: "Throughput vs latency",
      xLabel: "throughput (requests/s)",
      yLabel: "mean end-to-end latency (s)",
      series: results.map((r, i) => ({
        name: r.label,
        color: colors[i]!,
        points: r.points.map((p) => [p.summary.throughputRps, p.summary.meanLatencyS] as [number, number]),
        pointLabels: r.points.map((p) => `${p.clients}`),
      })),
    }),
  );

  const c = tokenLatencyClients(results);
  body.push(
    barChart(box(1, 0), {
      title: c === undefined ? "Per-token latency (no common client count)" : `Per-token generation latency, ${c} clients`,
      yLabel: "latency between tokens (ms)",
      groups: ["P50", "P90", "P95"],
      series: results.map((r, i) => {
        const t = r.points.find((p) => p.clients === c)?.summary.tokenLatencyMs;
        return { name: r.label, color: colors[i]!, values: t ? [t.p50, t.p90, t.p95] : [NaN, NaN, NaN] };
      }),
    }),
  );

  const first = results[0];
  const w = first?.workload;
  const sla = first?.sla;
  body.push(legend(box(2, 0), "Systems / policies", results.map((r, i) => ({ name: r.label, color: colors[i]! }))));
  const noteLines = [
    first ? `suite ${first.suite}` : "",
    w ? `prompt ~N(${w.meanPrompt}, ${Math.round(w.deviation * 100)}%) capped ${w.maxPrompt}, gen ~N(${w.meanGen}, ${Math.round(w.deviation * 100)}%)` : "",
    w ? `requests per point: ${w.requestsPerPoint}; closed-loop clients` : "",
    sla ? `SLA: first token <= prompt tokens / ${sla.promptTokensPerS} s,` : "",
    sla ? `EMA(span ${sla.emaSpan}) token rate > ${sla.genTokensPerS.join(" / ")} tokens/s` : "",
    "numbers beside points: client count",
  ].filter((l) => l !== "");
  body.push(notes({ ...box(2, 0), y: box(2, 0).y + 50 + results.length * 20 }, noteLines));

  rates.forEach((rate, k) => {
    body.push(
      lineChart(box(k % COLS, 1 + Math.floor(k / COLS)), {
        title: `Effective throughput, SLA ${rate} tokens/s`,
        xLabel: "clients",
        xInteger: true,
        yLabel: "requests/s meeting the SLA",
        series: results.map((r, i) => ({
          name: r.label,
          color: colors[i]!,
          points: r.points.map((p) => [p.clients, p.summary.effective.find((e) => e.genTokensPerS === rate)?.effectiveRps ?? NaN] as [number, number]),
        })),
      }),
    );
  });
  return svgDocument(COLS * W, 30 + rows * H, title, body);
}

