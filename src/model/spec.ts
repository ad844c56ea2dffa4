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
  /** Hugging Face model_type, informational ("llama", "mistral", "qwen2", ...). */
  arch: string;
  vocab_size: number;
  hidden_size: number;
  intermediate_size: number;
  num_layers: number;
  num_heads: number;
  num_kv_heads: number;
  head_dim: number;
  max_position_embeddings: number;
  norm: "rms" | "layer";
  norm_eps: number;
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
  mlp: "gated_silu" | "gated_gelu" | "gelu" | "relu";
  layout: "sequential" | "parallel";
  tie_word_embeddings: boolean;
}
