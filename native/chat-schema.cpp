#include "chat-schema.h"

#include "common.h"

#include "json-schema-to-grammar.h"
#include "json.h"

#include <exception>
#include <string>

static Napi::Value json_schema_to_grammar_impl(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) {
        Napi::TypeError::New(env, "schema must be a string").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    const std::string text = info[0].As<Napi::String>().Utf8Value();
    std::string       grammar;
    try {
        grammar = json_schema_to_grammar(common_json::parse(text));
    } catch (const std::exception & e) {
        return throw_error(env, "invalid_json_schema", std::string("the JSON schema cannot be turned into a grammar: ") + e.what());
    } catch (...) {
        return throw_error(env, "invalid_json_schema", "the JSON schema cannot be turned into a grammar");
    }
    return Napi::String::New(env, grammar);
}

Napi::Value json_schema_to_grammar_export(const Napi::CallbackInfo & info) {
    return guard_js(info.Env(), [&] { return json_schema_to_grammar_impl(info); });
}
