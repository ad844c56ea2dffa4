/**
 * The engine side of the worker protocol: EngineCore driven by ToWorker messages, answering with
 * FromWorker ones through `send`. The loop runs plan → launch → grammar masks → finish → apply,
 * one forward pass per turn, yielding to the event loop between passes (and while masks compute)
 * so new requests and aborts are picked up. Hosted by a
 * Bun Worker (engineWorker.ts) or by a child process (engineChild.ts); the code is the same.
 */
import { EngineCore } from "./engineCore";
import type { FromWorker, ToWorker } from "./workerProtocol";
import { serializeError } from "./workerProtocol";
import { envVar } from "../envVars";

const yieldToEvents = () => new Promise<void>((r) => setImmediate(r));

/**
 * TEST-ONLY fault hook: FASTGEN_DEBUG_CRASH_ON_PROMPT="1,2,3" makes the process abort (SIGABRT,
 * like a native crash) at the first forward pass after a request with exactly that prompt (token
 * ids) arrives. Without the variable nothing here is reachable. The reliability tests use it to
 * crash replicas and the engine child on purpose.
 */
function crashPromptFromEnv(): string | null {
  const v = envVar("FASTGEN_DEBUG_CRASH_ON_PROMPT");
  return v ? v.split(",").map((s) => Number(s.trim())).join(",") : null;
}

/**
 * FASTGEN_LOOP_TIMING=1: where the loop's host time goes, on stderr every 500 passes and at
 * shutdown (the native pass, the rest of step(), posting the deltas, the yield to the event loop).
 */
type LoopTiming = { postMs: number; yieldMs: number; reported: number };

/** Starts an engine host; feed it every message from the serving side. */
export function createEngineHost(send: (m: FromWorker) => void): (m: ToWorker) => Promise<void> {
  let core: EngineCore | null = null;
  let running = false;
  let shuttingDown = false;
  const crashPrompt = crashPromptFromEnv();
  let crashArmed = false;
  const loopTiming: LoopTiming | null = envVar("FASTGEN_LOOP_TIMING") === "1" ? { postMs: 0, yieldMs: 0, reported: 0 } : null;

  function reportLoopTiming(force = false): void {
    if (!loopTiming || !core) return;
    const t = core.timing;
    if (t.steps === 0 || (!force && t.steps - loopTiming.reported < 500)) return;
    loopTiming.reported = t.steps;
    const per = (ms: number) => (ms / t.steps).toFixed(3);
    console.error(
      `fastgen loop: ${t.steps} passes, ms per pass: native ${per(t.nativeMs)}, rest of step ${per(t.stepMs - t.nativeMs)}, ` +
        `post ${per(loopTiming.postMs)}, yield ${per(loopTiming.yieldMs)}`,
    );
  }

  async function loop(): Promise<void> {
    if (running) return;
    running = true;
    try {
      while (core && core.hasWork() && !shuttingDown) {
        if (crashArmed) {
          console.error("fastgen: FASTGEN_DEBUG_CRASH_ON_PROMPT matched: aborting the process (test-only fault hook)");
          process.abort();
        }
        let items;
        try {
          core.launchStep(); // the forward pass runs from here (fg_step_launch) ...
          const masks = core.prepareMasks(); // ... while the host computes its rows' grammar masks
          if (masks) await masks;
          if (!core || shuttingDown) break; // close() drops the pass in flight
          items = core.finishStep();
        } catch (e) {
          // A bug, not a request's fault: fail what is in flight rather than hang it.
          core.dropStep();
          for (const id of core.abortAll()) send({ type: "request-error", id, error: serializeError(e) });
          continue;
        }
        for (const it of items) if (it.error) send({ type: "request-error", id: it.id, error: serializeError(it.error) });
        const p0 = loopTiming ? performance.now() : 0;
        const ok = items.filter((it) => !it.error).map(({ id, deltas }) => ({ id, deltas }));
        const kvEvents = core.kvEvents?.drain() ?? undefined;
        send({ type: "deltas", items: ok, metrics: core.metrics(), ...(kvEvents && { kvEvents }) });
        if (core.fatalError) {  // nothing can run any more: fail the rest, report the engine dead
          const error = serializeError(new Error(`engine failed: ${core.fatalError.message}`));
          for (const id of core.abortAll()) send({ type: "request-error", id, error });
          send({ type: "fatal", error });
          break;
        }
        const p1 = loopTiming ? performance.now() : 0;
        await yieldToEvents();
        if (loopTiming) {
          loopTiming.postMs += p1 - p0;
          loopTiming.yieldMs += performance.now() - p1;
          reportLoopTiming();
        }
      }
    } finally {
      running = false;
    }
    if (shuttingDown) close();
  }

  function close(): void {
    reportLoopTiming(true);
    core?.destroy();
    core = null;
    send({ type: "closed" });
  }

  return async (m: ToWorker) => {
    switch (m.type) {
      case "init":
        try {
          core = await EngineCore.load(m.modelDir, m.options, (done, total) => send({ type: "progress", done, total }));
          send({ type: "ready", info: core.readyInfo() });
        } catch (e) {
          send({ type: "init-error", error: serializeError(e) });
        }
        return;
      case "add":
        if (!core) return send({ type: "request-error", id: m.id, error: { name: "Error", message: "engine not ready" } });
        try {
          await core.addRequestAsync(m.id, m.promptIds, m.sampling, m.firstSample);
        } catch (e) {
          return send({ type: "request-error", id: m.id, error: serializeError(e) });
        }
        if (crashPrompt !== null && m.promptIds.join(",") === crashPrompt) crashArmed = true;
        void loop();
        return;
      case "abort": {
        const deltas = core?.abort(m.id);
        if (core && deltas && deltas.length > 0) send({ type: "deltas", items: [{ id: m.id, deltas }], metrics: core.metrics() });
        return;
      }
      case "debug-fail-steps":
        core?.debugFailNextSteps(m.n, m.device);
        return;
      case "shutdown":
        shuttingDown = true;
        core?.abortAll();
        if (!running) close();
        return;
    }
  };
}
