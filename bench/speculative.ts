/**
 * Speculative decoding on the CPU: tokens/s and acceptance with and without ngram proposals, at
 * batch 1, 4 and 16, on two workloads through the whole engine (scheduler + fg_step):
 *
 *   quote:  the prompt is a passage given twice; the continuation tends to quote it again, so
 *           prompt lookup pays (as in summarization or code editing);
 *   fresh:  a short English prompt sampled at temperature 1 (seeded): little repeats.
 *
 * Each setting runs the requests twice on one engine and times the second round (a serving
 * engine's steady state: graphs captured, the governor settled). Every run checks the outputs
 * equal the run without speculation. Prints a table and writes
 * bench/results/cpu-speculative-<model>.json.
 *
 *   bun run bench -- speculative [--model DIR] [--threads N] [--tokens N] [--draft DIR] [--penalized] [--batches 1,4,16]
 *
 * --draft DIR verifies a draft model's proposals instead of ngram ones; on the device, with
 * random weights, pass the target itself (acceptance 100%: the mechanism's ceiling).
 * --penalized adds presence 0.5, frequency 0.3 and repetition 1.1 to every request: each
 * verification row is then penalized with the drafts before it (per-row penalties, issue #22).
 * --no-auto-disable drafts in every eligible pass (the mechanism alone); by default the
 * governor (src/engine/speculative/governor.ts) speculates only where timed passes show it pays,
 * and the "drafted" column says in what share of the decode steps a sequence carried a draft.
 */
import { cpus } from "node:os";
import { basename, join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { EngineCore } from "../src/engine/engineCore";
import type { SamplingOptions } from "../src/engine/samplingOptions";
import { speculativeConfig } from "../src/engine/speculative/config";
import { defaultModelDir } from "../src/model/defaultModel";

const PASSAGE =
  "The old lighthouse keeper climbed the stairs every evening at dusk. He lit the lamp, wound the clock, and wrote one line in his log about the sea. ";

interface Row { workload: string; batch: number; spec: string; tokens: number; ms: number; tokPerS: number; acceptance: number | null; draftTokens: number; steps: number; drafted: number | null }

const PENALTIES: Partial<SamplingOptions> = { presencePenalty: 0.5, frequencyPenalty: 0.3, repetitionPenalty: 1.1 };

async function once(modelDir: string, workload: string, batch: number, spec: boolean, threads: number, maxTokens: number, draft?: string, penalized = false, autoDisable = true) {
  const core = await EngineCore.load(modelDir, {
    maxBatchTokens: 512, maxSeqs: 64, kvBlocks: 2048, threads,
    speculative: !spec ? null : draft
      ? speculativeConfig({ method: "draft", draftModel: draft, numSpeculativeTokens: 4, disableByBatchSize: 64, autoDisable })
      : speculativeConfig({ method: "ngram", numSpeculativeTokens: 4, promptLookupMin: 2, promptLookupMax: 4, disableByBatchSize: 64, autoDisable }),
  });
  const tok = core.tokenizer;
  const sampling: SamplingOptions = {
    ...(workload === "quote" ? { maxTokens, temperature: 0, ignoreEos: true } : { maxTokens, temperature: 1, seed: 7, ignoreEos: true }),
    ...(penalized ? PENALTIES : {}),
  };
  // Two rounds of the same requests on one engine, the second timed: the first warms what a
  // serving engine has warm (CUDA graphs, the governor's choice per batch size, the draft's pool).
  let out = new Map<string, number[]>();
  let ms = 0, steps = 0;
  let before = { numDrafts: 0, numDraftTokens: 0, numAcceptedTokens: 0 };
  for (let round = 0; round < 2; round++) {
    const m0 = core.metrics().specDecode;
    if (m0) before = { numDrafts: m0.numDrafts, numDraftTokens: m0.numDraftTokens, numAcceptedTokens: m0.numAcceptedTokens };
    for (let i = 0; i < batch; i++) {
      const text = workload === "quote" ? `${PASSAGE}${PASSAGE}` : `Story ${i}: once upon a time,`;
      core.addRequest(`r${round}-${i}`, tok.encode(text, { addSpecialTokens: true }), { ...sampling, seed: (sampling.seed ?? 0) + i });
    }
    out = new Map<string, number[]>();
    // prefill outside the timing: the first pass holds every prompt (budget 512)
    for (const it of core.step()) out.set(it.id, it.deltas.flatMap((d) => d.tokenIds));
    const t0 = performance.now();
    steps = 0;
    while (core.hasWork()) {
      for (const it of core.step()) out.set(it.id, [...(out.get(it.id) ?? []), ...it.deltas.flatMap((d) => d.tokenIds)]);
      steps++;
    }
    ms = performance.now() - t0;
  }
  const m1 = core.metrics().specDecode;
  const m = m1 && { numDrafts: m1.numDrafts - before.numDrafts, numDraftTokens: m1.numDraftTokens - before.numDraftTokens, numAcceptedTokens: m1.numAcceptedTokens - before.numAcceptedTokens };
  core.destroy();
  let tokens = 0;
  for (const ids of out.values()) tokens += ids.length - 1; // the first token came with the prefill
  // sequence-steps: each sequence decodes until its tokens are out; a draft verified counts one
  const seqSteps = [...out.values()].reduce((a, ids) => a + ids.length - 1, 0) - (m?.numAcceptedTokens ?? 0);
  return {
    ids: [...out.entries()].sort().map(([, v]) => v), tokens, ms, steps,
    acceptance: m && m.numDraftTokens > 0 ? m.numAcceptedTokens / m.numDraftTokens : null, draftTokens: m?.numDraftTokens ?? 0,
    drafted: m ? m.numDrafts / Math.max(1, seqSteps) : null,
  };
}

export async function main(argv: string[]): Promise<void> {
  const { values } = parseArgs({ args: argv, options: { model: { type: "string" }, threads: { type: "string" }, tokens: { type: "string" }, draft: { type: "string" }, penalized: { type: "boolean" }, batches: { type: "string" }, "no-auto-disable": { type: "boolean" } } });
  const penalized = values.penalized ?? false;
  const autoDisable = !values["no-auto-disable"];
  const modelDir = values.model ?? defaultModelDir();
  const threads = Number(values.threads ?? 0);
  const maxTokens = Number(values.tokens ?? 96);
  const rows: Row[] = [];
  for (const workload of ["quote", "fresh"]) {
    for (const batch of (values.batches ?? "1,4,16").split(",").map(Number)) {
      const off = await once(modelDir, workload, batch, false, threads, maxTokens, undefined, penalized);
      const on = await once(modelDir, workload, batch, true, threads, maxTokens, values.draft, penalized, autoDisable);
      // fp32 (CPU): speculation must not change a token. bf16 (CUDA): a verification pass has other
      // kernel shapes than one-token decode and may break a near-tie the other way: count, don't stop.
      const same = on.ids.filter((ids, i) => JSON.stringify(ids) === JSON.stringify(off.ids[i])).length;
      if (same < on.ids.length) {
        if ((process.env.FASTGEN_BACKEND ?? "cpu") === "cpu") throw new Error(`${workload} batch ${batch}: outputs differ with speculation`);
        console.warn(`${workload} batch ${batch}: ${on.ids.length - same} of ${on.ids.length} sequences differ with speculation (bf16 numerics)`);
      }
      for (const [spec, r] of [["off", off], [values.draft ? "draft k=4" : "ngram k=4", on]] as const) {
        rows.push({ workload, batch, spec, tokens: r.tokens, ms: r.ms, tokPerS: (r.tokens / r.ms) * 1000, acceptance: r.acceptance, draftTokens: r.draftTokens, steps: r.steps, drafted: spec === "off" ? null : r.drafted });
      }
    }
  }
  console.log(`\nSpeculative decoding (${values.draft ? `draft ${basename(values.draft)}` : "ngram"}${penalized ? ", penalized requests" : ""}${autoDisable ? "" : ", no auto-disable"}), model ${basename(modelDir)}, ${cpus().length} cores (${cpus()[0]?.model ?? "?"})`);
  console.table(rows.map((r) => ({
    workload: r.workload, batch: r.batch, spec: r.spec, tokens: r.tokens, passes: r.steps, "tokens/s": r.tokPerS.toFixed(0),
    acceptance: r.acceptance === null ? "-" : `${(100 * r.acceptance).toFixed(0)}%`,
    drafted: r.drafted === null ? "-" : `${(100 * r.drafted).toFixed(0)}%`,
  })));
  const out = {
    command: `bun run bench -- speculative${values.model ? ` --model ${values.model}` : ""}${values.threads ? ` --threads ${threads}` : ""}${values.draft ? ` --draft ${values.draft}` : ""}${penalized ? " --penalized" : ""}${values.batches ? ` --batches ${values.batches}` : ""}${values.tokens ? ` --tokens ${maxTokens}` : ""}${autoDisable ? "" : " --no-auto-disable"}`,
    date: new Date().toISOString(), model: basename(modelDir), autoDisable, cores: cpus().length, cpu: cpus()[0]?.model, maxTokens, penalties: penalized ? PENALTIES : null, rows,
  };
  const backend = process.env.FASTGEN_BACKEND ?? "cpu";
  const file = join(import.meta.dir, "results", `${backend}-speculative-${values.draft ? `draft-${resolve(values.draft) === resolve(modelDir) ? "" : `${basename(values.draft)}-`}` : ""}${penalized ? "penalized-" : ""}${autoDisable ? "" : "noauto-"}${basename(modelDir)}.json`);
  await Bun.write(file, JSON.stringify(out, null, 2) + "\n");
  console.log(`wrote ${file}`);
}

if (import.meta.main) await main(process.argv.slice(2));
