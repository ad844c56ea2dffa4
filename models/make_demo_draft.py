#!/usr/bin/env python3
"""Make `fastgen-demo-draft`: a draft model for speculative decoding with `fastgen-demo-tiny`.

Usage (from the repository root; about a minute on one H100, no network):

    PYTHONUNBUFFERED=1 python3 models/make_demo_draft.py models/fastgen-demo-draft [--steps N]

A ~0.4M-parameter Llama (2 layers, hidden 96) with the demo model's tokenizer, distilled from the
committed `models/fastgen-demo-tiny` on the same offline corpus (make_demo_model.py builds it):
the loss is the KL divergence from the demo model's next-token distribution plus a little
cross-entropy on the text. It is what a real draft is to its target (a much smaller model of the
same vocabulary, trained to agree with it), so `--speculative draft --draft-model
models/fastgen-demo-draft` on the demo model shows a real acceptance rate, where a random draft
shows none and the target as its own draft shows the ceiling. The script prints the share of
validation positions where both models' argmax agree (greedy acceptance per position).

Needs: torch, transformers (4.4x or 5.x), tokenizers, safetensors.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_demo_model as demo  # noqa: E402  (sets the offline environment first)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import time  # noqa: E402

TARGET_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fastgen-demo-tiny")
HIDDEN, LAYERS, HEADS, KV_HEADS, INTER = 96, 2, 3, 1, 256
DEFAULT_STEPS = 1500
LR, MIN_LR_FRAC, WARMUP, WEIGHT_DECAY, GRAD_CLIP = 3e-3, 0.1, 100, 0.1, 1.0
CE_WEIGHT = 0.1
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "generation_config.json")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out_dir")
    ap.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    ap.add_argument("--target", default=TARGET_DIR)
    ap.add_argument("--device", default=None)
    args = ap.parse_args()
    out_dir = os.path.abspath(args.out_dir)
    os.makedirs(out_dir, exist_ok=True)
    t_start = time.time()

    import torch
    import torch.nn.functional as F
    import tokenizers
    import transformers
    random.seed(demo.SEED)
    torch.manual_seed(demo.SEED)
    try:
        transformers.logging.set_verbosity_error()
    except Exception:
        pass
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    demo.log(f"torch {torch.__version__} transformers {transformers.__version__} device {device}")

    # ---- the target's tokenizer, the demo corpus
    tok = tokenizers.Tokenizer.from_file(os.path.join(args.target, "tokenizer.json"))
    eot_id = tok.token_to_id(demo.EOT)
    plain, chat, _ = demo.build_corpus()
    docs = plain + chat
    order = list(range(len(docs)))
    random.Random(demo.SEED).shuffle(order)
    n_val = max(1, int(len(order) * demo.VAL_FRACTION))

    def stream(idx):
        ids = []
        for e in tok.encode_batch([docs[i] for i in idx], add_special_tokens=False):
            ids.extend(e.ids)
            ids.append(eot_id)
        return torch.tensor(ids, dtype=torch.long)

    train_ids, val_ids = stream(order[n_val:]), stream(order[:n_val])
    demo.log(f"tokens: train {train_ids.numel()/1e6:.2f}M, val {val_ids.numel()/1e3:.0f}K ({time.time()-t_start:.0f}s)")

    # ---- models: the frozen target (bf16 weights as committed, run in fp32) and the draft
    target = demo.load_model(args.target, device, torch.float32)
    for p in target.parameters():
        p.requires_grad_(False)
    with open(os.path.join(args.target, "config.json"), encoding="utf-8") as f:
        tcfg = json.load(f)
    demo.HIDDEN, demo.LAYERS, demo.HEADS, demo.KV_HEADS, demo.INTER = HIDDEN, LAYERS, HEADS, KV_HEADS, INTER
    if tcfg["vocab_size"] != demo.VOCAB_SIZE:
        raise RuntimeError(f"target vocab {tcfg['vocab_size']} != {demo.VOCAB_SIZE}")
    cfg = demo.make_config(eot_id)
    torch.manual_seed(demo.SEED)
    model = demo.make_model(cfg, "eager").to(device)
    model.train()
    n_params = sum(p.numel() for p in model.parameters())
    t_params = sum(p.numel() for p in target.parameters())
    demo.log(f"draft {n_params/1e6:.2f}M parameters, target {t_params/1e6:.2f}M")

    decay = [p for p in model.parameters() if p.ndim >= 2]
    no_decay = [p for p in model.parameters() if p.ndim < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": WEIGHT_DECAY},
                             {"params": no_decay, "weight_decay": 0.0}], lr=LR, betas=(0.9, 0.95), eps=1e-8)

    def lr_at(step):
        if step < WARMUP:
            return LR * (step + 1) / WARMUP
        t = (step - WARMUP) / max(1, args.steps - WARMUP)
        return LR * (MIN_LR_FRAC + (1 - MIN_LR_FRAC) * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))

    seq, bsz = demo.SEQ_LEN, demo.BATCH
    offs = torch.arange(seq + 1, device=device)
    train_dev, val_dev = train_ids.to(device), val_ids.to(device)

    def batch(src, gen):
        starts = torch.randint(0, src.numel() - seq - 1, (bsz,), generator=gen)
        return src[starts.to(device)[:, None] + offs[None, :]]

    use_amp = device == "cuda" and torch.cuda.is_bf16_supported()
    amp = (lambda: torch.autocast("cuda", dtype=torch.bfloat16)) if use_amp else contextlib.nullcontext

    def losses(x):
        with torch.no_grad(), amp():
            t_logits = target(input_ids=x[:, :-1], use_cache=False).logits.float()
        with amp():
            d_logits = model(input_ids=x[:, :-1], use_cache=False).logits.float()
        v = d_logits.shape[-1]
        kl = F.kl_div(F.log_softmax(d_logits, -1).reshape(-1, v), F.log_softmax(t_logits, -1).reshape(-1, v),
                      log_target=True, reduction="batchmean")
        ce = F.cross_entropy(d_logits.reshape(-1, v), x[:, 1:].reshape(-1))
        agree = (d_logits.argmax(-1) == t_logits.argmax(-1)).float().mean()
        return kl, ce, agree

    gen = torch.Generator().manual_seed(demo.SEED)
    t_train = time.time()
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        kl, ce, agree = losses(batch(train_dev, gen))
        loss = kl + CE_WEIGHT * ce
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        opt.step()
        if (step + 1) % 100 == 0 or step + 1 == args.steps:
            demo.log(f"step {step+1:5d}/{args.steps}  kl {kl.item():.3f}  ce {ce.item():.3f}  "
                     f"argmax agreement {float(agree)*100:.1f}%  {time.time()-t_train:.0f}s")

    model.eval()
    vgen = torch.Generator().manual_seed(demo.SEED + 1)
    with torch.no_grad():
        vals = [losses(batch(val_dev, vgen)) for _ in range(10)]
    v_kl, v_ce, v_agree = (sum(float(v[i]) for v in vals) / len(vals) for i in range(3))
    demo.log(f"validation: kl {v_kl:.3f}, ce {v_ce:.3f} (perplexity {math.exp(v_ce):.1f}), "
             f"argmax agreement with the target {v_agree*100:.1f}%")

    # ---- save: bf16 safetensors, the target's tokenizer files, a model card
    model = model.to("cpu").to(torch.bfloat16)
    model.save_pretrained(out_dir, safe_serialization=True)
    for name in TOKENIZER_FILES:
        shutil.copyfile(os.path.join(args.target, name), os.path.join(out_dir, name))
    size = os.path.getsize(os.path.join(out_dir, "model.safetensors"))
    with open(os.path.join(out_dir, "README.md"), "w", encoding="utf-8") as f:
        f.write(f"""# fastgen-demo-draft

A {n_params/1e6:.2f}M-parameter Llama ({LAYERS} layers, hidden {HIDDEN}, {HEADS} heads, {KV_HEADS} KV head)
distilled from `fastgen-demo-tiny` ({t_params/1e6:.2f}M) on its offline corpus, with its tokenizer:
the demo model's draft for speculative decoding
(`npm run serve -- --speculative draft --draft-model models/fastgen-demo-draft`).
Made by `models/make_demo_draft.py` ({args.steps} steps, KL to the target + {CE_WEIGHT} x cross-entropy,
torch {torch.__version__}, transformers {transformers.__version__}, {device}).

Validation: KL from the target {v_kl:.3f}, cross-entropy {v_ce:.3f}, argmax agreement with the
target {v_agree*100:.1f}% of positions. model.safetensors {size/1e6:.2f} MB (bfloat16).
""")
    demo.log(f"saved {out_dir} ({size/1e6:.2f} MB) in {time.time()-t_start:.0f}s")


if __name__ == "__main__":
    main()
