import { afterAll, describe, expect, spyOn, test } from "bun:test";
import { closeSync, ftruncateSync, mkdirSync, mkdtempSync, openSync, rmSync, symlinkSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  decodeValues,
  encodeSafetensors,
  writeSafetensors,
  writeShardedSafetensors,
} from "../../test/helpers/safetensors-writer";
import { openSafetensorsDir, SafetensorsError, SafetensorsFile } from "./safetensors";

const root = mkdtempSync(join(tmpdir(), "fastgen-st-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const freshDir = () => {
  const d = join(root, `d${n++}`);
  mkdirSync(d);
  return d;
};

function rand(len: number): Float32Array {
  return Float32Array.from({ length: len }, () => Math.random() * 4 - 2);
}

function expectError(fn: () => unknown, pattern: RegExp): void {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(SafetensorsError);
  expect((err as Error).message).toMatch(pattern);
}

describe("SafetensorsFile", () => {
  test("round-trips F32, F16, BF16 with views into the mapping", () => {
    const a = rand(6);
    const b = rand(12);
    const c = rand(5);
    const path = join(freshDir(), "model.safetensors");
    writeSafetensors(
      path,
      [
        { name: "a", dtype: "F32", shape: [2, 3], data: a },
        { name: "b", dtype: "F16", shape: [3, 4], data: b },
        { name: "c", dtype: "BF16", shape: [5], data: c },
      ],
      { format: "pt" },
    );
    const f = SafetensorsFile.open(path);
    expect(f.names()).toEqual(["a", "b", "c"]);
    expect(f.metadata).toEqual({ format: "pt" });
    const ta = f.get("a");
    expect(ta).toMatchObject({ name: "a", dtype: "F32", shape: [2, 3] });
    expect(decodeValues("F32", ta.data)).toEqual(a);
    const tb = f.get("b");
    const gotB = decodeValues("F16", tb.data);
    gotB.forEach((v, i) => expect(Math.abs(v - b[i]!)).toBeLessThanOrEqual(Math.abs(b[i]!) * 2 ** -11 + 1e-7));
    const gotC = decodeValues("BF16", f.get("c").data);
    gotC.forEach((v, i) => expect(Math.abs(v - c[i]!)).toBeLessThanOrEqual(Math.abs(c[i]!) * 2 ** -8));
    // a view, not a copy: every tensor shares one buffer (the mapping)
    expect(ta.data.buffer).toBe(tb.data.buffer);
    f.close();
  });

  test("F16/BF16 conversion edge values", () => {
    const vals = [0, -0, 1, -2.5, 65504, 1e-7, 70000, Infinity, -Infinity];
    const path = join(freshDir(), "x.safetensors");
    writeSafetensors(path, [
      { name: "h", dtype: "F16", shape: [vals.length], data: vals },
      { name: "b", dtype: "BF16", shape: [vals.length], data: vals },
    ]);
    const f = SafetensorsFile.open(path);
    expect([...decodeValues("F16", f.get("h").data)]).toEqual([0, -0, 1, -2.5, 65504, 1.1920928955078125e-7, Infinity, Infinity, -Infinity]);
    expect(decodeValues("BF16", f.get("b").data)[4]).toBe(65536);
  });

  test("unsupported dtype errors on access, naming tensor and dtype", () => {
    const path = join(freshDir(), "m.safetensors");
    writeSafetensors(path, [
      { name: "ids", dtype: "I64", shape: [2], data: new Uint8Array(16) },
      { name: "w", dtype: "F32", shape: [1], data: [1] },
    ]);
    const f = SafetensorsFile.open(path);
    expect(f.get("w").dtype).toBe("F32");
    expectError(() => f.get("ids"), /tensor ids has dtype I64; supported: F32, F16, BF16/);
    expectError(() => f.get("nope"), /no tensor "nope"/);
  });

  test("corrupt and truncated files name the file and tensor", () => {
    const dir = freshDir();
    const good = encodeSafetensors([
      { name: "w1", dtype: "F32", shape: [4], data: rand(4) },
      { name: "w2", dtype: "F32", shape: [4], data: rand(4) },
    ]);
    const at = (name: string, bytes: Uint8Array) => {
      const p = join(dir, name);
      writeFileSync(p, bytes);
      return p;
    };
    const withHeader = (header: object, dataLen: number) => {
      const json = new TextEncoder().encode(JSON.stringify(header));
      const out = new Uint8Array(8 + json.length + dataLen);
      new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
      out.set(json, 8);
      return out;
    };

    expectError(() => SafetensorsFile.open(at("empty.safetensors", new Uint8Array(0))), /empty\.safetensors: truncated/);
    expectError(() => SafetensorsFile.open(at("short.safetensors", good.subarray(0, 5))), /truncated/);
    const longHeader = good.slice(0, 40);
    expectError(() => SafetensorsFile.open(at("hdr.safetensors", longHeader)), /hdr\.safetensors: header length \d+ runs past the end/);
    expectError(
      () => SafetensorsFile.open(at("cut.safetensors", good.subarray(0, good.length - 3))),
      /cut\.safetensors: tensor w2: data_offsets \[16, 32\] out of range/,
    );
    const badJson = good.slice();
    badJson[8] = 0x7b + 1; // "|" instead of "{"
    expectError(() => SafetensorsFile.open(at("json.safetensors", badJson)), /json\.safetensors: header is not valid JSON/);
    expectError(
      () => SafetensorsFile.open(at("size.safetensors", withHeader({ w: { dtype: "F16", shape: [3], data_offsets: [0, 8] } }, 8))),
      /tensor w: 8 bytes at data_offsets but F16 \[3\] needs 6/,
    );
    expectError(
      () =>
        SafetensorsFile.open(
          at("overlap.safetensors", withHeader({ a: { dtype: "F32", shape: [2], data_offsets: [0, 8] }, b: { dtype: "F32", shape: [2], data_offsets: [4, 12] } }, 12)),
        ),
      /tensor b: data_offsets overlap/,
    );
    expectError(
      () => SafetensorsFile.open(at("tail.safetensors", withHeader({ a: { dtype: "F32", shape: [1], data_offsets: [0, 4] } }, 8))),
      /4 bytes after the last tensor/,
    );
    expectError(
      () => SafetensorsFile.open(at("dtype.safetensors", withHeader({ a: { dtype: "F33", shape: [1], data_offsets: [0, 4] } }, 4))),
      /tensor a: unknown dtype "F33"/,
    );
    expectError(
      () => SafetensorsFile.open(at("shape.safetensors", withHeader({ a: { dtype: "F32", shape: [-1], data_offsets: [0, 4] } }, 4))),
      /tensor a: bad shape/,
    );
  });
});

describe("openSafetensorsDir", () => {
  const shards = () => [
    [{ name: "x", dtype: "F32", shape: [2], data: [1, 2] }],
    [
      { name: "y", dtype: "BF16", shape: [2], data: [3, 4] },
      { name: "z", dtype: "F16", shape: [1], data: [5] },
    ],
  ];

  test("sharded index: every tensor, each shard opened once", () => {
    const dir = freshDir();
    writeShardedSafetensors(dir, shards());
    const set = openSafetensorsDir(dir);
    expect(set.files.length).toBe(2);
    expect([...set.tensors.keys()].sort()).toEqual(["x", "y", "z"]);
    expect(decodeValues("BF16", set.tensors.get("y")!.get("y").data)).toEqual(Float32Array.from([3, 4]));
    expect(set.tensors.get("y")).toBe(set.tensors.get("z")!);
    set.close();
  });

  test("single file and error when nothing is there", () => {
    const dir = freshDir();
    expectError(() => openSafetensorsDir(dir), /no model\.safetensors/);
    writeSafetensors(join(dir, "model.safetensors"), shards()[0]!);
    expect([...openSafetensorsDir(dir).tensors.keys()]).toEqual(["x"]);
  });

  test("index naming a tensor its shard lacks, and duplicate tensors", () => {
    const dir = freshDir();
    writeShardedSafetensors(dir, shards());
    const index = { weight_map: { x: "model-00001-of-00002.safetensors", y: "model-00001-of-00002.safetensors" } };
    writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify(index));
    expectError(() => openSafetensorsDir(dir), /weight_map puts tensor y in model-00001-of-00002\.safetensors, which does not hold it/);

    const dup = freshDir();
    const [a, b] = writeShardedSafetensors(dup, [shards()[0]!, [...shards()[0]!, ...shards()[1]!]]);
    writeFileSync(join(dup, "model.safetensors.index.json"), JSON.stringify({ weight_map: { x: a, y: b, z: b } }));
    expectError(() => openSafetensorsDir(dup), /tensor x is in both/);
  });

  test("shard names must stay inside the model directory", () => {
    const outside = freshDir();
    writeSafetensors(join(outside, "evil.safetensors"), shards()[0]!);
    const dir = freshDir();
    const withShard = (shard: string) =>
      writeFileSync(join(dir, "model.safetensors.index.json"), JSON.stringify({ weight_map: { x: shard } }));

    withShard(`../${outside.split("/").pop()}/evil.safetensors`);
    expectError(() => openSafetensorsDir(dir), /climbs out with \.\./);
    withShard(join(outside, "evil.safetensors"));
    expectError(() => openSafetensorsDir(dir), /is not a relative file name/);
    symlinkSync(join(outside, "evil.safetensors"), join(dir, "link.safetensors"));
    withShard("link.safetensors");
    expectError(() => openSafetensorsDir(dir), /resolves to .*evil\.safetensors \(a link out\); shards must stay inside/);
    withShard("missing.safetensors");
    expectError(() => openSafetensorsDir(dir), /shard missing\.safetensors does not exist/);
    writeFileSync(join(dir, "model.safetensors.index.json"), "{ nope");
    expectError(() => openSafetensorsDir(dir), /model\.safetensors\.index\.json: not valid JSON/);
  });

  test("hub cache layout: snapshot links into the repo's blobs/ are allowed", () => {
    const repo = freshDir();
    const snap = join(repo, "snapshots", "abc123");
    mkdirSync(snap, { recursive: true });
    mkdirSync(join(repo, "blobs"));
    writeSafetensors(join(repo, "blobs", "sha256-1"), shards()[0]!);
    symlinkSync("../../blobs/sha256-1", join(snap, "model-00001-of-00001.safetensors"));
    writeFileSync(
      join(snap, "model.safetensors.index.json"),
      JSON.stringify({ weight_map: { x: "model-00001-of-00001.safetensors" } }),
    );
    expect([...openSafetensorsDir(snap).tensors.keys()]).toEqual(["x"]);
  });
});

describe("files we may not map", () => {
  test("fall back to positioned reads with the same results", () => {
    const path = join(freshDir(), "model.safetensors");
    const a = rand(7);
    writeSafetensors(path, [
      { name: "a", dtype: "F32", shape: [7], data: a },
      { name: "b", dtype: "BF16", shape: [2], data: [1, -1] },
    ]);
    // Bun.mmap opens read-write, so a read-only file (another user's cache) throws EACCES.
    const spy = spyOn(Bun, "mmap").mockImplementation(() => {
      throw Object.assign(new Error("EACCES: permission denied"), { code: "EACCES" });
    });
    try {
      const f = SafetensorsFile.open(path);
      expect(spy).toHaveBeenCalled();
      expect(decodeValues("F32", f.get("a").data)).toEqual(a);
      expect(decodeValues("BF16", f.get("b").data)).toEqual(Float32Array.from([1, -1]));
      f.close();
      expectError(() => f.get("a"), /file is closed/);
    } finally {
      spy.mockRestore();
    }
  });
});

describe("files over 4 GiB", () => {
  test("map one tensor at a time (sparse file, nothing is written to disk)", () => {
    // Two 2.25 GiB F32 tensors: too big for one mapping, each small enough for its own.
    const numel = 2.25 * 2 ** 28;
    const json = JSON.stringify({
      a: { dtype: "F32", shape: [numel], data_offsets: [0, numel * 4] },
      b: { dtype: "F32", shape: [numel], data_offsets: [numel * 4, numel * 8] },
    });
    const hdr = new TextEncoder().encode(json);
    const path = join(freshDir(), "big.safetensors");
    const fd = openSync(path, "w");
    const len = new Uint8Array(8);
    new DataView(len.buffer).setBigUint64(0, BigInt(hdr.length), true);
    writeSync(fd, len);
    writeSync(fd, hdr);
    writeSync(fd, new Uint8Array([1, 2]), 0, 2, 8 + hdr.length + numel * 4); // first bytes of b
    ftruncateSync(fd, 8 + hdr.length + numel * 8);
    closeSync(fd);
    const spy = spyOn(Bun, "mmap"); // calls through
    const f = SafetensorsFile.open(path);
    const b = f.get("b");
    expect(b.data.length).toBe(numel * 4);
    expect([b.data[0], b.data[1], b.data[2]]).toEqual([1, 2, 0]);
    expect(f.get("a").data.length).toBe(numel * 4);
    expect(spy).toHaveBeenCalledTimes(5); // probe, header length, header, then one per tensor
    spy.mockRestore();
    f.close();
  });
});
