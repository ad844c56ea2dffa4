/**
 * Safetensors reader: one file, or a sharded set behind `model.safetensors.index.json`.
 *
 * File layout:
 *   | u64 LE header length N | N bytes JSON header | data buffer |
 *   header: { "<name>": {"dtype","shape","data_offsets":[begin,end]}, "__metadata__"?: {...} }
 *   offsets are relative to the data buffer; tensors tile it exactly, in offset order.
 *
 * Files are mapped with Bun.mmap, so tensor data is a view into the page cache, not a copy
 * (files over 4 GiB, one mapping per tensor). Bun opens mapped files read-write; a file we may
 * only read (read-only mount, another user's cache) falls back to positioned reads, one copy
 * per tensor, never the whole file at once.
 */
import { closeSync, existsSync, fstatSync, openSync, readSync, readdirSync, readFileSync, realpathSync } from "node:fs";
import { isAbsolute, join, resolve } from "node:path";
import { realPathInside } from "./insideDir";

/** Tensor dtypes libfastgen accepts (F8_E4M3 with its scales: src/model/fp8Tensors.ts). */
export type DType = "F32" | "F16" | "BF16" | "F8_E4M3";

/** One tensor of a safetensors file; `data` holds exactly prod(shape) elements of `dtype`. */
export interface TensorView {
  name: string;
  dtype: DType;
  shape: number[];
  data: Uint8Array;
}

/** Header entry of one tensor, before its data is touched. */
export interface TensorInfo {
  name: string;
  /** As written in the file; may be a dtype {@link TensorView} refuses (I64, F8_E4M3, ...). */
  dtype: string;
  shape: number[];
  /** Absolute byte range in the file. */
  begin: number;
  end: number;
}

/** A malformed, truncated or unsupported safetensors file or index; names file and tensor. */
export class SafetensorsError extends Error {
  override name = "SafetensorsError";
}

const ITEM_SIZE: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E5M2: 1, F8_E4M3: 1, I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4, I64: 8, U64: 8, F64: 8,
};
const SUPPORTED: ReadonlySet<string> = new Set<DType>(["F32", "F16", "BF16", "F8_E4M3"]);
/** The reference implementation refuses headers over 100 MB. */
const MAX_HEADER = 100_000_000;

interface ByteSource {
  size: number;
  read(begin: number, end: number): Uint8Array;
  close(): void;
}

/** Bun maps at most 4 GiB at once; bigger files are mapped one tensor at a time. */
const MAX_MAP = 2 ** 32;

function openSource(path: string): ByteSource {
  let fd: number;
  try {
    fd = openSync(path, "r");
  } catch (e) {
    throw new SafetensorsError(`${path}: cannot open: ${(e as Error).message}`);
  }
  const size = fstatSync(fd).size;
  // MAP_PRIVATE: a stray write into a view can never reach the model file.
  const map = (offset: number, len: number) => Bun.mmap(path, { shared: false, offset, size: len });
  try {
    if (size >= 8 && size <= MAX_MAP) {
      let whole: Uint8Array | null = map(0, size);
      closeSync(fd);
      return { size, read: (b, e) => whole!.subarray(b, e), close: () => void (whole = null) };
    }
    if (size > MAX_MAP) {
      map(0, 8); // probe: throws when we may not map this file
      closeSync(fd);
      return { size, read: (b, e) => (e > b ? map(b, e - b) : new Uint8Array(0)), close() {} };
    }
  } catch {
    // not writable by us (see file comment): positioned reads below
  }
  return {
    size,
    read(b, e) {
      const out = new Uint8Array(e - b);
      for (let done = 0; done < out.length; ) {
        const n = readSync(fd, out, done, out.length - done, b + done);
        if (n <= 0) throw new SafetensorsError(`${path}: file shrank while reading`);
        done += n;
      }
      return out;
    },
    close: () => closeSync(fd),
  };
}

/** One open safetensors file. Views from {@link get} stay valid while referenced. */
export class SafetensorsFile {
  private constructor(
    readonly path: string,
    private source: ByteSource | null,
    /** Header entries in data-offset order. */
    readonly infos: ReadonlyMap<string, TensorInfo>,
    readonly metadata: Record<string, string>,
  ) {}

  /** Opens and validates `path` (header only; tensor bytes are not read). */
  static open(path: string): SafetensorsFile {
    const src = openSource(path);
    try {
      const { infos, metadata } = parseHeader(path, src);
      return new SafetensorsFile(path, src, infos, metadata);
    } catch (e) {
      src.close();
      throw e;
    }
  }

  /** Tensor names in data-offset order (sequential reads of the mapping). */
  names(): string[] {
    return [...this.infos.keys()];
  }

  /** The tensor `name`, as a view of the file. */
  get(name: string): TensorView {
    const info = this.infos.get(name);
    if (!info) throw new SafetensorsError(`${this.path}: no tensor ${JSON.stringify(name)}`);
    if (!SUPPORTED.has(info.dtype)) {
      throw new SafetensorsError(`${this.path}: tensor ${name} has dtype ${info.dtype}; supported: F32, F16, BF16, F8_E4M3`);
    }
    if (!this.source) throw new SafetensorsError(`${this.path}: file is closed`);
    try {
      return { name, dtype: info.dtype as DType, shape: info.shape, data: this.source.read(info.begin, info.end) };
    } catch (e) {
      throw new SafetensorsError(`${this.path}: tensor ${name}: cannot read it: ${(e as Error).message}`);
    }
  }

  /** Drops the mapping (views already handed out keep their pages alive until collected). */
  close(): void {
    this.source?.close();
    this.source = null;
  }
}

function parseHeader(path: string, src: ByteSource) {
  if (src.size < 8) throw new SafetensorsError(`${path}: truncated: ${src.size} bytes, no header length`);
  const lenBytes = src.read(0, 8);
  const n = Number(new DataView(lenBytes.buffer, lenBytes.byteOffset, 8).getBigUint64(0, true));
  if (n > src.size - 8) {
    throw new SafetensorsError(`${path}: header length ${n} runs past the end of the file (${src.size} bytes)`);
  }
  if (n > MAX_HEADER) throw new SafetensorsError(`${path}: header length ${n} exceeds ${MAX_HEADER}`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(src.read(8, 8 + n)));
  } catch (e) {
    throw new SafetensorsError(`${path}: header is not valid JSON: ${(e as Error).message}`);
  }
  if (header === null || typeof header !== "object" || Array.isArray(header)) {
    throw new SafetensorsError(`${path}: header must be a JSON object`);
  }
  const dataStart = 8 + n;
  const dataLen = src.size - dataStart;
  const metadata: Record<string, string> = {};
  const list: TensorInfo[] = [];
  for (const [name, raw] of Object.entries(header as Record<string, unknown>)) {
    if (name === "__metadata__") {
      Object.assign(metadata, raw ?? {});
      continue;
    }
    const bad = (why: string) => new SafetensorsError(`${path}: tensor ${name}: ${why}`);
    const entry = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
    const itemSize = ITEM_SIZE[String(entry?.dtype)];
    if (!entry || itemSize === undefined) throw bad(`unknown dtype ${JSON.stringify(entry?.dtype)}`);
    const shape = entry.shape;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw bad(`bad shape ${JSON.stringify(shape)}`);
    }
    const offs = entry.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw bad(`bad data_offsets ${JSON.stringify(offs)}`);
    }
    const [begin, end] = offs as [number, number];
    if (begin > end || end > dataLen) {
      throw bad(`data_offsets [${begin}, ${end}] out of range (data buffer is ${dataLen} bytes; file truncated?)`);
    }
    const want = shape.reduce((a: number, d: number) => a * d, 1) * itemSize;
    if (end - begin !== want) {
      throw bad(`${end - begin} bytes at data_offsets but ${entry.dtype} ${JSON.stringify(shape)} needs ${want}`);
    }
    list.push({ name, dtype: entry.dtype as string, shape, begin: dataStart + begin, end: dataStart + end });
  }
  // Like the reference reader: tensors tile the data buffer, no gaps, no overlaps, no tail.
  list.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let at = dataStart;
  for (const t of list) {
    if (t.begin !== at) {
      throw new SafetensorsError(`${path}: tensor ${t.name}: data_offsets ${t.begin < at ? "overlap" : "leave a gap before"} it`);
    }
    at = t.end;
  }
  if (at !== src.size) throw new SafetensorsError(`${path}: ${src.size - at} bytes after the last tensor`);
  return { infos: new Map(list.map((t) => [t.name, t])), metadata };
}

/** Every tensor of a model directory, across however many files hold them. */
export interface SafetensorsSet {
  /** Tensor name -> the file that holds it. */
  readonly tensors: ReadonlyMap<string, SafetensorsFile>;
  readonly files: readonly SafetensorsFile[];
  close(): void;
}

/**
 * Opens a model directory's weights: `model.safetensors.index.json` (each shard opened once),
 * else `model.safetensors`, else every `*.safetensors` but Mistral's `consolidated*` copies.
 * @throws SafetensorsError for a bad index, a shard name escaping `dir`, a tensor in two files.
 */
export function openSafetensorsDir(dir: string): SafetensorsSet {
  const indexPath = join(dir, "model.safetensors.index.json");
  let paths: string[];
  let weightMap: Record<string, string> = {};
  const shardPaths = new Map<string, string>();
  if (existsSync(indexPath)) {
    weightMap = readWeightMap(indexPath);
    for (const shard of new Set(Object.values(weightMap))) shardPaths.set(shard, shardPath(dir, indexPath, shard));
    paths = [...new Set(shardPaths.values())];
  } else if (existsSync(join(dir, "model.safetensors"))) {
    paths = [join(dir, "model.safetensors")];
  } else {
    paths = readdirSync(dir)
      .filter((f) => f.endsWith(".safetensors") && !f.startsWith("consolidated"))
      .sort()
      .map((f) => join(dir, f));
  }
  if (paths.length === 0) {
    const why = "(consolidated*.safetensors is Mistral's own layout, not read)";
    throw new SafetensorsError(`${dir}: no model.safetensors, model.safetensors.index.json or other *.safetensors ${why}`);
  }

  const files: SafetensorsFile[] = [];
  const tensors = new Map<string, SafetensorsFile>();
  const close = () => files.forEach((f) => f.close());
  try {
    for (const p of paths) {
      const file = SafetensorsFile.open(p);
      files.push(file);
      for (const name of file.names()) {
        const other = tensors.get(name);
        if (other) throw new SafetensorsError(`tensor ${name} is in both ${other.path} and ${p}`);
        tensors.set(name, file);
      }
    }
    for (const [name, shard] of Object.entries(weightMap)) {
      if (tensors.get(name)?.path !== shardPaths.get(shard)) {
        throw new SafetensorsError(`${indexPath}: weight_map puts tensor ${name} in ${shard}, which does not hold it`);
      }
    }
  } catch (e) {
    close();
    throw e;
  }
  return { tensors, files, close };
}

function readWeightMap(indexPath: string): Record<string, string> {
  let index: { weight_map?: unknown };
  try {
    index = JSON.parse(readFileSync(indexPath, "utf8"));
  } catch (e) {
    throw new SafetensorsError(`${indexPath}: not valid JSON: ${(e as Error).message}`);
  }
  const map = index?.weight_map;
  if (!map || typeof map !== "object" || Array.isArray(map) || !Object.values(map).every((v) => typeof v === "string")) {
    throw new SafetensorsError(`${indexPath}: weight_map must map tensor names to shard file names`);
  }
  return map as Record<string, string>;
}

/** Resolves a shard name from the index; it must name a file inside the model directory. */
function shardPath(dir: string, indexPath: string, shard: string): string {
  const escape = (why: string) =>
    new SafetensorsError(`${indexPath}: shard ${JSON.stringify(shard)} ${why}; shards must stay inside ${dir}`);
  if (shard === "" || isAbsolute(shard) || shard.includes("\0")) throw escape("is not a relative file name");
  if (shard.split(/[\\/]/).includes("..")) throw escape("climbs out with ..");
  const full = resolve(dir, shard);
  if (!existsSync(full)) throw new SafetensorsError(`${indexPath}: shard ${shard} does not exist in ${dir}`);
  if (realPathInside(dir, full) === null) throw escape(`resolves to ${realpathSync(full)} (a link out)`);
  return full;
}
