// Bun embeds `import x from "file.proto" with { type: "text" }` as a string (in compiled binaries too).
declare module "*.proto" {
  const text: string;
  export default text;
}
