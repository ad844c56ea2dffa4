/** Every architecture this build runs, by Hugging Face model_type. */
import { falcon } from "./falcon";
import { llama } from "./llama";
import { opt } from "./opt";
import { phi } from "./phi";
import type { Architecture } from "./types";

export const ARCHITECTURES: Record<string, Architecture> = {
  llama,
  mistral: llama,
  qwen2: llama,
  mixtral: llama,
  opt,
  falcon,
  phi,
};
