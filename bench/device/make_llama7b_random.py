#!/usr/bin/env python3
"""Make a Llama-2-7B-shaped model with random bf16 weights, for FastGen's device benchmarks
(bench/device/run-policies.sh). No network, no download: the weights are transformers' own init
(normal(0, 0.02) as transformers
initializes Llama, drawn and written shard by shard) and the tokenizer is a byte-level BPE trained here on made-up words, so the model talks nonsense;
the benchmark sends token-id prompts with ignore_eos, so only the shapes matter.

    python3 bench/device/make_llama7b_random.py OUT_DIR [--tiny] [--seed 0] [--shape 7b|70b] [--layers N]
                                                [--fp8] [--spill DIR]

Shape (Llama-2-7B): hidden 4096, 32 layers, 32 heads (MHA, head_dim 128), intermediate 11008,
vocab 32000, context 4096, RMSNorm eps 1e-5, RoPE theta 10000, separate LM head.
6.74B parameters: 13.5 GB of bf16 safetensors (5 GB shards + index). About a minute on an H100
(weights drawn on the GPU), most of it writing the files.
--tiny: same vocabulary and context, 2 layers of width 256 (a CPU smoke test of this script).
--shape 70b: Llama-2-70B (hidden 8192, 80 layers, 64 heads / 8 KV heads, intermediate 28672);
--layers N trims either shape to N layers (e.g. 20 layers of 70B: 17.6B parameters, 35 GB).
--fp8: an FP8 checkpoint as FP8 tools publish it (quant_method "fp8", activation_scheme dynamic,
per-channel weight_scale [rows, 1] F32, scale = amax(row) / 448): the attention and MLP projections
F8_E4M3, embeddings, norms and the LM head bf16 (ignored_layers ["lm_head"]). The 70B shape is then
64.7 GiB instead of 138 GB, servable on one H200.
--spill DIR: when OUT_DIR's filesystem lacks room for the next shard (+ 2 GiB), the shard is written
to DIR and symlinked into OUT_DIR (e.g. /dev/shm full, the rest on disk).

Writes config.json, generation_config.json, model-0000x-of-0000n.safetensors + index,
tokenizer.json (<unk>=0, <s>=1, </s>=2; "<s>" prepended), tokenizer_config.json, README.md.
Skips the work when OUT_DIR already holds a config.json and weights made by this script.
Needs: torch, transformers (4.4x or 5.x), tokenizers, safetensors.
"""

import argparse
import itertools
import json
import math
import os
import random
import sys
import time

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")

VOCAB = 32000
SPECIALS = ["<unk>", "<s>", "</s>"]
SHAPE_7B = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, num_key_value_heads=32)
SHAPE_70B = dict(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64, num_key_value_heads=8)
SHAPE_TINY = dict(hidden_size=256, intermediate_size=688, num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=4)
MARKER = "fastgen-bench-random-llama"


def log(*a):
    print(*a, flush=True)


def made_words(rng, n):
    """n distinct pronounceable made-up words (the BPE needs many distinct pairs to reach 32000)."""
    onsets = ["", "b", "br", "c", "ch", "d", "dr", "f", "g", "gr", "h", "j", "k", "l", "m", "n", "p", "pl", "qu",
              "r", "s", "sh", "st", "t", "th", "tr", "v", "w", "z"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "io", "ou", "y"]
    codas = ["", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ck", "ng"]
    out = set()
    while len(out) < n:
        syl = rng.choice([1, 2, 2, 3, 3, 4])
        out.add("".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas) for _ in range(syl)))
    return sorted(out)


def build_tokenizer(seed):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    rng = random.Random(seed)
    words = made_words(rng, 120_000)
    # Zipf-like use: common words often, the tail at least once; punctuation and digits sprinkled in.
    cum = list(itertools.accumulate(1.0 / (i + 10) for i in range(len(words))))
    lines = [" ".join(words[i * 8:(i + 1) * 8]) for i in range(len(words) // 8)]
    for _ in range(40_000):
        ws = rng.choices(words, cum_weights=cum, k=16)
        lines.append(" ".join(ws) + rng.choice([".", ",", "!", "?", ";", ""]) + f" {rng.randint(0, 9999)}")
    tok = Tokenizer(models.BPE(unk_token=None))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=VOCAB, special_tokens=SPECIALS, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                                  show_progress=False)
    tok.train_from_iterator(lines, trainer=trainer)
    if tok.get_vocab_size() < VOCAB:  # corpus too small for every merge: fill up with plain added tokens
        tok.add_tokens([f"<extra_{i}>" for i in range(VOCAB - tok.get_vocab_size())])
    assert tok.get_vocab_size() == VOCAB, tok.get_vocab_size()
    assert [tok.token_to_id(s) for s in SPECIALS] == [0, 1, 2]
    tok.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return tok


def tensor_plan(shape):
    """(name, shape) of every Llama tensor, in the order transformers names them."""
    h, i, nh, nkv = shape["hidden_size"], shape["intermediate_size"], shape["num_attention_heads"], shape["num_key_value_heads"]
    hd = h // nh
    plan = [("model.embed_tokens.weight", (VOCAB, h))]
    for l in range(shape["num_hidden_layers"]):
        p = f"model.layers.{l}."
        plan += [(p + "input_layernorm.weight", (h,)), (p + "self_attn.q_proj.weight", (nh * hd, h)),
                 (p + "self_attn.k_proj.weight", (nkv * hd, h)), (p + "self_attn.v_proj.weight", (nkv * hd, h)),
                 (p + "self_attn.o_proj.weight", (h, nh * hd)), (p + "post_attention_layernorm.weight", (h,)),
                 (p + "mlp.gate_proj.weight", (i, h)), (p + "mlp.up_proj.weight", (i, h)), (p + "mlp.down_proj.weight", (h, i))]
    return plan + [("model.norm.weight", (h,)), ("lm_head.weight", (VOCAB, h))]


FP8_PROJ = (".q_proj.weight", ".k_proj.weight", ".v_proj.weight", ".o_proj.weight", ".gate_proj.weight", ".up_proj.weight",
            ".down_proj.weight")


def is_fp8(name, fp8):
    return fp8 and name.endswith(FP8_PROJ)


def shard_path(out_dir, fname, nbytes, spill):
    """Where a shard goes: out_dir, or spill (symlinked from out_dir) when out_dir is nearly full."""
    import shutil

    if spill and shutil.disk_usage(out_dir).free < nbytes + (2 << 30):
        os.makedirs(spill, exist_ok=True)
        target = os.path.join(spill, fname)
        link = os.path.join(out_dir, fname)
        if os.path.lexists(link):
            os.remove(link)
        os.symlink(target, link)
        return target
    return os.path.join(out_dir, fname)


def write_random_weights(out_dir, shape, seed, torch, shard_bytes=5 << 30, fp8=False, spill=None):
    """Random bf16 weights as transformers initializes Llama (normal(0, 0.02), norms at 1), drawn on
    the GPU one tensor at a time and written shard by shard (safetensors + index), so an 80-layer
    70B shape never has to fit in one device's or the host's memory at once. fp8: the projections
    quantized per output channel to E4M3 on the GPU, each with its weight_scale [rows, 1] F32."""
    from concurrent.futures import ThreadPoolExecutor
    from safetensors.torch import save_file

    plan = tensor_plan(shape)
    shards, cur, size = [], [], 0
    for name, dims in plan:
        nbytes = (1 if is_fp8(name, fp8) else 2) * math.prod(dims)
        if cur and size + nbytes > shard_bytes:
            shards.append(cur)
            cur, size = [], 0
        cur.append((name, dims))
        size += nbytes
    shards.append(cur)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    gen = torch.Generator(device=device).manual_seed(seed)
    weight_map, total, params = {}, 0, 0
    with ThreadPoolExecutor(max_workers=4) as pool:
        pending = []
        for k, shard in enumerate(shards):
            fname = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
            tensors, shard_size = {}, 0
            for name, dims in shard:
                if name.endswith("norm.weight"):
                    t = torch.ones(dims, dtype=torch.bfloat16)
                else:
                    t = torch.empty(dims, dtype=torch.bfloat16, device=device).normal_(0.0, 0.02, generator=gen)
                    if is_fp8(name, fp8):
                        w = t.float()
                        scale = (w.abs().amax(dim=1, keepdim=True) / 448.0).clamp(min=1e-12)
                        q = (w / scale).clamp(-448.0, 448.0).to(torch.float8_e4m3fn)
                        sname = name[: -len("weight")] + "weight_scale"
                        tensors[sname] = scale.cpu()
                        weight_map[sname] = fname
                        total += 4 * scale.numel()
                        t = q
                    t = t.cpu()
                tensors[name] = t
                weight_map[name] = fname
                total += t.element_size() * t.numel()
                shard_size += t.element_size() * t.numel()
                params += t.numel()
            target = shard_path(out_dir, fname, shard_size, spill)
            pending.append(pool.submit(save_file, tensors, target, {"format": "pt"}))
            while len(pending) > 4:  # bound the host memory held by shards not yet written
                pending.pop(0).result()
            log(f"  shard {k + 1}/{len(shards)} drawn")
        for p in pending:
            p.result()
    with open(os.path.join(out_dir, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    return params


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--tiny", action="store_true", help="2 layers of width 256 (CPU smoke test)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--shape", choices=["7b", "70b"], default="7b")
    ap.add_argument("--layers", type=int, default=0, help="trim to this many layers")
    ap.add_argument("--fp8", action="store_true", help="projections as F8_E4M3 with per-channel weight_scale")
    ap.add_argument("--spill", default=None, help="directory for shards that do not fit OUT_DIR's filesystem")
    args = ap.parse_args()

    card = os.path.join(args.out_dir, "README.md")
    if os.path.exists(os.path.join(args.out_dir, "config.json")) and os.path.exists(card) and MARKER in open(card).read():
        log(f"{args.out_dir}: already made, skipping")
        return

    import torch
    import transformers
    from transformers import LlamaConfig

    t0 = time.time()
    os.makedirs(args.out_dir, exist_ok=True)
    tok = build_tokenizer(args.seed)
    tok.save(os.path.join(args.out_dir, "tokenizer.json"))
    with open(os.path.join(args.out_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>",
                   "add_bos_token": True, "model_max_length": 4096, "clean_up_tokenization_spaces": False}, f, indent=2)
    log(f"tokenizer: {tok.get_vocab_size()} tokens ({time.time() - t0:.0f} s)")

    shape = dict(SHAPE_TINY if args.tiny else SHAPE_70B if args.shape == "70b" else SHAPE_7B)
    if args.layers:
        shape["num_hidden_layers"] = args.layers
    config = LlamaConfig(vocab_size=VOCAB, max_position_embeddings=4096, rms_norm_eps=1e-5, hidden_act="silu",
                         tie_word_embeddings=False, bos_token_id=1, eos_token_id=2, **shape)
    if int(transformers.__version__.split(".")[0]) >= 5:
        config.dtype = torch.bfloat16
    else:
        config.torch_dtype = torch.bfloat16
    if args.fp8:
        config.quantization_config = {"quant_method": "fp8", "activation_scheme": "dynamic", "ignored_layers": ["lm_head"]}
    config.save_pretrained(args.out_dir)
    with open(os.path.join(args.out_dir, "generation_config.json"), "w") as f:
        json.dump({"bos_token_id": 1, "eos_token_id": 2}, f, indent=2)
    n = write_random_weights(args.out_dir, shape, args.seed, torch, fp8=args.fp8, spill=args.spill)
    kind = "FP8 (projections) / bf16" if args.fp8 else "bf16"
    log(f"weights: {n / 1e9:.2f}B random {kind} parameters ({time.time() - t0:.0f} s)")
    with open(card, "w") as f:
        f.write(f"# Random Llama-2-{args.shape.upper()}-shaped model, {shape['num_hidden_layers']} layers ({MARKER})\n\n"
                f"Made by `bench/device/make_llama7b_random.py{' --tiny' if args.tiny else ''} --seed {args.seed} --shape {args.shape}"
                f"{f' --layers {args.layers}' if args.layers else ''}{' --fp8' if args.fp8 else ''}` with torch "
                f"{torch.__version__}, transformers {transformers.__version__}: {n / 1e9:.2f}B random {kind} parameters "
                f"(normal(0, 0.02), norms at 1), a {VOCAB}-token byte-level BPE trained on made-up words. Benchmarks only.\n")
    log(f"wrote {args.out_dir} ({time.time() - t0:.0f} s)")


if __name__ == "__main__":
    sys.exit(main())
