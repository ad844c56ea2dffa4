/** The bodies of POST /tokenize and POST /detokenize (vLLM's shapes). */
import type { Static } from "@sinclair/typebox";
import { Type as t } from "@sinclair/typebox";
import { chatTemplateProperties, MessagesSchema } from "./chatSchema";
import { body, int, opt } from "./fields";

export const TokenizeBody = body(
  {
    model: opt(t.String()),
    prompt: opt(t.String({ description: "Text to tokenize (or give messages)." })),
    messages: opt(MessagesSchema),
    ...chatTemplateProperties,
    add_special_tokens: opt(t.Boolean()),
    return_token_strs: opt(t.Boolean()),
  },
  "A prompt or a chat to tokenize.",
);
export type TokenizeBody = Static<typeof TokenizeBody>;

export const DetokenizeBody = body({ model: opt(t.String()), tokens: t.Array(int(0), { description: "Token ids." }) }, "Token ids to decode.");
export type DetokenizeBody = Static<typeof DetokenizeBody>;
