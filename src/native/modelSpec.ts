/**
 * The normalized model spec handed to libfastgen (`fg_engine_create`). One generic decoder block
 * covers every supported architecture; these fields decide its shape. Field names and meaning
 * match the comment at the top of libfastgen/include/fastgen.h — keep the two in step.
 */
export type RopeScaling =
  | { type: "linear"; factor: number }
  | {
      type: "llama3";
      factor: number;
      low_freq_factor: number;
      high_freq_factor: number;
      original_max_position_embeddings: number;
    }
  | {
      type: "yarn";
      factor: number;
      original_max_position_embeddings: number;
      beta_fast?: number;
      beta_slow?: number;
      truncate?: boolean;
      /** Absent: from mscale/mscale_all_dim, else 0.1 ln(factor) + 1. */
      attention_factor?: number;
      mscale?: number;
      mscale_all_dim?: number;
    }
  /** NTK-aware base for factor x the original length, fixed at load (vLLM's form). */
  | { type: "dynamic"; factor: number; original_max_position_embeddings: number }
  /** Phi-3 LongRoPE: the chosen list (short or long) of rotary_dim / 2 divisors. */
  | { type: "longrope"; factors: number[]; attention_factor: number };

export interface ModelSpec {
  /** Hugging Face model_type, informational ("llama", "mistral", "qwen2", "opt", "falcon", "phi", "mixtral"). */
  arch: string;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_layers: number;
  num_heads: number;
  num_kv_heads: number;
  head_dim: number;
  max_position_embeddings: number;
  /** Width of embed/lm_head rows; differs from hidden_size when OPT's project_in/out exist. */
  embed_dim?: number;
  norm: "rms" | "layer";
  norm_eps: number;
  /** "pre" (default): x + f(norm(x)); "post": norm(x + f(x)) (OPT with do_layer_norm_before false). */
  norm_position?: "pre" | "post";
  /** Whether final_norm runs before the LM head (default true). */
  final_norm?: boolean;
  /** "learned": absolute position embeddings (pos_embed row p at position p). */
  positions: "rope" | "learned";
  rope_theta: number;
  /** Share of head_dim that is rotated (1.0 = full rotary). */
  partial_rotary_factor: number;
  rope_scaling: RopeScaling | null;
  /** Pairs (2i, 2i + 1) rotate together (GPT-J, DeepSeek's complex form) instead of (i, i + rot/2). */
  rope_interleaved?: boolean;
  /** 0 = no window; else a token at position i attends to positions j with i - j < W. */
  sliding_window: number;
  /** Per layer; absent: every layer is "sliding" when sliding_window > 0. */
  layer_types?: ("full" | "sliding")[];
  /** > 0: sliding layers rotate with plain RoPE at this base (Gemma 3's rope_local_base_freq). */
  sliding_rope_theta?: number;
  /** Per-head RMSNorm of q and k before RoPE (Qwen3, Gemma 3). */
  qk_norm?: boolean;
  /** RMSNorm multiplies by (offset + weight): Gemma's 1. */
  norm_weight_offset?: number;
  /** post_attn_norm / post_mlp_norm on each sublayer's output (Gemma 2/3). */
  sandwich_norms?: boolean;
  /** h = embed[token] * embed_scale (Gemma: sqrt(hidden)). */
  embed_scale?: number;
  /** The attention softmax scale; absent or 0: 1 / sqrt(head_dim). */
  attn_scale?: number;
  /** > 0: attention scores become cap * tanh(score / cap) (Gemma 2). */
  attn_logit_softcap?: number;
  /** > 0: the same on the final logits (Gemma 2). */
  final_logit_softcap?: number;
  qkv_bias: boolean;
  o_bias: boolean;
  mlp_bias: boolean;
  lm_head_bias: boolean;
  /** gelu = exact erf GELU; *gelu_tanh = the tanh approximation (gelu_new, gelu_pytorch_tanh). */
  mlp: "gated_silu" | "gated_gelu" | "gated_gelu_tanh" | "gelu" | "gelu_tanh" | "relu";
  /** parallel: attn and MLP both read attn_norm(x); parallel_two_norms: the MLP reads mlp_norm(x). */
  layout: "sequential" | "parallel" | "parallel_two_norms";
  tie_word_embeddings: boolean;
  /**
   * "standard" (default): per-head q, k, v. "mla": DeepSeek's multi-head latent attention; then
   * num_kv_heads is 1 (the cache holds one [kv_lora_rank + qk_rope_head_dim] row per token for
   * every head) and head_dim is qk_nope_head_dim + qk_rope_head_dim.
   */
  attention?: "standard" | "mla";
  /** MLA: width of the compressed KV latent (kv_a_norm, kv_b's input). */
  kv_lora_rank?: number;
  /** MLA: width of the compressed query (q_a, q_a_norm, q_b); 0 = q projected directly. */
  q_lora_rank?: number;
  /** MLA: per-head query/key dims without and with RoPE, and the value dim. */
  qk_nope_head_dim?: number;
  qk_rope_head_dim?: number;
  v_head_dim?: number;
  /** MLA: eps of q_a_norm and kv_a_norm (default 1e-6, transformers' fixed value). */
  latent_norm_eps?: number;
  /** 0 or absent: dense MLP. E > 0: a mixture of E experts of kind `mlp`. */
  num_experts?: number;
  /** Top-k of the router (Mixtral renormalizes the k weights to sum 1). */
  num_experts_per_tok?: number;
  /** Each routed expert's width (default intermediate_size). */
  moe_intermediate_size?: number;
  /** Whether the top-k weights are rescaled to sum 1 (default true; Qwen2-MoE false). */
  moe_renormalize?: boolean;
  /** > 0: a shared expert MLP of this width runs for every token (Qwen2-MoE, DeepSeek). */
  shared_expert_intermediate_size?: number;
  /** The shared expert's output is multiplied by sigmoid(shared_expert_gate . x) (Qwen2-MoE). */
  shared_expert_gate?: boolean;
  /** Layers of a MoE model with the dense MLP (intermediate_size) instead (DeepSeek's first_k_dense_replace). */
  dense_layers?: number[];
  /** Group-limited routing: experts in this many groups; the top-k come from the best moe_topk_groups (by best expert). */
  moe_num_groups?: number;
  moe_topk_groups?: number;
  /** The routing weights are multiplied by it (DeepSeek's routed_scaling_factor; default 1). */
  moe_routed_scale?: number;
  /** Runtime key: tensor-parallel ranks on CUDA devices 0..N-1 (default 1). */
  tensor_parallel?: number;
  /** Runtime key: a pass's wait on collectives, in ms (0 = the library's 120 s). */
  collective_timeout_ms?: number;
  /**
   * Runtime key: "fp8" quantizes the FP8-capable weights (attention and MLP/expert projections)
   * that arrive in F32/F16/BF16 to E4M3 per output channel at load (--quantization fp8).
   */
  quantization?: "none" | "fp8";
}
