/**
 * `fastgen models`: the config.json model_type values this build runs, the checkpoints each
 * covers and what of its config is honoured or refused. The list is the weight-map registry
 * (src/model/arch/index.ts), so it cannot drift from what loads.
 */
import { parseArgs } from "node:util";
import { MODEL_TYPES } from "../model/arch";

export const MODELS_HELP = `Usage: fastgen models [--json]

Lists the Hugging Face model_type values FastGen runs, the model families they cover and the
config features each honours (a config with an unsupported model_type or feature is refused
with a message naming it).

Options:
  --json                 print [{ model_type, family, features }, ...]`;

const FOOTER = `Every RoPE family: rope_scaling or rope_parameters of type linear, llama3, yarn, dynamic
(the context grows to factor x original_max_position_embeddings, as in vLLM) or longrope.
Weights: safetensors, one file or sharded, in fp32, fp16 or bf16, or FP8 (E4M3) checkpoints
(quant_method fp8 / fbgemm_fp8 / compressed-tensors float-quantized); --quantization fp8 quantizes at load.`;

/** The registry as rows. */
export function modelRows(): { model_type: string; family: string; features: string }[] {
  return Object.entries(MODEL_TYPES).map(([type, { family, features }]) => ({ model_type: type, family, features }));
}

/** The registry as a text table. */
export function modelsTable(): string {
  const rows = modelRows();
  const typeWidth = Math.max(10, ...rows.map((r) => r.model_type.length));
  const familyWidth = Math.max(6, ...rows.map((r) => r.family.length));
  const line = (a: string, b: string, c: string) => `  ${a.padEnd(typeWidth)}  ${b.padEnd(familyWidth)}  ${c}`;
  return [
    "Supported models (config.json model_type):",
    "",
    line("model_type", "family", "features"),
    ...rows.map((r) => line(r.model_type, r.family, r.features)),
    "",
    FOOTER,
  ].join("\n");
}

export async function modelsCommand(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    options: { json: { type: "boolean" }, help: { type: "boolean", short: "h" } },
  });
  if (values.help) console.log(MODELS_HELP);
  else if (values.json) console.log(JSON.stringify(modelRows(), null, 2));
  else console.log(modelsTable());
}
