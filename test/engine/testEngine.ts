/** A minimal engine loop over the core, for hand-written scheduling scenarios. */
import { KvCacheManager } from "../../src/engine/kvCache/kvCacheManager";
import { StepBatchBuilder } from "../../src/engine/batch";
import { SequenceQueues } from "../../src/engine/queues";
import { commitPlan, getPolicy, schedule } from "../../src/engine/scheduler";
import type { Plan, PolicyName, SchedulerConfig } from "../../src/engine/scheduler";
import { samplingParams } from "../../src/engine/samplingParams";
import type { SamplingInput } from "../../src/engine/samplingParams";
import { Sequence } from "../../src/engine/sequence";
import { applyStep } from "../../src/engine/stepper";
import type { StepperContext, TokenEvent } from "../../src/engine/stepper";
import type { StepBatch } from "../../src/engine/stepBatch";
import { EOS, FakeModel } from "./fakeModel";

export class TestEngine {
  readonly blocks: KvCacheManager;
  readonly queues = new SequenceQueues();
  readonly ctx: StepperContext;
  private readonly builder = new StepBatchBuilder([EOS]);
  private readonly model: FakeModel;
  private nextId = 0;
  lastBatch: StepBatch | null = null;

  constructor(
    readonly policy: PolicyName,
    readonly config: SchedulerConfig,
    numBlocks: number,
    blockSize: number,
    prefixCaching = true,
  ) {
    this.blocks = new KvCacheManager(numBlocks, blockSize, prefixCaching);
    this.model = new FakeModel(numBlocks, blockSize);
    this.ctx = { queues: this.queues, blocks: this.blocks, stop: { eosTokenIds: [EOS] } };
  }

  /** Queues a prompt of `len` tokens (ids 1..) that generates exactly `maxTokens` tokens. */
  add(len: number, maxTokens = 4, opts: Partial<SamplingInput> = {}, sampleIndex = 0, promptOf = -1): Sequence {
    const id = this.nextId++;
    const p = promptOf >= 0 ? promptOf : id;
    const prompt = Array.from({ length: len }, (_, i) => 1 + ((i * 7 + p) % 50));
    const seq = new Sequence(id, id, prompt, samplingParams({ maxTokens, ignoreEos: true, seed: id, ...opts }), sampleIndex);
    this.queues.add(seq);
    return seq;
  }

  /** Queues one request of `n` samples (sample indexes 0..n-1, one prompt), as the engine does for `n`. */
  addSamples(n: number, len: number, maxTokens = 4): Sequence[] {
    const first = this.nextId;
    return Array.from({ length: n }, (_, i) => this.add(len, maxTokens, {}, i, first));
  }

  plan(): Plan {
    return schedule(getPolicy(this.policy), { running: this.queues.running, waiting: this.queues.waiting, blocks: this.blocks }, this.config);
  }

  /** One full step; returns the plan and the sampled-token events. */
  step(): { plan: Plan; events: TokenEvent[] } {
    const plan = this.plan();
    commitPlan(plan, this.queues, this.blocks);
    if (plan.entries.length === 0) return { plan, events: [] };
    this.lastBatch = this.builder.build(plan, this.blocks);
    const events = applyStep(plan, this.model.step(this.lastBatch), this.ctx);
    return { plan, events };
  }

  /** Steps until nothing is left; returns every plan. */
  drain(maxSteps = 10_000): Plan[] {
    const plans: Plan[] = [];
    while (this.queues.size > 0) {
      plans.push(this.step().plan);
      if (plans.length > maxSteps) throw new Error("did not drain");
    }
    return plans;
  }
}

/** A plan as [seqId, numTokens, wantsToken] rows, for compact expectations. */
export function rows(plan: Plan): [number, number, boolean][] {
  return plan.entries.map((e) => [e.seq.id, e.numTokens, e.wantsToken]);
}
