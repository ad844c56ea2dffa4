/**
 * `fastgen bench`: the load generator of bench/ (throughput-latency, effective throughput,
 * per-token latency) against any OpenAI-compatible server, from the CLI and the single binary.
 *   fastgen bench --server URL [--suite fastgen-2600-60] [--clients 1,2,4] ...   (--help)
 *   fastgen bench compare A.json B.json ... [--out PREFIX]
 * Imported statically so `bun build --compile` bundles it.
 */
import { main as compareMain } from "../../bench/load/compareCommand";
import { LOAD_HELP, main as loadMain } from "../../bench/load/loadCommand";

export const BENCH_HELP = `Usage: fastgen bench --server URL [options] | fastgen bench compare FILE.json ...
Load-generator benchmark against an OpenAI-compatible server (see "fastgen bench --help").`;

/** Runs `fastgen bench` with the given argv (after the subcommand). */
export async function benchCommand(argv: string[]): Promise<void> {
  if (argv[0] === "compare") {
    await compareMain(argv.slice(1));
    return;
  }
  if (argv.length === 0) {
    console.log(LOAD_HELP);
    return;
  }
  await loadMain(argv);
}
