// jsonSchemaToGrammar(schema: string) -> string: a JSON schema (as text) to a GBNF grammar through llama.cpp's
// converter (json_schema_to_grammar), the same one the chat layer uses for response formats and tool
// arguments. Always GBNF: the addon is built without llguidance. JS thread, synchronous (sub-millisecond for
// ordinary schemas; lib/ bounds size and depth first). Throws `invalid_json_schema` with the library's reason
// when the text is not JSON or the schema is outside what the converter supports.
#pragma once

#include <napi.h>

Napi::Value json_schema_to_grammar_export(const Napi::CallbackInfo & info);
