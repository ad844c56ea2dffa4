"""Yardstick for the CUDA fixture tolerances: how far transformers itself moves from the fp32
reference (test/fixtures/*/reference.json) when the same model runs in bf16 on the GPU.
Teacher-forced on prompt + the reference's greedy ids, one forward pass per prompt:
  generate: worst top-5 logprob difference over the generated positions (reference "top5"),
            and the steps where bf16 flips the greedy pick;
  prefill:  the same over the prompt positions (reference "prefill_top5": prompt logprobs).
Usage: python3 bench/gpu/hf_bf16_drift.py [out.json [fixture ...]]   (prints one line per fixture;
default: the first-wave fixtures; the second wave's went to hf-bf16-drift-families.json)"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM

FIXTURES = ["llama-gqa", "llama3-rope", "mistral-swa", "qwen2", "opt", "opt-postnorm-proj", "falcon-gqa", "falcon-mqa",
            "phi", "mixtral"]
result = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "fixtures": {}}
for name in sys.argv[2:] or FIXTURES:
    d = f"test/fixtures/{name}"
    ref = json.load(open(f"{d}/reference.json"))
    # eager: the attention soft-cap (Gemma 2) is only applied there
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.bfloat16, attn_implementation="eager").cuda().eval()
    worst, worst_pre, flips = 0.0, 0.0, []
    for pi, p in enumerate(ref["prompts"]):
        ids = torch.tensor([p["prompt_ids"] + p["greedy_ids"]], device="cuda")
        with torch.no_grad():
            logits = model(ids).logits[0].float()
        lp = torch.log_softmax(logits, -1)
        n0 = len(p["prompt_ids"]) - 1
        for j, top in enumerate(p["top5"]):
            row = lp[n0 + j]
            for tid, tlp in top:
                worst = max(worst, abs(row[tid].item() - tlp))
            if int(row.argmax()) != p["greedy_ids"][j]:
                flips.append((pi, j, round(p["greedy_margins"][j], 4)))
        for j, top in enumerate(p.get("prefill_top5", [])):  # logits at prompt token j
            for tid, tlp in top:
                worst_pre = max(worst_pre, abs(lp[j][tid].item() - tlp))
    result["fixtures"][name] = {"generate": round(worst, 4), "prefill": round(worst_pre, 4), "flips": flips}
    print(f"{name}: transformers bf16 vs fp32 reference: worst top-5 logprob diff {worst:.4f} (generated), "
          f"{worst_pre:.4f} (prompt), greedy flips {flips}")
    sys.stdout.flush()
if len(sys.argv) > 1:
    json.dump(result, open(sys.argv[1], "w"), indent=1)
