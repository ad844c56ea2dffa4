// The ABI check at load (issue #16 step 3, issue #17 item 3): a library of another FG_ABI_VERSION
// or with another struct layout is refused with an error naming both sides, and the binding packs
// structs by the offsets the library reports.
import { describe, expect, test } from "bun:test";
import { ABI_VERSION, BINDING_STRUCTS, checkAbiVersion, parseAbiLayout } from "../../src/native/abi";
import { layout, lib } from "../../src/native/lib";
import { abiVersion } from "../../src/native";

const libraryJson = () => String(lib().fg_abi_layout());

describe("ABI check", () => {
  test("the built library has this binding's version and field lists", () => {
    expect(abiVersion()).toBe(ABI_VERSION);
    const l = layout();
    for (const name of Object.keys(BINDING_STRUCTS) as (keyof typeof BINDING_STRUCTS)[])
      expect(Object.keys(l[name].offset)).toEqual(Object.keys(BINDING_STRUCTS[name]));
    expect(l.fg_batch.offset.token_ids).toBe(8); // LP64: two i32 counts, then pointers
    expect(l.fg_kv_config.size).toBe(48);
    expect(l.fg_kv_config.offset.k_scales).toBe(32);
  });

  test("another version is refused, naming both", () => {
    expect(() => checkAbiVersion(ABI_VERSION - 1, "/x/libfastgen.so")).toThrow(
      `libfastgen at /x/libfastgen.so does not match this binding: its ABI version is ${ABI_VERSION - 1}, this binding needs ${ABI_VERSION}`);
    expect(() => checkAbiVersion(ABI_VERSION, "/x/libfastgen.so")).not.toThrow();
  });

  test("a field added, dropped, renamed or retyped on either side is refused", () => {
    const json = JSON.parse(libraryJson());
    const withFields = (f: (fields: [string, number, string][]) => void) => {
      const copy = structuredClone(json);
      f(copy.fg_kv_config.fields);
      return JSON.stringify(copy);
    };
    expect(() => parseAbiLayout(libraryJson(), "lib")).not.toThrow();
    expect(() => parseAbiLayout(withFields((f) => f.push(["extra", 24, "i32"])), "lib"))
      .toThrow("its fg_kv_config has field extra (i32) that this binding does not write");
    expect(() => parseAbiLayout(withFields((f) => f.pop()), "lib"))
      .toThrow("its fg_kv_config has no field v_scales (ptr)");
    expect(() => parseAbiLayout(withFields((f) => (f[1]![0] = "blocks")), "lib"))
      .toThrow("field 1 of fg_kv_config is blocks (i32) in the library, num_blocks (i32) in this binding");
    expect(() => parseAbiLayout(withFields((f) => (f[2]![2] = "i32")), "lib"))
      .toThrow("field 2 of fg_kv_config is memory_fraction (i32) in the library, memory_fraction (f32) in this binding");
    const { fg_engine_info: _, ...rest } = json;
    expect(() => parseAbiLayout(JSON.stringify(rest), "lib")).toThrow("it has no struct fg_engine_info");
  });

  test("offsets come from the library, not from the binding", () => {
    const json = JSON.parse(libraryJson());
    json.fg_kv_config.fields[3][1] = 32;  // a library that put max_kv_bytes elsewhere
    json.fg_kv_config.size = 40;
    const l = parseAbiLayout(JSON.stringify(json), "lib");
    expect(l.fg_kv_config.offset.max_kv_bytes).toBe(32);
    expect(l.fg_kv_config.size).toBe(40);
  });
});
