/**
 * A fake EngineClient for the HTTP server's unit tests: a character-level tokenizer (a real
 * Tokenizer built from a tiny tokenizer.json) and a generate() that yields one character per delta
 * from a fixed reply, honouring max/min tokens, stop strings, stop token ids, EOS, n, logprobs and
 * the abort signal. It records every request and every abort so tests can assert on them.
 */
import type { EngineClient, EngineMetrics, GenerateRequest, GenerationDelta, TokenLogprob } from "../../src/engine/types";
import { EngineOverloadedError, RequestRejectedError } from "../../src/engine/types";
import { Tokenizer } from "../../src/tokenizer/tokenizer";

export const BOS_ID = 0;
export const EOS_ID = 1;
/** The chat template of the fake model. */
export const FAKE_CHAT_TEMPLATE =
  "{{ bos_token }}{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}{% if add_generation_prompt %}<assistant>{% endif %}";

/** A tokenizer with one token per printable ASCII character (id = code - 29), BOS 0, EOS 1. */
export function charTokenizer(chatTemplate: string | null = FAKE_CHAT_TEMPLATE, generationConfig?: Record<string, unknown>): Tokenizer {
  const vocab: Record<string, number> = { "<s>": BOS_ID, "</s>": EOS_ID, "<unk>": 2 };
  for (let c = 32; c < 127; c++) vocab[String.fromCharCode(c)] = c - 29;
  vocab["\n"] = 98;
  const special = (id: number, content: string) => ({ id, content, special: true, single_word: false, lstrip: false, rstrip: false, normalized: false });
  return Tokenizer.fromJSON({
    tokenizer: {
      version: "1.0",
      added_tokens: [special(BOS_ID, "<s>"), special(EOS_ID, "</s>")],
      normalizer: null,
      pre_tokenizer: null,
      post_processor: {
        type: "TemplateProcessing",
        single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
        pair: [],
        special_tokens: { "<s>": { id: "<s>", ids: [BOS_ID], tokens: ["<s>"] } },
      },
      decoder: { type: "Fuse" },
      model: { type: "BPE", vocab, merges: [], unk_token: "<unk>", dropout: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false },
    },
    tokenizerConfig: { bos_token: "<s>", eos_token: "</s>", ...(chatTemplate !== null ? { chat_template: chatTemplate } : {}) },
    generationConfig,
  });
}

/** The text sample `index` generates before EOS. */
export const replyText = (index: number) => `Reply ${index}: the quick brown fox jumps over the lazy dog.`;

export interface FakeEngineOptions {
  maxModelLen?: number;
  /** Milliseconds between steps (one token per sample per step). */
  delayMs?: number;
}

/** Deterministic engine double; flip `overloaded` / `rejectWith` / `crashAfter` / `alive` to script failures. */
export class FakeEngine implements EngineClient {
  readonly modelName = "fake-model";
  readonly maxModelLen: number;
  readonly tokenizer = charTokenizer();
  delayMs: number;
  /** Throw EngineOverloadedError from generate(). */
  overloaded = false;
  /** Throw RequestRejectedError with this message from generate(). */
  rejectWith: string | null = null;
  /** Throw a plain Error after this many steps. */
  crashAfter: number | null = null;
  /** The message of the crashAfter error (AsyncEngine's "engine worker crashed: ..." marks a dead engine). */
  crashMessage = "fake engine crashed";
  /** What healthy() answers. */
  alive = true;
  readonly requests: GenerateRequest[] = [];
  /** Ids of requests whose abort signal fired while they were generating. */
  readonly aborted: string[] = [];
  /** Ids of requests whose generator has exited (finished, aborted or returned). */
  readonly closed: string[] = [];
  private running = 0;
  private tokensOut = 0;

  constructor(options: FakeEngineOptions = {}) {
    this.maxModelLen = options.maxModelLen ?? 256;
    this.delayMs = options.delayMs ?? 0;
  }

  metrics(): EngineMetrics {
    return {
      requestsWaiting: 0, requestsRunning: this.running, kvBlocksTotal: 100, kvBlocksFree: 100 - 4 * this.running,
      promptTokensTotal: this.requests.reduce((s, r) => s + r.promptIds.length, 0), generationTokensTotal: this.tokensOut,
      requestsFinishedTotal: this.closed.length, preemptionsTotal: 0, stepsTotal: 0,
    };
  }

  healthy(): boolean {
    return this.alive;
  }

  async shutdown(): Promise<void> {}

  async *generate(request: GenerateRequest, signal?: AbortSignal): AsyncGenerator<GenerationDelta> {
    if (this.overloaded) throw new EngineOverloadedError("queue is full");
    if (this.rejectWith !== null) throw new RequestRejectedError(this.rejectWith);
    this.requests.push(request);
    this.running++;
    const s = request.sampling;
    const samples = Array.from({ length: s.n ?? 1 }, (_, index): Sample => ({ index, count: 0, text: "", emitted: 0, done: false }));
    try {
      for (let step = 0; samples.some((x) => !x.done); step++) {
        await (this.delayMs > 0 ? Bun.sleep(this.delayMs) : new Promise((r) => setImmediate(r)));
        if (signal?.aborted) {
          this.aborted.push(request.requestId);
          return;
        }
        if (this.crashAfter !== null && step >= this.crashAfter) throw new Error(this.crashMessage);
        for (const sample of samples) {
          if (sample.done) continue;
          const delta = this.nextToken(sample, request);
          this.tokensOut += delta.tokenIds.length;
          yield delta;
        }
      }
    } finally {
      this.running--;
      this.closed.push(request.requestId);
    }
  }

  /** One token of one sample: the next reply character, EOS, or a stop. */
  private nextToken(sample: Sample, request: GenerateRequest): GenerationDelta {
    const s = request.sampling;
    const reply = replyText(sample.index);
    const pos = sample.count % (reply.length + 1);
    const id = pos === reply.length ? EOS_ID : this.tokenizer.encode(reply[pos]!, { addSpecialTokens: false })[0]!;
    sample.count++;
    const delta: GenerationDelta = { index: sample.index, tokenIds: [id], text: "" };
    if (s.logprobs) delta.logprobs = [fakeLogprob(id, s.logprobs)];
    const canStop = sample.count > (s.minTokens ?? 0);
    // Text is held back while it could still be the start of a stop string, as the real engine does.
    const emit = (upTo: number) => {
      delta.text = sample.text.slice(sample.emitted, Math.max(upTo, sample.emitted));
      sample.emitted = Math.max(upTo, sample.emitted);
    };
    const finish = (reason: "stop" | "length", stopReason?: string | number) => {
      sample.done = true;
      delta.finishReason = reason;
      if (stopReason !== undefined) delta.stopReason = stopReason;
      return delta;
    };
    if (canStop && s.stopTokenIds?.includes(id)) return emit(sample.text.length), finish("stop", id);
    if (id === EOS_ID && canStop && !s.ignoreEos) return emit(sample.text.length), finish("stop");
    if (id !== EOS_ID) sample.text += this.tokenizer.decode([id]);
    const stops = s.stop ?? [];
    const hit = stops.map((stop) => ({ stop, at: sample.text.indexOf(stop) })).find((h) => h.at >= 0);
    if (hit) return emit(hit.at), finish("stop", hit.stop);
    if (sample.count >= s.maxTokens) return emit(sample.text.length), finish("length");
    let safe = sample.text.length;
    for (const stop of stops)
      for (let k = Math.min(stop.length - 1, sample.text.length); k > 0; k--)
        if (sample.text.endsWith(stop.slice(0, k))) safe = Math.min(safe, sample.text.length - k);
    emit(safe);
    return delta;
  }
}

interface Sample {
  index: number;
  count: number;
  /** All text generated so far, and how much of it has been sent. */
  text: string;
  emitted: number;
  done: boolean;
}

/** Logprob of a token: -0.25, with K alternatives (the token first, then ids 40, 41, ...). */
export function fakeLogprob(id: number, k: number): TokenLogprob {
  const top: [number, number][] = [[id, -0.25]];
  for (let alt = 40; top.length < k; alt++) if (alt !== id) top.push([alt, -1 - top.length]);
  return { id, logprob: -0.25, top };
}
