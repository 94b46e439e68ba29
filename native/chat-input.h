// The input of ChatTemplates.apply(): a plain JS object (NativeChatInput in lib/native.ts) copied into
// llama.cpp's common_chat_templates_inputs on the JS thread, so the render can run on a worker.
//
// Every field is checked for its type and every enumerated value for its range; a bad field is reported as
// {code, message} naming the field (in lib's camelCase) rather than thrown. The JSON texts the library will parse
// (tool parameter schemas, jsonSchema, chatTemplateKwargs values) are checked here with the library's own parser,
// so a bad one is `invalid_json_schema` / `invalid_parameter` for that field instead of a failure deep inside
// the render. Sizes and nesting depths are NOT bounded here: lib/ bounds them before calling (see DEVELOPERS.md).
#pragma once

#include <napi.h>

#include "chat.h"
#include "sampler.h"

#include <string>

struct chat_input_error {
    const char * code = nullptr; // an error code of lib/errors.ts
    std::string  message;
};

// JS thread. Fills `out` from `o`; returns false and fills `err` on the first bad field.
bool chat_input_read(const Napi::Object & o, common_chat_templates_inputs & out, chat_input_error & err);

// Any thread. Parses `text` as JSON and converts it to the library's schema form; returns false and fills
// `error` with the library's reason when it is not JSON or not a schema the library supports.
bool chat_schema_check(const std::string & text, std::string & error);

// JS thread. Reads NativeSamplerParams.chat (the grammar, grammarLazy, grammarTriggers, preservedTokens,
// generationPrompt, thinkingStartTag and thinkingEndTags of a ChatTemplates.apply() result); false with the
// field named in `error` when one has the wrong type.
bool chat_sampler_read(const Napi::Object & o, sampler_chat_params & out, std::string & error);
