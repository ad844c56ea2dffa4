/** The files Tokenizer.fromJSON (tokenizer.ts) builds from, already parsed; shared with the tokenizer pool. */
type Json = Record<string, unknown>;

export interface TokenizerFiles {
  tokenizer: Json;
  tokenizerConfig?: Json;
  generationConfig?: Json;
  /** chat_template.jinja, which newer transformers writes instead of a config key. */
  chatTemplateJinja?: string;
}
