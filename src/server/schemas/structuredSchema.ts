/**
 * The fields that constrain the output (OpenAI's response_format, vLLM's structured_outputs and
 * guided_*) and the tool fields of chat (tools, tool_choice, parallel_tool_calls), with their
 * shapes. What needs more than a shape is checked by their readers: one constraint at most, a
 * schema's JSON text, a tool's name, a tool_choice naming a defined tool (structuredOutputs.ts,
 * tools/toolRequest.ts). Nested nulls are allowed where clients send them for "not given".
 */
import type { Static, TSchema } from "@sinclair/typebox";
import { Type as t } from "@sinclair/typebox";
import { anyObject, opt } from "./fields";

/** Most tools one request may define. */
export const MAX_TOOLS = 128;

/** `s` or null (errors read "a string or null"). */
const orNull = <T extends TSchema>(s: T) => t.Union([s, t.Null()]);

/** A JSON schema: an object, or its JSON text. */
const jsonSchema = (description = "a JSON schema (an object or its JSON text)") =>
  t.Union([t.String(), anyObject("a JSON schema")], { description });

/** vLLM's structured_outputs (and its older name guided_decoding): one key of json, regex, choice, grammar, json_object, structural_tag. */
const VllmConstraint = t.Object(
  {
    json: opt(orNull(jsonSchema())),
    regex: opt(orNull(t.String())),
    choice: opt(orNull(t.Array(t.String()))),
    grammar: opt(orNull(t.String())),
    json_object: opt(orNull(t.Boolean())),
    structural_tag: opt(orNull(jsonSchema("an XGrammar structural tag (an object or its JSON text)"))),
  },
  { additionalProperties: true, description: "One output constraint (vLLM's structured outputs)." },
);

/** The output-constraint fields of /v1/completions and /v1/chat/completions (at most one may be given). */
export const structuredProperties = {
  response_format: opt(
    t.Object(
      {
        type: t.String({ description: "text, json_object or json_schema" }),
        json_schema: opt(
          orNull(
            t.Object(
              {
                name: opt(t.String()),
                description: opt(t.String()),
                schema: opt(orNull(jsonSchema())),
                strict: opt(orNull(t.Boolean())),
              },
              { additionalProperties: true, description: "{name, schema, strict}" },
            ),
          ),
        ),
      },
      { additionalProperties: true, description: "OpenAI's output format: text, json_object or json_schema." },
    ),
  ),
  structured_outputs: opt(VllmConstraint),
  guided_decoding: opt(VllmConstraint),
  guided_json: opt(jsonSchema()),
  guided_regex: opt(t.String()),
  guided_choice: opt(t.Array(t.String(), { description: "The output is exactly one of these strings." })),
  guided_grammar: opt(t.String({ description: "An EBNF grammar (XGrammar's dialect)." })),
  guided_decoding_backend: opt(t.String({ description: "Accepted; XGrammar is the one backend." })),
  guided_whitespace_pattern: opt(t.String({ description: "Accepted; the JSON grammar is compact." })),
};

const StructuredObject = t.Object(structuredProperties);
/** The output-constraint fields of a validated body. */
export type StructuredFieldsBody = Static<typeof StructuredObject>;

/** One tool: a function (its type, name and parameters schema are checked by the reader, naming the field). */
const ToolSchema = t.Object(
  {
    type: t.String({ description: "function" }),
    function: opt(
      t.Object(
        {
          name: t.String({ description: "1-64 letters, digits, _ . or -" }),
          description: opt(orNull(t.String())),
          parameters: opt(orNull(anyObject("a JSON schema object"))),
          strict: opt(orNull(t.Boolean())),
        },
        { additionalProperties: true },
      ),
    ),
  },
  { additionalProperties: true },
);
export type ToolBody = Static<typeof ToolSchema>;

/** The tool fields of /v1/chat/completions. */
export const toolProperties = {
  tools: opt(t.Array(ToolSchema, { maxItems: MAX_TOOLS, description: `Functions the model may call (at most ${MAX_TOOLS}).` })),
  tool_choice: opt(
    t.Union([t.String(), anyObject("a named function")], {
      description: '"auto", "none", "required" or {"type": "function", "function": {"name": ...}}',
    }),
  ),
  parallel_tool_calls: opt(t.Boolean()),
  functions: opt(t.Unknown({ description: "The pre-tools API: ignored." })),
};

const ToolObject = t.Object(toolProperties);
/** The tool fields of a validated body. */
export type ToolFieldsBody = Static<typeof ToolObject>;
