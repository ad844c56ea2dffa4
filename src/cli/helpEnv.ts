/** `fastgen --help-env`: the FASTGEN_* variables libfastgen reads (its knob registry), then the TypeScript side's (src/envVars.ts). */
import { libraryKnobs, type LibraryKnob } from "../native";
import { formatEnvVars } from "../envVars";

/** The registry as a text table: name, type, default, meaning, and the value set here if any. */
export function formatKnobs(knobs: LibraryKnob[]): string {
  const width = Math.max(...knobs.map((k) => k.name.length));
  const lines = knobs.map((k) => {
    const dflt = k.default === "" ? "unset" : k.default;
    const set = k.value === null ? "" : ` [set: ${JSON.stringify(k.value)}]`;
    return `  ${k.name.padEnd(width)}  ${k.type} (default ${dflt}): ${k.meaning}${set}`;
  });
  return ["Environment variables of libfastgen (read once, at first use):", ...lines].join("\n");
}

export function helpEnvText(): string {
  return `${formatKnobs(libraryKnobs())}\n\n${formatEnvVars()}`;
}
