/**
 * POST /tokenize and POST /detokenize in vLLM's shapes:
 *   /tokenize   { prompt, add_special_tokens=true } | { messages, add_generation_prompt=true,
 *               add_special_tokens=false, chat_template_kwargs }, return_token_strs
 *               → { count, max_model_len, tokens, token_strs }
 *   /detokenize { tokens } → { prompt }
 */
import { readMessages, renderMessages } from "./chatMessages";
import { invalidParam, jsonResponse } from "./errors";
import { checkTokenIds } from "./requestParams";
import type { DetokenizeBody, TokenizeBody } from "./schemas/tokenizeSchema";
import type { ServerContext } from "./serverContext";
import { readModel } from "./serverContext";
import { checkTextLength, encodeTexts } from "./textLimit";

/** Handles POST /tokenize (long texts are tokenized off the serving thread). */
export async function handleTokenize(ctx: ServerContext, body: TokenizeBody): Promise<Response> {
  readModel(body.model, ctx);
  const returnTokenStrs = body.return_token_strs ?? false;
  let tokens: number[];
  if (body.messages !== undefined) {
    if (body.prompt !== undefined) throw invalidParam("prompt", "Give either 'prompt' or 'messages', not both.");
    const messages = readMessages(body.messages);
    const options = {
      template: ctx.chatTemplate, addGenerationPrompt: body.add_generation_prompt ?? true, extra: body.chat_template_kwargs,
      maxChars: ctx.maxPromptChars, addSpecialTokens: body.add_special_tokens ?? false,
    };
    tokens = (await renderMessages(ctx.tokenizer, messages, options)).ids;
  } else {
    const prompt = body.prompt;
    if (prompt === undefined) throw invalidParam("prompt", "'prompt' (a string) or 'messages' is required.");
    checkTextLength("prompt", prompt, ctx.maxPromptChars);
    [tokens] = (await encodeTexts(ctx.tokenizer, [prompt], { addSpecialTokens: body.add_special_tokens ?? true })) as [number[]];
  }
  return jsonResponse({
    count: tokens.length,
    max_model_len: ctx.engine.maxModelLen,
    tokens,
    token_strs: returnTokenStrs ? tokens.map((id) => ctx.tokenizer.idToToken(id) ?? "") : null,
  });
}

/** Handles POST /detokenize. */
export function handleDetokenize(ctx: ServerContext, body: DetokenizeBody): Response {
  readModel(body.model, ctx);
  const tokens = body.tokens;
  checkTokenIds("tokens", tokens, ctx.tokenizer.vocabSize);
  // no sequence of this model is longer; the cap keeps one request from holding the serving thread
  if (tokens.length > ctx.engine.maxModelLen)
    throw invalidParam("tokens", `'tokens' holds ${tokens.length} ids; at most ${ctx.engine.maxModelLen} (the model's context) are accepted.`);
  return jsonResponse({ prompt: ctx.tokenizer.decode(tokens) });
}
