// Reports of the load generator from synthetic results: the summary table, the SVG figure (one
// curve per label, one effective-throughput panel per SLA rate), tick choice, and progress output.
import { describe, expect, test } from "bun:test";
import { benchFigure, tokenLatencyClients } from "../../bench/load/figure";
import type { RequestRecord } from "../../bench/load/metrics";
import { DEFAULT_SLA } from "../../bench/load/metrics";
import { bar, streamProgress } from "../../bench/load/progress";
import type { BenchResult } from "../../bench/load/results";
import { RESULT_SCHEMA, renderMarkdown, renderText, resummarize, tableRows } from "../../bench/load/results";
import { esc, fmt, niceTicks } from "../../bench/load/svgChart";

/** A result whose requests at c clients each take `base * c` seconds (10 tokens, 0.1 s apart after the first). */
function synthetic(label: string, base: number, clients = [1, 2, 4]): BenchResult {
  const points = clients.map((c) => {
    const requests: RequestRecord[] = Array.from({ length: 4 }, (_, i) => {
      const ttft = base * c;
      const times = Array.from({ length: 10 }, (_, k) => ttft + k * 0.1);
      return { index: i, client: i % c, promptTokens: 512, genTokens: 10, tokensOut: 10, startS: i * 0.5, ttftS: ttft, tokenTimesS: times, e2eS: times[9]! };
    });
    return { clients: c, summary: undefined as never, requests };
  });
  return resummarize({
    schema: RESULT_SCHEMA,
    suite: "synthetic",
    label,
    command: "test",
    date: "2026-01-01T00:00:00Z",
    system: { model: "m" },
    workload: { meanPrompt: 512, meanGen: 10, deviation: 0.3, maxPrompt: 4000, seed: 1, requestsPerPoint: "4" },
    sla: DEFAULT_SLA,
    points,
  });
}

describe("summary table", () => {
  test("one row per label and client count, effective throughput with the share", () => {
    const rows = tableRows([synthetic("a<b", 0.2), synthetic("fast", 0.1)]);
    expect(rows).toHaveLength(1 + 6);
    expect(rows[0]).toContain("eff req/s @4tok/s");
    // a<b at 4 clients: first token at 0.8 s <= 512/512 = 1 s, 10 tokens/s: every request meets every rate.
    const row = rows.find((r) => r[0] === "a<b" && r[1] === "4")!;
    expect(row[row.length - 1]).toEndWith("(100%)");
    expect(renderText(rows).split("\n")).toHaveLength(2 + 6);
    const md = renderMarkdown(rows);
    expect(md.split("\n")[1]).toMatch(/^\| --- \| --- \| ---: /);
  });
});

describe("figure", () => {
  test("an SVG with a curve per label and a panel per SLA rate; labels escaped", () => {
    const svg = benchFigure([synthetic("a<b", 0.2), synthetic("fast", 0.1)], "T & t");
    expect(svg.startsWith("<svg")).toBe(true);
    expect(svg.trimEnd().endsWith("</svg>")).toBe(true);
    expect(svg).toContain("T &amp; t");
    expect(svg).toContain("a&lt;b");
    expect(svg).not.toContain("a<b");
    expect(svg.match(/<g class="chart">/g)).toHaveLength(2 + DEFAULT_SLA.genTokensPerS.length);
    // 2 labels x (throughput-latency + 3 effective-throughput panels) polylines
    expect(svg.match(/<polyline /g)).toHaveLength(2 * (1 + DEFAULT_SLA.genTokensPerS.length));
    expect(svg).not.toContain("NaN");
    expect(svg).toContain("Per-token generation latency, 4 clients");
  });

  test("token-latency bars use 16 clients when all have it, else the largest common count", () => {
    expect(tokenLatencyClients([synthetic("a", 0.1, [1, 16, 32]), synthetic("b", 0.1, [16, 32])])).toBe(16);
    expect(tokenLatencyClients([synthetic("a", 0.1, [1, 2, 4]), synthetic("b", 0.1, [2, 4, 8])])).toBe(4);
    expect(tokenLatencyClients([synthetic("a", 0.1, [1]), synthetic("b", 0.1, [2])])).toBeUndefined();
  });
});

describe("svg helpers", () => {
  test("nice ticks cover the range in 1/2/5 steps", () => {
    expect(niceTicks(0, 0.93)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(0, 32, 5, true)).toEqual([0, 10, 20, 30, 40]);
    expect(niceTicks(0, 2, 5, true)).toEqual([0, 1, 2]);
    expect(niceTicks(0, 0)).toEqual([0, 0.2, 0.4, 0.6, 0.8, 1]);
    expect(niceTicks(NaN, 1)).toEqual([0, 1]);
  });

  test("numbers and text", () => {
    expect(fmt(0.30000000000000004)).toBe("0.3");
    expect(fmt(1234.5)).toBe("1235");
    expect(esc(`<a href="x">&</a>`)).toBe("&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;");
  });
});

describe("progress", () => {
  const sink = (isTTY: boolean) => {
    const out: string[] = [];
    return { out, stream: { isTTY, write: (s: string) => out.push(s) } };
  };

  test("plain lines when not on a TTY: the start, each quarter, the end", () => {
    const { out, stream } = sink(false);
    const p = streamProgress("x", stream);
    p.startPoint(2, 8, 1, 3);
    for (let i = 0; i < 8; i++) p.requestDone(i === 0);
    p.endPoint("x clients 2: done");
    expect(out.every((l) => l.endsWith("\n") && !l.includes("\r"))).toBe(true);
    expect(out[0]).toBe("x: clients 2 (1/3), 8 requests\n");
    expect(out.filter((l) => l.includes("requests,"))).toHaveLength(3); // 2/8, 4/8, 6/8
    expect(out.some((l) => l.includes("1 failed"))).toBe(true);
    expect(out[out.length - 1]).toBe("  x clients 2: done\n");
  });

  test("a bar redrawn in place on a TTY", () => {
    const { out, stream } = sink(true);
    const p = streamProgress("x", stream);
    p.startPoint(1, 2, 1, 1);
    p.requestDone(false);
    expect(out[out.length - 1]).toStartWith("\r\x1b[K");
    expect(out[out.length - 1]).toContain(`${bar(1, 2)} 1/2 requests`);
    expect(bar(1, 2, 4)).toBe("██░░");
  });
});
