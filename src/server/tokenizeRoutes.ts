/**
 * POST /tokenize and POST /detokenize in vLLM's shapes:
 *   /tokenize   { prompt, add_special_tokens=true } | { messages, add_generation_prompt=true,
 *               add_special_tokens=false, chat_template_kwargs }, return_token_strs
 *               → { count, max_model_len, tokens, token_strs }
 *   /detokenize { tokens } → { prompt }
 */
import { readMessages, renderMessages } from "./chatMessages";
import { invalidParam, jsonResponse } from "./errors";
import { RequestParams } from "./requestParams";
import type { ServerContext } from "./serverContext";
import { readModel } from "./serverContext";
import { checkTextLength, encodeTexts } from "./textLimit";

/** Handles POST /tokenize (long texts are tokenized off the serving thread). */
export async function handleTokenize(ctx: ServerContext, body: Record<string, unknown>): Promise<Response> {
  const p = new RequestParams(body);
  readModel(p, ctx);
  const returnTokenStrs = p.boolean("return_token_strs") ?? false;
  let tokens: number[];
  if (p.has("messages")) {
    if (p.has("prompt")) throw invalidParam("prompt", "Give either 'prompt' or 'messages', not both.");
    const messages = readMessages(p.raw("messages"));
    const addGenerationPrompt = p.boolean("add_generation_prompt") ?? true;
    const extra = p.object("chat_template_kwargs");
    const addSpecial = p.boolean("add_special_tokens") ?? false;
    p.ignoreUnknown(ctx.ignoredFields, "/tokenize");
    const options = { template: ctx.chatTemplate, addGenerationPrompt, extra, maxChars: ctx.maxPromptChars, addSpecialTokens: addSpecial };
    tokens = (await renderMessages(ctx.tokenizer, messages, options)).ids;
  } else {
    const prompt = p.string("prompt");
    if (prompt === undefined) throw invalidParam("prompt", "'prompt' (a string) or 'messages' is required.");
    const addSpecial = p.boolean("add_special_tokens") ?? true;
    p.ignoreUnknown(ctx.ignoredFields, "/tokenize");
    checkTextLength("prompt", prompt, ctx.maxPromptChars);
    [tokens] = (await encodeTexts(ctx.tokenizer, [prompt], { addSpecialTokens: addSpecial })) as [number[]];
  }
  return jsonResponse({
    count: tokens.length,
    max_model_len: ctx.engine.maxModelLen,
    tokens,
    token_strs: returnTokenStrs ? tokens.map((id) => ctx.tokenizer.idToToken(id) ?? "") : null,
  });
}

/** Handles POST /detokenize. */
export function handleDetokenize(ctx: ServerContext, body: Record<string, unknown>): Response {
  const p = new RequestParams(body);
  readModel(p, ctx);
  const tokens = p.integerList("tokens", { min: 0, max: ctx.tokenizer.vocabSize - 1 });
  if (tokens === undefined) throw invalidParam("tokens", "'tokens' (a list of token ids) is required.");
  // no sequence of this model is longer; the cap keeps one request from holding the serving thread
  if (tokens.length > ctx.engine.maxModelLen)
    throw invalidParam("tokens", `'tokens' holds ${tokens.length} ids; at most ${ctx.engine.maxModelLen} (the model's context) are accepted.`);
  p.ignoreUnknown(ctx.ignoredFields, "/detokenize");
  return jsonResponse({ prompt: ctx.tokenizer.decode(tokens) });
}
