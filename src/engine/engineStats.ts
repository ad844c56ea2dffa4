/**
 * The engine's counters and histograms (Prometheus-style totals, queue time, tokens per pass)
 * and the host time of its passes, read together as EngineMetrics.
 */
import { EngineHistogram, ITERATION_TOKENS_BUCKETS, QUEUE_TIME_BUCKETS } from "./histogram";
import type { KvCacheManager } from "./kvCache/kvCacheManager";
import type { SequenceQueues } from "./queues";
import type { Speculator } from "./speculative/speculator";
import type { EngineMetrics } from "./types";
import type { EngineGrammars } from "../grammar/engineGrammars";

export class EngineStats {
  readonly counters = { promptTokens: 0, generationTokens: 0, finished: 0, preemptions: 0, steps: 0 };
  readonly queueTime = new EngineHistogram(QUEUE_TIME_BUCKETS);
  readonly iterationTokens = new EngineHistogram(ITERATION_TOKENS_BUCKETS);
  /**
   * Host milliseconds summed over passes: the whole step(), the native calls in it (nativeMs) and,
   * of those, the launches (fg_step_launch: with overlapped steps the rest is the finish's wait).
   */
  readonly timing = { steps: 0, stepMs: 0, nativeMs: 0, launchMs: 0 };

  metrics(queues: SequenceQueues, blocks: KvCacheManager, speculator: Speculator | null, grammars: EngineGrammars): EngineMetrics {
    const c = this.counters;
    return {
      requestsWaiting: queues.waiting.length,
      requestsRunning: queues.running.length,
      kvBlocksTotal: blocks.numBlocks,
      kvBlocksFree: blocks.numFreeBlocks,
      promptTokensTotal: c.promptTokens,
      generationTokensTotal: c.generationTokens,
      requestsFinishedTotal: c.finished,
      preemptionsTotal: c.preemptions,
      stepsTotal: c.steps,
      queueTimeSeconds: this.queueTime.snapshot(),
      iterationTokens: this.iterationTokens.snapshot(),
      prefixCacheQueriesTotal: blocks.stats.queries,
      prefixCacheHitsTotal: blocks.stats.hits,
      ...(speculator ? { specDecode: speculator.snapshot() } : {}),
      grammar: grammars.metrics(),
    };
  }
}
