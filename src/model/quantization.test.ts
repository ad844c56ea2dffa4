import { describe, expect, test } from "bun:test";
import { ModelLoadError } from "./errors";
import { describeScheme, readQuantization } from "./quantization";

const ctGroup = (weights: object, input: object | null = { num_bits: 8, type: "float", dynamic: true, strategy: "token" }) => ({
  group_0: { targets: ["Linear"], weights: { num_bits: 8, type: "float", dynamic: false, ...weights }, input_activations: input, output_activations: null },
});
const ct = (extra: object) => ({ quantization_config: { quant_method: "compressed-tensors", format: "float-quantized", ignore: ["lm_head"], ...extra } });

function refused(config: object): string {
  try {
    readQuantization(config as Record<string, unknown>);
  } catch (e) {
    expect(e).toBeInstanceOf(ModelLoadError);
    return (e as Error).message;
  }
  throw new Error("expected a ModelLoadError");
}

describe("quantization_config", () => {
  test("absent or null: a plain checkpoint", () => {
    expect(readQuantization({})).toBeNull();
    expect(readQuantization({ quantization_config: null })).toBeNull();
  });

  test('quant_method "fp8": per tensor/channel, block-wise, static or dynamic activations', () => {
    expect(readQuantization({ quantization_config: { quant_method: "fp8", activation_scheme: "static", ignored_layers: ["lm_head"] } }))
      .toEqual({ method: "fp8", weights: "auto", activations: "static", ignore: ["lm_head"] });
    const block = readQuantization({ quantization_config: { quant_method: "fp8", fmt: "e4m3", activation_scheme: "dynamic", weight_block_size: [128, 128] } })!;
    expect(block).toEqual({ method: "fp8", weights: "block", blockSize: [128, 128], activations: "dynamic", ignore: [] });
    expect(describeScheme(block)).toBe("FP8 (fp8, block 128x128 weights, dynamic activations)");
    expect(readQuantization({ quantization_config: { quant_method: "fbgemm_fp8", modules_to_not_convert: ["lm_head"] } }))
      .toEqual({ method: "fbgemm_fp8", weights: "channel", activations: "dynamic", ignore: ["lm_head"] });
  });

  test("compressed-tensors FP8: channel, tensor (static inputs), block, weight-only, compression_config", () => {
    expect(readQuantization(ct({ config_groups: ctGroup({ strategy: "channel" }) })))
      .toEqual({ method: "compressed-tensors", weights: "channel", activations: "dynamic", ignore: ["lm_head"] });
    expect(readQuantization(ct({ config_groups: ctGroup({ strategy: "tensor" }, { num_bits: 8, type: "float", dynamic: false, strategy: "tensor" }) }))!.activations)
      .toBe("static");
    expect(readQuantization(ct({ config_groups: ctGroup({ strategy: "block", block_structure: [128, 128] }) }))!.blockSize).toEqual([128, 128]);
    expect(readQuantization(ct({ config_groups: ctGroup({ strategy: "channel" }, null) }))!.activations).toBeNull();
    expect(readQuantization({ compression_config: ct({ config_groups: ctGroup({ strategy: "channel" }) }).quantization_config })!.method)
      .toBe("compressed-tensors");
    expect(readQuantization(ct({ config_groups: ctGroup({ strategy: "channel" }), kv_cache_scheme: { num_bits: 8, type: "float", strategy: "tensor" } }))!.weights)
      .toBe("channel");
  });

  test("any other method or scheme is refused, naming what is supported", () => {
    const supported = /supported: quant_method "fp8" .*"fbgemm_fp8", and "compressed-tensors"/;
    for (const [config, what] of [
      [{ quantization_config: { quant_method: "gptq", bits: 4, group_size: 128 } }, 'quant_method "gptq"'],
      [{ quantization_config: { quant_method: "awq", bits: 4, version: "gemm" } }, 'quant_method "awq"'],
      [{ quantization_config: { quant_method: "bitsandbytes", load_in_4bit: true } }, 'quant_method "bitsandbytes"'],
      [{ quantization_config: { quant_method: "mxfp4" } }, 'quant_method "mxfp4"'],
      [{ quantization_config: { load_in_8bit: true } }, "quantization_config has no quant_method"],
      [{ quantization_config: { quant_method: "fp8", fmt: "e5m2" } }, 'fmt "e5m2"'],
      [{ quantization_config: { quant_method: "fp8", activation_scheme: "per-token" } }, 'activation_scheme "per-token"'],
      [ct({ config_groups: ctGroup({ num_bits: 8, type: "int", strategy: "channel" }, { num_bits: 8, type: "int", dynamic: true, strategy: "token" }) }),
        '8-bit "int" (INT8 weights)'],
      [ct({ format: "pack-quantized", config_groups: ctGroup({ num_bits: 4, type: "int", strategy: "group", group_size: 128 }) }),
        'format "pack-quantized"'],
      [ct({ config_groups: ctGroup({ num_bits: 4, type: "float", strategy: "tensor_group", group_size: 16 }) }), '4-bit "float"'],
      [ct({ config_groups: ctGroup({ strategy: "group", group_size: 128 }) }), 'strategy "group"'],
      [ct({ config_groups: ctGroup({ strategy: "block" }) }), 'strategy "block" without block_structure'],
      [ct({ config_groups: ctGroup({ strategy: "channel" }, { num_bits: 8, type: "float", dynamic: false, strategy: "token" }) }), 'static strategy "token"'],
      [ct({ config_groups: ctGroup({ strategy: "channel" }), kv_cache_scheme: { num_bits: 8, type: "int" } }), "kv_cache_scheme"],
      [ct({ config_groups: {} }), "without config_groups"],
    ] as [object, string][]) {
      const message = refused(config);
      expect(message).toContain(what);
      expect(message).toMatch(supported);
    }
    expect(refused({ quantization_config: "fp8" })).toContain("quantization_config must be an object");
    expect(refused({ quantization_config: { quant_method: "fp8", weight_block_size: [128] } })).toContain("weight_block_size must be [rows, cols]");
  });
});
