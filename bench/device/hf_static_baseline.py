#!/usr/bin/env python3
"""Static-batching baseline for FastGen's policy comparison: transformers `generate` on the same
GPU and model, fed the exact requests the FastGen sweeps send.

    bun run bench -- workload --suite fastgen-2600-60 --tokenizer MODEL --out WL.json
    python3 bench/device/hf_static_baseline.py --model MODEL --workload WL.json --out RESULT.json
    bun run bench -- report RESULT.json        # summaries + figure, from the records written here

What it simulates: a server that batches statically, with c closed-loop clients. At a point of
c clients, requests go in order in batches of c (request k of the batch belongs to client k). A
batch starts when the previous one has finished; all its prompts are left-padded to the longest
and it decodes max(gen) steps greedily (EOS suppressed by min_new_tokens, as ignore_eos does).
Request k's tokens are its first gen_k steps; it was sent when its client's previous request got
its last token (so time spent waiting for the running batch counts, as it would for a client of
such a server) and it ends at its own last token. One clock (time.perf_counter) for everything;
a token's time is when its step's ids reach the host (the streamer's put, which follows .cpu()).

No HTTP: nothing of serialization or networking is measured, which favours this baseline.
CUDA out of memory at a batch marks that batch's requests failed and ends the sweep there
(KV for 32 x 4k-token rows is ~69 GB in bf16 at Llama-2-7B's shape: use an H200 for full sweeps).

Writes a fastgen-bench/1 result (label hf-static) with request records and no summaries.
Needs: torch, transformers (4.4x or 5.x).
"""

import argparse
import json
import os
import sys
import time
from datetime import datetime, timezone

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import torch
import transformers
from transformers import AutoModelForCausalLM
from transformers.generation.streamers import BaseStreamer

PAD_ID = 0


class StepClock(BaseStreamer):
    """Stamps every decoding step; generate() calls put() once with the prompt, then once per step."""

    def __init__(self):
        self.times = []
        self.prompt_seen = False

    def put(self, value):
        if not self.prompt_seen:
            self.prompt_seen = True
            return
        self.times.append(time.perf_counter())

    def end(self):
        pass


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def load_model(path, device):
    kw = {"dtype" if int(transformers.__version__.split(".")[0]) >= 5 else "torch_dtype": torch.bfloat16}
    model = AutoModelForCausalLM.from_pretrained(path, attn_implementation="sdpa", **kw).to(device)
    model.eval()
    return model


def run_batch(model, device, prompts, gens):
    """Generates max(gens) greedy tokens for left-padded `prompts`; returns the step times."""
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), PAD_ID, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p):] = torch.tensor(p, dtype=torch.long)
        mask[i, width - len(p):] = 1
    steps = max(gens)
    clock = StepClock()
    with torch.inference_mode():
        model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), max_new_tokens=steps, min_new_tokens=steps,
                       do_sample=False, pad_token_id=PAD_ID, streamer=clock)
    if len(clock.times) != steps:
        raise RuntimeError(f"generate made {len(clock.times)} steps, expected {steps}")
    return clock.times


def run_point(model, device, requests, clients):
    """All requests of one point; returns (records, stop) where stop is True after an OOM."""
    records = []
    t0 = time.perf_counter()
    client_free = [t0] * clients  # when each client's previous request got its last token
    for b in range(0, len(requests), clients):
        batch = requests[b:b + clients]
        sent = [client_free[k] for k in range(len(batch))]
        try:
            times = run_batch(model, device, [r["prompt_ids"] for r in batch], [r["gen_tokens"] for r in batch])
        except torch.cuda.OutOfMemoryError as e:
            torch.cuda.empty_cache()
            msg = f"CUDA out of memory at batch size {len(batch)}: {str(e).splitlines()[0]}"
            for k, r in enumerate(batch):
                records.append(dict(index=r["index"], client=k, promptTokens=len(r["prompt_ids"]), genTokens=r["gen_tokens"], tokensOut=0,
                                    startS=sent[k] - t0, ttftS=None, tokenTimesS=[], e2eS=0.0, error=msg))
            return records, True
        for k, r in enumerate(batch):
            own = times[:r["gen_tokens"]]
            client_free[k] = own[-1]
            rel = [round(t - sent[k], 6) for t in own]
            records.append(dict(index=r["index"], client=k, promptTokens=len(r["prompt_ids"]), genTokens=r["gen_tokens"],
                                tokensOut=len(own), startS=round(sent[k] - t0, 6), ttftS=rel[0], tokenTimesS=rel, e2eS=rel[-1]))
    return records, False


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="model directory (the one FastGen served)")
    ap.add_argument("--workload", required=True, help="file from `bun run bench -- workload`")
    ap.add_argument("--out", required=True, help="result file to write")
    ap.add_argument("--label", default="hf-static")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = ap.parse_args()

    wl = json.load(open(args.workload))
    model = load_model(args.model, args.device)
    reqs = wl["requests"]
    run_batch(model, args.device, [reqs[0]["prompt_ids"][:64]], [4])  # warm-up: kernels, allocator
    points = []
    for pt in wl["points"]:
        c, n = pt["clients"], pt["requests"]
        t = time.time()
        # each point's own requests (the sweep draws them per point), else the shared list
        records, oom = run_point(model, args.device, pt.get("point_requests") or reqs[:n], c)
        points.append({"clients": c, "requests": records})
        ok = [r for r in records if "error" not in r]
        log(f"{args.label} clients {c}: {len(ok)}/{n} requests in {time.time() - t:.1f} s" + (" (out of memory)" if oom else ""))
        if oom:
            break
    result = {
        "schema": "fastgen-bench/1",
        "suite": wl["suite"],
        "label": args.label,
        "command": "python3 " + " ".join(sys.argv),
        "date": datetime.now(timezone.utc).isoformat(),
        "system": {"model": os.path.basename(os.path.normpath(args.model)), "maxModelLen": wl.get("maxModelLen"),
                   "note": f"transformers {transformers.__version__} generate, static batches of `clients`, bf16, sdpa, "
                           f"torch {torch.__version__}, {torch.cuda.get_device_name() if args.device.startswith('cuda') else 'cpu'}"},
        "client": {"promptMode": "ids", "logprobs": False, "tokenizer": f"workload {args.workload}"},
        "workload": wl["workload"],
        "sla": {"promptTokensPerS": 512, "genTokensPerS": [2, 4, 6], "emaSpan": 16},
        "points": points,
    }
    with open(args.out, "w") as f:
        json.dump(result, f)
    log(f"wrote {args.out}")


if __name__ == "__main__":
    sys.exit(main())
