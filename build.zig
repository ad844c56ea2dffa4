// Builds zig-out/lib/libfastgen.so.
//   C++ (libfastgen/src/core, src/cpu, src/dist): zig's clang, libc++.
//   CUDA (libfastgen/src/cuda/*.cu): nvcc, one object per file, when nvcc is found
//     (-Dcuda=auto|on|off). cudart is linked statically; cuBLASLt and NCCL are dlopen'ed at run
//     time, so the .so loads on machines without a GPU or those libraries.
// Without CUDA, libfastgen/src/cuda/no_cuda.cpp provides the same entry points, each answering
// FG_ERR_UNSUPPORTED.
const std = @import("std");

const CudaMode = enum { auto, on, off };

pub fn build(b: *std.Build) !void {
    const target = b.standardTargetOptions(.{});
    const optimize = b.standardOptimizeOption(.{});
    const cuda_mode = b.option(CudaMode, "cuda", "compile CUDA kernels with nvcc (auto|on|off)") orelse .auto;
    const cuda_arch = b.option([]const u8, "cuda-arch", "nvcc -gencode list, comma separated") orelse
        "arch=compute_90a,code=sm_90a,arch=compute_80,code=sm_80";

    const lib = b.addSharedLibrary(.{ .name = "fastgen", .target = target, .optimize = optimize });
    lib.addIncludePath(.{ .path = "libfastgen/include" });
    lib.addIncludePath(.{ .path = "libfastgen/src" });
    lib.linkLibCpp();
    lib.linkSystemLibrary("dl");
    lib.linkSystemLibrary("pthread");

    const nvcc: ?[]const u8 = switch (cuda_mode) {
        .off => null,
        .auto => findNvcc(b),
        .on => findNvcc(b) orelse {
            std.debug.print("-Dcuda=on but nvcc was not found\n", .{});
            return error.NvccNotFound;
        },
    };

    var cxx_flags = std.ArrayList([]const u8).init(b.allocator);
    try cxx_flags.appendSlice(&.{ "-std=c++17", "-fPIC", "-Wall", "-Wno-unused-function" });
    if (optimize != .Debug) try cxx_flags.appendSlice(&.{ "-O3", "-march=x86_64_v2" });
    if (nvcc != null) try cxx_flags.append("-DFG_WITH_CUDA=1");

    for ([_][]const u8{ "libfastgen/src/core", "libfastgen/src/cpu", "libfastgen/src/dist" }) |dir| {
        lib.addCSourceFiles(try listFiles(b, dir, ".cpp"), cxx_flags.items);
    }

    if (nvcc) |nvcc_path| {
        const cuda_root = std.fs.path.dirname(std.fs.path.dirname(nvcc_path).?).?;
        var gencode = std.ArrayList([]const u8).init(b.allocator);
        var it = std.mem.splitScalar(u8, cuda_arch, ',');
        while (it.next()) |arch| {
            const code = it.next() orelse return error.BadCudaArch;
            try gencode.append(b.fmt("-gencode={s},{s}", .{ arch, code }));
        }
        // nvcc steps are cached by their inputs: name every header a .cu may include, so that
        // editing one recompiles the objects (zig does not read nvcc's include graph).
        var headers = std.ArrayList([]const u8).init(b.allocator);
        try headers.append("libfastgen/include/fastgen.h");
        try headers.append("libfastgen/src/core/knobs.h");
        try headers.append("libfastgen/src/core/row_drafts.h");
        try headers.append("libfastgen/src/core/tensor_kinds.h");
        try headers.appendSlice(try listFiles(b, "libfastgen/src/cuda", ".cuh"));
        try headers.appendSlice(try listFiles(b, "libfastgen/src/cuda", ".h"));
        for (try listFiles(b, "libfastgen/src/cuda", ".cu")) |cu| {
            const cmd = b.addSystemCommand(&.{ nvcc_path, "-c", "-O3", "-std=c++17", "-Xcompiler", "-fPIC", "--expt-relaxed-constexpr", "-Ilibfastgen/include", "-Ilibfastgen/src" });
            cmd.addArgs(gencode.items);
            cmd.addArg("-o");
            const obj = cmd.addOutputFileArg(b.fmt("{s}.o", .{std.fs.path.stem(cu)}));
            cmd.addFileArg(.{ .path = cu });
            cmd.extra_file_dependencies = headers.items;
            lib.addObjectFile(obj);
        }
        lib.addObjectFile(.{ .path = b.fmt("{s}/lib64/libcudart_static.a", .{cuda_root}) });
        lib.linkSystemLibrary("rt");
    } else {
        lib.addCSourceFiles(&.{"libfastgen/src/cuda/no_cuda.cpp"}, cxx_flags.items);
    }
    b.installArtifact(lib);
}

// nvcc of a CUDA toolkit: $CUDA_HOME, then /usr/local/cuda, then PATH (where it may be a
// wrapper script outside the toolkit, so the first two are preferred for finding cudart).
fn findNvcc(b: *std.Build) ?[]const u8 {
    const roots = [_]?[]const u8{ std.os.getenv("CUDA_HOME"), "/usr/local/cuda" };
    for (roots) |root| {
        const r = root orelse continue;
        const p = b.fmt("{s}/bin/nvcc", .{r});
        std.fs.accessAbsolute(p, .{}) catch continue;
        return p;
    }
    return b.findProgram(&.{"nvcc"}, &.{}) catch null;
}

// Sorted list of files under `dir` (one level) ending in `ext`, except no_cuda.cpp.
fn listFiles(b: *std.Build, dir: []const u8, ext: []const u8) ![]const []const u8 {
    var list = std.ArrayList([]const u8).init(b.allocator);
    var d = std.fs.cwd().openIterableDir(dir, .{}) catch return list.items;
    defer d.close();
    var it = d.iterate();
    while (try it.next()) |entry| {
        if (entry.kind != .file or !std.mem.endsWith(u8, entry.name, ext)) continue;
        if (std.mem.eql(u8, entry.name, "no_cuda.cpp")) continue;
        try list.append(b.fmt("{s}/{s}", .{ dir, entry.name }));
    }
    std.mem.sort([]const u8, list.items, {}, struct {
        fn lt(_: void, a: []const u8, c: []const u8) bool {
            return std.mem.lessThan(u8, a, c);
        }
    }.lt);
    return list.items;
}
