"""Yardstick for the CUDA fixture tolerance: how far transformers itself moves from the fp32
reference (test/fixtures/*/reference.json) when the same model runs in bf16 on the GPU.
Teacher-forced on the reference's greedy ids; prints the worst top-5 logprob difference and the
steps where bf16 flips the greedy pick. Usage: python3 bench/gpu/hf_bf16_drift.py"""
import json
import sys

import torch
from transformers import AutoModelForCausalLM

for name in ["llama-gqa", "llama3-rope", "mistral-swa", "qwen2", "opt", "falcon-gqa", "falcon-mqa", "phi"]:
    d = f"test/fixtures/{name}"
    ref = json.load(open(f"{d}/reference.json"))
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.bfloat16).cuda().eval()
    worst, flips = 0.0, []
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
    print(f"{name}: transformers bf16 vs fp32 reference: worst top-5 logprob diff {worst:.4f}, greedy flips {flips}")
    sys.stdout.flush()
