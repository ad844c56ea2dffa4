/** The body of POST /v1/completions. */
import type { Static } from "@sinclair/typebox";
import { Type as t } from "@sinclair/typebox";
import { body, int, opt } from "./fields";
import { samplingProperties } from "./samplingSchema";

/** Most prompts one request may batch. */
export const MAX_PROMPTS = 1024;
/** Most logprobs alternatives per token. */
export const MAX_LOGPROBS = 20;

const PROMPT_FORMS = "a string, a list of strings, a list of token ids, or a list of token-id lists (non-empty)";

export const CompletionsBody = body(
  {
    prompt: t.Union(
      [
        t.String(),
        t.Array(t.String(), { minItems: 1, maxItems: MAX_PROMPTS }),
        t.Array(int(0), { minItems: 1 }),
        t.Array(t.Array(int(0), { minItems: 1 }), { minItems: 1, maxItems: MAX_PROMPTS }),
      ],
      { description: PROMPT_FORMS },
    ),
    ...samplingProperties,
    echo: opt(t.Boolean({ description: "The prompt before the output (with max_tokens 0: prompt scoring only)." })),
    logprobs: opt(int(0, MAX_LOGPROBS, "Top logprobs per token.")),
    suffix: opt(t.String({ description: "Only the empty string." })),
  },
  "An OpenAI text completion request, with vLLM's extras.",
);
export type CompletionsBody = Static<typeof CompletionsBody>;
