/**
 * GrammarMetrics: the grammar side's counters as EngineMetrics carries them (over gRPC too, summed
 * by a front end's load balancer) and /metrics shows them as fastgen:grammar_* (vLLM has none of
 * its own). EngineGrammars.metrics() reads them from the pool and the mask timing.
 */

export interface GrammarMetrics {
  /** Grammars compiled (once per Worker that needed one). */
  compiles: number;
  /** Seconds those compiles took, summed (in the Workers, off the engine thread). */
  compileSeconds: number;
  /** Creates served by a Worker's compiled-grammar cache. */
  cacheHits: number;
  /** Compiles ended at --grammar-compile-timeout (each ended its Worker). */
  compileTimeouts: number;
  /** Masks XGrammar computed (those the engine's mask cache served are not counted). */
  masksComputed: number;
  /** Seconds the engine thread's passes waited for masks, summed. */
  maskWaitSeconds: number;
  /** Workers started to replace a failed one (crash, mask timeout, compile timeout). */
  workerRestarts: number;
}

/** a + b, field by field; whichever exists when only one does (replicas sum their counters). */
export function addGrammarMetrics(a: GrammarMetrics | undefined, b: GrammarMetrics | undefined): GrammarMetrics | undefined {
  if (!a || !b) return a ?? b;
  const out = { ...a };
  for (const k of Object.keys(out) as (keyof GrammarMetrics)[]) out[k] += b[k];
  return out;
}
