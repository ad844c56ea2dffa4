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
    };

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
  /** 0 = no window; else a token at position i attends to positions j with i - j < W. */
  sliding_window: number;
  qkv_bias: boolean;
  o_bias: boolean;
  mlp_bias: boolean;
  lm_head_bias: boolean;
  /** gelu = exact erf GELU; *gelu_tanh = the tanh approximation (gelu_new, gelu_pytorch_tanh). */
  mlp: "gated_silu" | "gated_gelu" | "gated_gelu_tanh" | "gelu" | "gelu_tanh" | "relu";
  /** parallel: attn and MLP both read attn_norm(x); parallel_two_norms: the MLP reads mlp_norm(x). */
  layout: "sequential" | "parallel" | "parallel_two_norms";
  tie_word_embeddings: boolean;
  /** 0 or absent: dense MLP. E > 0: a mixture of E experts of kind `mlp`. */
  num_experts?: number;
  /** Top-k of the router (Mixtral renormalizes the k weights to sum 1). */
  num_experts_per_tok?: number;
  /** Runtime key: tensor-parallel ranks on CUDA devices 0..N-1 (default 1). */
  tensor_parallel?: number;
  /** Runtime key: a pass's wait on collectives, in ms (0 = the library's 120 s). */
  collective_timeout_ms?: number;
}
