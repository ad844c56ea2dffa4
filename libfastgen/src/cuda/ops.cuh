// The CUDA backend's small fused kernels, one op per .cu/.cuh pair: norm (norms fused with the
// residual add; sandwich post norms), rope (bias + qk-norm + RoPE + KV-cache write), activation
// (MLP activations), embed (token embedding, learned positions), bias (bias rows), softcap (logit
// soft-capping). Included by the forward pass as one set.
#pragma once
#include "cuda/activation.cuh"
#include "cuda/bias.cuh"
#include "cuda/embed.cuh"
#include "cuda/norm.cuh"
#include "cuda/rope.cuh"
#include "cuda/softcap.cuh"
