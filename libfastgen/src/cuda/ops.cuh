// The CUDA backend's small fused kernels, one op per .cu/.cuh pair: norm (norms fused with the
// residual add), rope (bias + RoPE + KV-cache write), activation (MLP activations), embed (token
// embedding, learned positions), bias (bias rows). Included by the forward pass as one set.
#pragma once
#include "cuda/activation.cuh"
#include "cuda/bias.cuh"
#include "cuda/embed.cuh"
#include "cuda/norm.cuh"
#include "cuda/rope.cuh"
