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

/**
 * A constraint whose compile ran past the engine's deadline (--grammar-compile-timeout). A
 * GrammarError, so HTTP 400: the compile's cost is the schema's (its size and shape against the
 * model's vocabulary) and it runs on a Worker of its own, so the same schema would time out again;
 * a retry needs a simpler schema, not a retry. The Worker that ran it is ended (XGrammar compiles
 * synchronously inside WebAssembly: nothing else stops it); its other samples fail with a
 * GrammarWorkerError, and the next request starts a new Worker.
 */
export class GrammarCompileTimeoutError extends GrammarError {
  override name = "GrammarCompileTimeoutError";
}
