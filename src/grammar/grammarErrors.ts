/**
 * The grammar layer's typed errors. Kept apart from the XGrammar code so the engine thread can
 * name them without loading XGrammar (it runs in the grammar Worker: worker/grammarWorker.ts).
 */

/** A constraint XGrammar cannot compile (bad schema, regex or EBNF): the request's fault (HTTP 400). */
export class GrammarError extends Error {
  override name = "GrammarError";
}

/**
 * The grammar Worker failed to start, crashed, or computed no masks in time: not the request's
 * fault. The constrained requests it served fail with it; the next one starts a new Worker.
 */
export class GrammarWorkerError extends Error {
  override name = "GrammarWorkerError";
}
