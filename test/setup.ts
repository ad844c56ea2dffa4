// Preloaded by `bun test` (bunfig.toml): tests that do not name a backend run on the CPU
// reference even on a GPU machine (test/gpu names "cuda" explicitly).
process.env.FASTGEN_BACKEND ??= "cpu";
