/**
 * Hand-written SVG charts, no dependencies: line charts (markers joined in the given order, an
 * optional label per point) and grouped bar charts, each drawn into a box of a larger document.
 *
 *   ┌ box ───────────────────────────┐
 *   │ title                          │
 *   │ y ┌──────────────────────────┐ │
 *   │ l │ plot area                │ │
 *   │ a └──────────────────────────┘ │
 *   │     ticks / x label            │
 *   └────────────────────────────────┘
 */

/** Where a chart goes in the document (pixels). */
export interface Box {
  x: number;
  y: number;
  w: number;
  h: number;
}

/** One curve of a line chart. */
export interface Series {
  name: string;
  color: string;
  points: [number, number][];
  /** Small text beside each point (e.g. its client count). */
  pointLabels?: string[];
  dashed?: boolean;
}

/** Colors for curves, in order (Okabe-Ito: readable by color-blind readers). */
export const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"];

const MARGIN = { left: 58, right: 14, top: 30, bottom: 42 };

/** Escapes text for SVG. */
export const esc = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** Short number text: up to 3 significant digits, no exponent for everyday sizes. */
export function fmt(x: number): string {
  if (x === 0) return "0";
  const a = Math.abs(x);
  if (a >= 1000) return x.toFixed(0);
  return String(Number(x.toPrecision(3)));
}

/** Round tick values covering [lo, hi] (steps of 1, 2 or 5 x 10^k; at least 1 when `integer`). */
export function niceTicks(lo: number, hi: number, count = 5, integer = false): number[] {
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return [0, 1];
  if (hi <= lo) hi = lo === 0 ? 1 : lo + Math.abs(lo) * 0.5;
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  let step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw)!;
  if (integer) step = Math.max(1, Math.round(step));
  const out: number[] = [];
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  if (out[out.length - 1]! < hi) out.push(Number((out[out.length - 1]! + step).toPrecision(12)));
  return out;
}

function text(x: number, y: number, s: string, attrs = ""): string {
  return `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(s)}</text>`;
}

/** Frame, title, axis labels, ticks and grid; returns the value → pixel maps. */
function axes(box: Box, title: string, xLabel: string, yLabel: string, xTicks: number[] | string[], yTicks: number[]) {
  const px = box.x + MARGIN.left;
  const py = box.y + MARGIN.top;
  const pw = box.w - MARGIN.left - MARGIN.right;
  const ph = box.h - MARGIN.top - MARGIN.bottom;
  const y0 = yTicks[0]!;
  const y1 = yTicks[yTicks.length - 1]!;
  const sy = (v: number) => py + ph - ((v - y0) / (y1 - y0)) * ph;
  const parts = [
    `<rect x="${px}" y="${py}" width="${pw}" height="${ph}" fill="#fff" stroke="#444"/>`,
    text(box.x + box.w / 2, box.y + 18, title, 'text-anchor="middle" font-size="13" font-weight="bold"'),
    text(px + pw / 2, box.y + box.h - 6, xLabel, 'text-anchor="middle" font-size="12"'),
    text(box.x + 14, py + ph / 2, yLabel, `text-anchor="middle" font-size="12" transform="rotate(-90 ${box.x + 14} ${py + ph / 2})"`),
  ];
  for (const v of yTicks) {
    parts.push(`<line x1="${px}" x2="${px + pw}" y1="${sy(v).toFixed(1)}" y2="${sy(v).toFixed(1)}" stroke="#ddd"/>`);
    parts.push(text(px - 5, sy(v) + 4, fmt(v), 'text-anchor="end" font-size="11"'));
  }
  let sx: (v: number) => number = () => px;
  if (typeof xTicks[0] === "number") {
    const xs = xTicks as number[];
    const x0 = xs[0]!;
    const x1 = xs[xs.length - 1]!;
    sx = (v: number) => px + ((v - x0) / (x1 - x0)) * pw;
    for (const v of xs) {
      parts.push(`<line x1="${sx(v).toFixed(1)}" x2="${sx(v).toFixed(1)}" y1="${py}" y2="${py + ph}" stroke="#eee"/>`);
      parts.push(text(sx(v), py + ph + 15, fmt(v), 'text-anchor="middle" font-size="11"'));
    }
  }
  return { parts, sx, sy, px, py, pw, ph };
}

/** A line chart; both axes start at 0. */
export function lineChart(box: Box, o: { title: string; xLabel: string; yLabel: string; series: Series[]; xInteger?: boolean }): string {
  const all = o.series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xTicks = niceTicks(0, Math.max(0, ...all.map((p) => p[0])), 5, o.xInteger);
  const yTicks = niceTicks(0, Math.max(0, ...all.map((p) => p[1])));
  const { parts, sx, sy } = axes(box, o.title, o.xLabel, o.yLabel, xTicks, yTicks);
  for (const s of o.series) {
    const pts = s.points.map(([x, y], i) => ({ x, y, label: s.pointLabels?.[i] })).filter((p) => Number.isFinite(p.x) && Number.isFinite(p.y));
    if (pts.length === 0) continue;
    const d = pts.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(" ");
    parts.push(`<polyline points="${d}" fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 3"' : ""}><title>${esc(s.name)}</title></polyline>`);
    for (const p of pts) {
      parts.push(`<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="3.5" fill="${s.color}"><title>${esc(`${s.name}: (${fmt(p.x)}, ${fmt(p.y)})`)}</title></circle>`);
      if (p.label) parts.push(text(sx(p.x) + 5, sy(p.y) - 5, p.label, `font-size="9" fill="${s.color}"`));
    }
  }
  return `<g class="chart">${parts.join("")}</g>`;
}

/** Grouped bars: one group per category, one bar per series inside it; y starts at 0. */
export function barChart(box: Box, o: { title: string; yLabel: string; groups: string[]; series: { name: string; color: string; values: number[] }[] }): string {
  const vals = o.series.flatMap((s) => s.values).filter(Number.isFinite);
  const yTicks = niceTicks(0, Math.max(0, ...vals));
  const { parts, sy, px, py, pw, ph } = axes(box, o.title, "", o.yLabel, o.groups, yTicks);
  const gw = pw / Math.max(1, o.groups.length);
  const bw = (gw * 0.8) / Math.max(1, o.series.length);
  o.groups.forEach((g, gi) => {
    parts.push(text(px + gw * (gi + 0.5), py + ph + 15, g, 'text-anchor="middle" font-size="11"'));
    o.series.forEach((s, si) => {
      const v = s.values[gi]!;
      if (!Number.isFinite(v)) return;
      const x = px + gw * gi + gw * 0.1 + bw * si;
      parts.push(`<rect x="${x.toFixed(1)}" y="${sy(v).toFixed(1)}" width="${(bw - 1).toFixed(1)}" height="${(py + ph - sy(v)).toFixed(1)}" fill="${s.color}"><title>${esc(`${s.name} ${g}: ${fmt(v)}`)}</title></rect>`);
    });
  });
  return `<g class="chart">${parts.join("")}</g>`;
}

/** A legend: a colored line and the name per item, one per row. */
export function legend(box: Box, title: string, items: { name: string; color: string }[]): string {
  const parts = [text(box.x + 10, box.y + 18, title, 'font-size="13" font-weight="bold"')];
  items.forEach((it, i) => {
    const y = box.y + 40 + i * 20;
    parts.push(`<line x1="${box.x + 10}" x2="${box.x + 34}" y1="${y - 4}" y2="${y - 4}" stroke="${it.color}" stroke-width="3"/>`);
    parts.push(text(box.x + 40, y, it.name, 'font-size="12"'));
  });
  return `<g class="legend">${parts.join("")}</g>`;
}

/** Free text lines in a box (notes under a legend). */
export function notes(box: Box, lines: string[]): string {
  return `<g class="notes">${lines.map((l, i) => text(box.x + 10, box.y + 14 + i * 15, l, 'font-size="11" fill="#333"')).join("")}</g>`;
}

/** A whole SVG document. */
export function svgDocument(width: number, height: number, title: string, body: string[]): string {
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">\n` +
    `<title>${esc(title)}</title>\n<rect width="100%" height="100%" fill="#fafafa"/>\n${body.join("\n")}\n</svg>\n`
  );
}
