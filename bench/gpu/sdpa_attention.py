"""torch SDPA (flash backend) on the shapes of bench/gpu/attention.ts, timed the way the
FASTGEN_ATTN_TIMING hook times ours: median of 20 launches, each between its own CUDA events,
the same inputs every launch (so shapes whose K+V fit in L2 stay there, as in the hook).
Decode rows also carry ms_l2_flushed: the same median with L2 overwritten before each launch.

  prefill: q, k, v [1, 32, T, 128] bf16, is_causal=True           (Llama-2-7B, MHA)
           --fa3-shapes adds k, v [1, 8, T, 128] (GQA) at each T, and 512-token chunks at
           context 2048 / 8192 (q [1, 32, 512, 128], k, v [1, kv, context + 512, 128], MHA
           and GQA) with the causal mask aligned bottom-right (causal_lower_right: query i
           sees keys <= context + i), as bench/gpu/attention.ts --fa3-shapes
  decode:  q [B, 32, 1, 128], k, v [B, 8, C, 128] bf16, not causal (one query at position C-1
           sees all C keys; is_causal with one query row would align it to key 0)

GQA: enable_gqa=True where the flash backend takes it, else k/v repeated to 32 heads before
timing (gqa_mode in the JSON says which). bytes are the GQA K+V (+ q, out) either way, the same
numerator as ours. Writes JSON to argv[1]; --prefill-only skips the decode shapes."""
import json
import sys
import time

import torch
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from ceilings import bench  # the same timing as the ceilings (bench/gpu/ is on sys.path when run)

PREFILL_T = [2048, 4096, 8192, 16384]
DECODE_B = [1, 8, 32, 64, 128, 256]
DECODE_C = [512, 2048, 8192]
EXTRA_DECODE = [(256, 4096)]  # attention.ts runs it in place of 256 x 8192 (see there)
HEADS, KV_HEADS, HD = 32, 8, 128




def first_line(e):
    return (str(e).splitlines() or [type(e).__name__])[0]


def gqa_mode():
    q = torch.randn(1, HEADS, 1, HD, dtype=torch.bfloat16, device="cuda")
    k = torch.randn(1, KV_HEADS, 64, HD, dtype=torch.bfloat16, device="cuda")
    try:
        with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
            F.scaled_dot_product_attention(q, k, k, enable_gqa=True)
        torch.cuda.synchronize()
        return "enable_gqa"
    except (RuntimeError, TypeError) as e:
        print(f"flash SDPA with enable_gqa=True failed ({first_line(e)}): expanding k/v")
        return "expanded"


def prefill(T, kv_heads=HEADS, context=0, mode="enable_gqa"):
    q = torch.randn(1, HEADS, T, HD, dtype=torch.bfloat16, device="cuda")
    k = torch.randn(1, kv_heads, context + T, HD, dtype=torch.bfloat16, device="cuda")
    v = torch.randn_like(k)
    kw = {}
    if kv_heads != HEADS:
        if mode == "enable_gqa":
            kw["enable_gqa"] = True
        else:
            k, v = k.repeat_interleave(HEADS // kv_heads, 1), v.repeat_interleave(HEADS // kv_heads, 1)
    if context:
        from torch.nn.attention.bias import causal_lower_right
        kw["attn_mask"] = causal_lower_right(T, context + T)
    else:
        kw["is_causal"] = True
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        ms = bench(lambda: F.scaled_dot_product_attention(q, k, v, **kw))
    flops = 4 * HEADS * HD * (T * context + T * (T + 1) / 2)
    return {"T": T, "kv_heads": kv_heads, "context": context, "ms": round(ms, 5),
            "tflops": round(flops / (ms * 1e-3) / 1e12, 2)}


def decode(B, C, mode, flush):
    q = torch.randn(B, HEADS, 1, HD, dtype=torch.bfloat16, device="cuda")
    k = torch.randn(B, KV_HEADS, C, HD, dtype=torch.bfloat16, device="cuda")
    v = torch.randn_like(k)
    kw = {"enable_gqa": True} if mode == "enable_gqa" else {}
    if mode == "expanded":  # q head h reads kv head h // 4, as enable_gqa would
        k, v = k.repeat_interleave(HEADS // KV_HEADS, 1), v.repeat_interleave(HEADS // KV_HEADS, 1)
    fn = lambda: F.scaled_dot_product_attention(q, k, v, **kw)
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        ms = bench(fn)
        cold = bench(fn, flush=flush)
    nbytes = B * C * KV_HEADS * HD * 2 * 2 + 2 * B * HEADS * HD * 2
    return {"B": B, "C": C, "ms": round(ms, 5), "ms_l2_flushed": round(cold, 5), "bytes": nbytes,
            "gbps": round(nbytes / (ms * 1e-3) / 1e9, 1)}


def main():
    t0 = time.time()
    props = torch.cuda.get_device_properties(0)
    l2 = getattr(props, "L2_cache_size", 0) or 50 * 2**20
    mode = gqa_mode()
    out = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "l2_bytes": l2,
           "date": time.strftime("%Y-%m-%d %H:%M:%S"), "backend": "torch SDPA, SDPBackend.FLASH_ATTENTION",
           "gqa_mode": mode, "timing": "median of 20 launches, each between its own CUDA events, after 3 warm-up",
           "prefill": [], "decode": [], "errors": []}
    shapes = [(T, HEADS, 0) for T in PREFILL_T]
    if "--fa3-shapes" in sys.argv:
        shapes += [(T, KV_HEADS, 0) for T in PREFILL_T]
        shapes += [(512, kvh, ctx) for ctx in (2048, 8192) for kvh in (HEADS, KV_HEADS)]
    for T, kvh, ctx in shapes:
        try:
            out["prefill"].append(prefill(T, kvh, ctx, mode))
        except Exception as e:  # one failed shape must not lose the rest
            out["errors"].append(f"prefill T={T} kv_heads={kvh} context={ctx}: {first_line(e)}")
        torch.cuda.empty_cache()
    flush = torch.empty(max(4 * l2, 256 * 2**20), dtype=torch.uint8, device="cuda")
    decode_shapes = [] if "--prefill-only" in sys.argv else [(B, C) for B in DECODE_B for C in DECODE_C] + EXTRA_DECODE
    for B, C in decode_shapes:
        try:
            out["decode"].append(decode(B, C, mode, flush))
        except Exception as e:
            out["errors"].append(f"decode B={B} C={C}: {first_line(e)}")
        torch.cuda.empty_cache()
    out["seconds"] = round(time.time() - t0, 1)
    json.dump(out, open(sys.argv[1], "w"), indent=1)
    print(json.dumps({k: out[k] for k in ("gpu", "gqa_mode", "errors", "seconds")}))
    for r in out["prefill"]:
        print(f"sdpa prefill T={r['T']} kv_heads={r['kv_heads']} context={r['context']}: {r['ms']} ms, {r['tflops']} TFLOP/s")
    for r in out["decode"]:
        print(f"sdpa decode B={r['B']} C={r['C']}: {r['ms']} ms ({r['ms_l2_flushed']} flushed), {r['gbps']} GB/s")


main()
