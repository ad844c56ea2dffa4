// Layers point one way (docs/architecture.md): no import cycles between files or between the
// folders of src/, and nothing imports the command line (src/cli/) but src/cli.ts.
import { describe, expect, test } from "bun:test";
import { findCycles, importGraph } from "./importGraph";

const folderOf = (file: string) => (file.includes("/") ? file.slice(0, file.indexOf("/")) : file);

describe("the import graph of src/", () => {
  const graph = importGraph();

  test("parses the imports it should (a sanity check of the parser)", () => {
    expect(graph.get("index.ts")).toContain("deploy/serve.ts");
    expect(graph.get("tokenizer/tokenizer.ts")).toContain("tokenizer/tokenizerPool.ts");
    expect(graph.get("cli.ts")).toContain("cli/serve.ts");
  });

  test("has no cycle between files (type-only imports count)", () => {
    expect(findCycles(graph).map((c) => c.join(" -> "))).toEqual([]);
  });

  test("has no cycle between folders", () => {
    const folders = new Map<string, string[]>();
    const via = new Map<string, string>();
    for (const [file, deps] of graph) {
      for (const dep of deps) {
        const [a, b] = [folderOf(file), folderOf(dep)];
        if (a === b) continue;
        folders.set(a, [...new Set([...(folders.get(a) ?? []), b])]);
        via.set(`${a} -> ${b}`, `${file} -> ${dep}`);
      }
    }
    const cycles = findCycles(folders).map((c) =>
      c.slice(1).map((to, i) => via.get(`${c[i]} -> ${to}`)).join(", "),
    );
    expect(cycles).toEqual([]);
  });

  test("src/cli/ is imported by nothing but src/cli.ts and itself", () => {
    const importers = [...graph].flatMap(([file, deps]) =>
      deps.some((d) => d.startsWith("cli/")) && file !== "cli.ts" && !file.startsWith("cli/") ? [file] : [],
    );
    expect(importers).toEqual([]);
  });
});
