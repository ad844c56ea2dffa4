/**
 * `fastgen generate`: runs prompts through one engine (one batch) and prints the result.
 * Other checks drive the engine through this command's --json output: keep its shape stable.
 *   one prompt:     { token_ids, text, finish_reason, logprobs? }
 *   several:        { results: [ ...one object per prompt, in flag order... ] }
 */
import { parseArgs } from "node:util";
import { EngineCore } from "../engine/engineCore";
import { runToCompletion } from "../engine/runToCompletion";
import type { SamplingOptions } from "../engine/samplingOptions";
import { ENGINE_FLAG_HELP, ENGINE_FLAG_SPEC, UsageError, engineOptionsFromFlags, floatFlag, intFlag } from "../ops/engineFlags";
import { MODEL_FLAG_SPEC, modelsFrom } from "./modelFlags";

export const GENERATE_HELP = `Usage: fastgen generate [--model ID|DIR] (--prompt TEXT | --prompt-ids 1,2,3)... [options]

Runs each prompt to completion in one engine and prints the output. Several --prompt /
--prompt-ids flags run together (one batch) and print { "results": [...] } in flag order.

Options:
  --model ID|DIR         a Hugging Face model directory, or a hub id org/name[@revision] found
                         in the hub cache or else downloaded into it (default: the embedded
                         demo model)
  --download-dir DIR     the hub cache (default: $HF_HUB_CACHE, else $HF_HOME/hub, else
                         ~/.cache/huggingface/hub)
  --prompt TEXT          a text prompt (repeatable)
  --prompt-ids LIST      a prompt as comma-separated token ids (repeatable)
  --max-tokens N         tokens to generate (default 64)
  --min-tokens N         tokens to generate before EOS / stop ids may end it (default 0)
  --temperature T        0 = greedy (default 0)
  --top-p P  --top-k K  --min-p P
  --seed S               sampling seed (default 0)
  --logprobs K           also return the top-K logprobs of every generated token
  --ignore-eos           keep generating past EOS
  --json                 print JSON instead of text
${ENGINE_FLAG_HELP}`;

type Prompt = { text: string } | { ids: number[] };

function parsePromptIds(s: string): number[] {
  const ids = s.split(",").map((x) => x.trim()).filter((x) => x !== "").map(Number);
  if (ids.length === 0 || ids.some((n) => !Number.isInteger(n) || n < 0))
    throw new UsageError(`--prompt-ids must be comma-separated non-negative integers, got "${s}"`);
  return ids;
}

/** Runs `fastgen generate` with the given argv (after the subcommand). */
export async function generateCommand(argv: string[]): Promise<void> {
  const { values, tokens } = parseArgs({
    args: argv,
    tokens: true,
    strict: true,
    options: {
      ...MODEL_FLAG_SPEC,
      prompt: { type: "string", multiple: true },
      "prompt-ids": { type: "string", multiple: true },
      "max-tokens": { type: "string" },
      "min-tokens": { type: "string" },
      temperature: { type: "string" },
      "top-p": { type: "string" },
      "top-k": { type: "string" },
      "min-p": { type: "string" },
      seed: { type: "string" },
      logprobs: { type: "string" },
      "ignore-eos": { type: "boolean" },
      json: { type: "boolean" },
      help: { type: "boolean", short: "h" },
      ...ENGINE_FLAG_SPEC,
    },
  });
  if (values.help) {
    console.log(GENERATE_HELP);
    return;
  }
  // Keep the order the flags were given in across --prompt and --prompt-ids.
  const prompts: Prompt[] = [];
  for (const t of tokens ?? []) {
    if (t.kind !== "option" || t.value === undefined) continue;
    if (t.name === "prompt") prompts.push({ text: t.value });
    if (t.name === "prompt-ids") prompts.push({ ids: parsePromptIds(t.value) });
  }
  if (prompts.length === 0) throw new UsageError("give at least one --prompt or --prompt-ids (see --help)");

  const logprobs = intFlag("logprobs", values.logprobs, 0) ?? 0;
  if (logprobs > 20) throw new UsageError("--logprobs must be at most 20");
  const sampling: SamplingOptions = {
    maxTokens: intFlag("max-tokens", values["max-tokens"]) ?? 64,
    minTokens: intFlag("min-tokens", values["min-tokens"], 0) ?? 0,
    temperature: floatFlag("temperature", values.temperature) ?? 0,
    topP: floatFlag("top-p", values["top-p"]) ?? 1,
    topK: intFlag("top-k", values["top-k"], -1) ?? -1,
    minP: floatFlag("min-p", values["min-p"]) ?? 0,
    seed: intFlag("seed", values.seed, 0) ?? 0,
    logprobs,
    ignoreEos: values["ignore-eos"] ?? false,
  };

  // Download progress to stderr: stdout holds only the output (--json is parsed by other tools).
  const { model, options } = await modelsFrom(values, engineOptionsFromFlags(values), (m) => console.error(`fastgen: ${m}`));
  const core = await EngineCore.load(model.dir, options);
  try {
    const requests = prompts.map((p) => ("text" in p ? { prompt: p.text } : { promptIds: p.ids }));
    const results = runToCompletion(core, requests, sampling);
    const shaped = results.map((r) => ({
      token_ids: r.tokenIds,
      text: r.text,
      finish_reason: r.finishReason,
      ...(logprobs > 0 ? { logprobs: r.logprobs } : {}),
    }));
    if (values.json) console.log(JSON.stringify(shaped.length === 1 ? shaped[0] : { results: shaped }));
    else for (const r of shaped) console.log(r.text);
  } finally {
    core.destroy();
  }
}
