"""Device ceilings measured in the same run as bench/gpu/llama7b.ts and fp8.ts (torch on the
device): device-to-device copy bandwidth (bytes read + written), a large bf16 GEMM's TFLOP/s on
random data, the same for FP8 E4M3 through torch._scaled_mm (cuBLASLt; per-tensor scales, bf16 out,
fast accumulation, and row-wise scales on one shape), and torch SDPA (flash) on the prefill
attention shape. Writes JSON to argv[1]."""
import json
import sys
import time

import torch


def bench(fn, reps=20, warmup=3, flush=None):
    """Median ms of `reps` runs of fn, each between its own CUDA events (flush: a tensor zeroed
    before each run, e.g. one larger than L2)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        if flush is not None:
            flush.zero_()
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        torch.cuda.synchronize()
        times.append(a.elapsed_time(b))
    times.sort()
    return times[len(times) // 2]  # median ms


def fp8_ceilings(out, m):
    """FP8 E4M3 GEMMs through torch._scaled_mm (cuBLASLt): 8192^3 and the 7B prefill shapes at 2048
    tokens, x @ W^T with W [N, K] row-major (so mat2 = W.t() is column-major, as it requires)."""
    if not hasattr(torch, "_scaled_mm") or torch.cuda.get_device_capability(0) < (8, 9):
        out["gemm_fp8_error"] = "torch._scaled_mm or an FP8 GPU is missing"
        return
    try:
        f8 = torch.float8_e4m3fn
        one = torch.ones((), device="cuda")
        mm = lambda a, b, sa=one, sb=one: torch._scaled_mm(a, b, scale_a=sa, scale_b=sb, out_dtype=torch.bfloat16,
                                                            use_fast_accum=True)
        a8 = torch.randn(m, m, device="cuda").to(f8)
        b8 = torch.randn(m, m, device="cuda").to(f8)
        ms = bench(lambda: mm(a8, b8.t()))
        out["gemm_fp8_8192_tflops"] = round(2 * m**3 / (ms * 1e-3) / 1e12, 1)
        del a8, b8
        shapes = {"qkv": (12288, 4096), "o": (4096, 4096), "gate_up": (22016, 4096), "down": (4096, 11008)}
        for name, (nout, k) in shapes.items():
            x8 = torch.randn(2048, k, device="cuda").to(f8)
            w8 = torch.randn(nout, k, device="cuda").to(f8)
            ms = bench(lambda: mm(x8, w8.t()))
            out[f"gemm_fp8_2048x{nout}x{k}_tflops"] = round(2 * 2048 * nout * k / (ms * 1e-3) / 1e12, 1)
            if name == "gate_up":  # row-wise: per token x per channel, the engine's W8A8 scaling
                sa = torch.ones(2048, 1, device="cuda")
                sb = torch.ones(1, nout, device="cuda")
                ms = bench(lambda: mm(x8, w8.t(), sa, sb))
                out[f"gemm_fp8_rowwise_2048x{nout}x{k}_tflops"] = round(2 * 2048 * nout * k / (ms * 1e-3) / 1e12, 1)
    except Exception as e:  # an older torch without some of it: the bench prints what is missing
        out["gemm_fp8_error"] = repr(e)


def main():
    dev = torch.cuda.get_device_properties(0)
    out = {"gpu": torch.cuda.get_device_name(0), "sms": dev.multi_processor_count,
           "memory_gib": round(dev.total_memory / 2**30, 1), "torch": torch.__version__,
           "date": time.strftime("%Y-%m-%d %H:%M:%S")}
    n = 1 << 30  # 2 GiB of bf16 per buffer
    src = torch.randn(n, dtype=torch.bfloat16, device="cuda")
    dst = torch.empty_like(src)
    ms = bench(lambda: dst.copy_(src))
    out["copy_bw_GBps"] = round(2 * n * 2 / (ms * 1e-3) / 1e9, 1)
    del src, dst
    m = 8192
    a = torch.randn(m, m, dtype=torch.bfloat16, device="cuda")
    b = torch.randn(m, m, dtype=torch.bfloat16, device="cuda")
    ms = bench(lambda: a @ b)
    out["gemm_bf16_8192_tflops"] = round(2 * m**3 / (ms * 1e-3) / 1e12, 1)
    # the prefill GEMM shapes of Llama-2-7B at 2048 tokens (x @ W^T)
    x = torch.randn(2048, 4096, dtype=torch.bfloat16, device="cuda")
    shapes = {"qkv": 12288, "o": 4096, "gate_up": 22016}
    for name, nout in shapes.items():
        w = torch.randn(nout, 4096, dtype=torch.bfloat16, device="cuda")
        ms = bench(lambda: x @ w.t())
        out[f"gemm_2048x{nout}x4096_tflops"] = round(2 * 2048 * nout * 4096 / (ms * 1e-3) / 1e12, 1)
    fp8_ceilings(out, m)
    q = torch.randn(1, 32, 2048, 128, dtype=torch.bfloat16, device="cuda")
    k, v = torch.randn_like(q), torch.randn_like(q)
    from torch.nn.attention import SDPBackend, sdpa_kernel
    with sdpa_kernel(SDPBackend.FLASH_ATTENTION):
        ms = bench(lambda: torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True))
    out["sdpa_flash_causal_1x32x2048x128_ms"] = round(ms, 4)
    flops = 4 * 32 * 128 * 2048 * 2049 / 2
    out["sdpa_flash_causal_tflops"] = round(flops / (ms * 1e-3) / 1e12, 1)
    json.dump(out, open(sys.argv[1], "w"), indent=1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
