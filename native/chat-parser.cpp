#include "chat-parser.h"

#include "addon.h"
#include "common.h"

#include <exception>
#include <vector>

Napi::Function ChatParserSpec::define(Napi::Env env) {
    return DefineClass(env, "ChatParserSpec", {
        InstanceMethod<&ChatParserSpec::guarded<&ChatParserSpec::create_parser>>("createParser"),
    });
}

Napi::Object ChatParserSpec::wrap(Napi::Env env, std::shared_ptr<const chat_parser_spec> spec) {
    auto * holder = new std::shared_ptr<const chat_parser_spec>(std::move(spec));
    Napi::External<std::shared_ptr<const chat_parser_spec>> ext = Napi::External<std::shared_ptr<const chat_parser_spec>>::New(
        env, holder, [](Napi::Env, std::shared_ptr<const chat_parser_spec> * p) { delete p; });
    return addon_data(env)->chat_parser_spec_ctor.New({ext});
}

ChatParserSpec::ChatParserSpec(const Napi::CallbackInfo & info) : Napi::ObjectWrap<ChatParserSpec>(info) {
    if (!info[0].IsExternal()) {
        Napi::TypeError::New(info.Env(), "ChatParserSpec objects come from ChatTemplates.apply()").ThrowAsJavaScriptException();
        return;
    }
    spec = *info[0].As<Napi::External<std::shared_ptr<const chat_parser_spec>>>().Data();
}

Napi::Value ChatParserSpec::create_parser(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    bool echo = info[0].IsObject() && opt_bool(info[0].As<Napi::Object>(), "echo", false);
    Napi::Object parser = addon_data(env)->chat_parser_ctor.New({info.This()});
    if (env.IsExceptionPending()) return env.Undefined();
    ChatParser * p = ChatParser::Unwrap(parser);
    if (spec->is_continuation && !echo) {
        // the message starts as the prefilled part, so diffs carry only what the model adds (llama-server's
        // task_result_state does the same)
        try {
            p->msg = common_chat_peg_parse(spec->arena, "", true, spec->params);
        } catch (const std::exception &) {
            p->msg = {};
        }
    }
    return parser;
}

Napi::Function ChatParser::define(Napi::Env env) {
    return DefineClass(env, "ChatParser", {
        InstanceMethod<&ChatParser::guarded<&ChatParser::push>>("push"),
        InstanceMethod<&ChatParser::guarded<&ChatParser::message>>("message"),
    });
}

ChatParser::ChatParser(const Napi::CallbackInfo & info) : Napi::ObjectWrap<ChatParser>(info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject() || !info[0].As<Napi::Object>().InstanceOf(addon_data(env)->chat_parser_spec_ctor.Value())) {
        Napi::TypeError::New(env, "ChatParser objects come from ChatParserSpec.createParser()").ThrowAsJavaScriptException();
        return;
    }
    spec = ChatParserSpec::Unwrap(info[0].As<Napi::Object>())->spec;
}

// Parses `input` with the spec's parser; false with the library's reason when it does not match.
static bool parse_output(const chat_parser_spec & spec, const std::string & input, bool partial, common_chat_msg & out, std::string & error) {
    try {
        out = common_chat_peg_parse(spec.arena, input, partial, spec.params);
        return true;
    } catch (const std::exception & e) {
        error = e.what();
    } catch (...) {
        error = "the chat parser failed";
    }
    return false;
}

static bool diff_messages(const common_chat_msg & prev, const common_chat_msg & next, std::vector<common_chat_msg_diff> & diffs, std::string & error) {
    try {
        diffs = common_chat_msg_diff::compute_diffs(prev, next);
        return true;
    } catch (const std::exception & e) {
        error = e.what();
    }
    return false;
}

static Napi::Object tool_call_to_js(Napi::Env env, const common_chat_tool_call & tc) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("id", tc.id);
    o.Set("name", tc.name);
    o.Set("arguments", tc.arguments);
    return o;
}

static Napi::Object diff_to_js(Napi::Env env, const common_chat_msg_diff & d) {
    Napi::Object o = Napi::Object::New(env);
    o.Set("reasoningDelta", d.reasoning_content_delta);
    o.Set("contentDelta", d.content_delta);
    o.Set("toolCallIndex", d.tool_call_index == std::string::npos ? -1.0 : (double) d.tool_call_index);
    o.Set("toolCallId", d.tool_call_delta.id);
    o.Set("toolCallName", d.tool_call_delta.name);
    o.Set("toolCallArgumentsDelta", d.tool_call_delta.arguments);
    return o;
}

Napi::Value ChatParser::push(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) {
        Napi::TypeError::New(env, "text must be a string").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    if (finished) return throw_error(env, "chat_parser_finished", "the parser already had its final push");
    const bool        is_final = info[1].ToBoolean();
    const std::string added    = info[0].As<Napi::String>().Utf8Value();
    text += added;
    for (char c : added) {
        if (c == '[' || c == '{') {
            if (++depth > chat_parser_max_depth) verbatim = true;
        } else if ((c == ']' || c == '}') && depth > 0) {
            depth--;
        }
    }

    std::vector<common_chat_msg_diff> diffs;
    std::string                       error;
    common_chat_msg                   next;
    if (verbatim) {
        // parsing this text could overflow the stack: pass it on as it is
        finished = is_final;
        if (is_final) error = "the output nests brackets deeper than " + std::to_string(chat_parser_max_depth) + " levels; the rest of it was passed through as content";
        if (!added.empty()) {
            common_chat_msg_diff d;
            d.content_delta = added;
            diffs.push_back(std::move(d));
            msg.role = "assistant";
            msg.content += added;
        }
    } else if (!is_final) {
        // text the parser cannot place yet (or that would take back streamed output) waits for more
        std::string ignored;
        if (parse_output(*spec, text, true, next, ignored) && !next.empty() && diff_messages(msg, next, diffs, ignored)) {
            msg = std::move(next);
        }
    } else {
        finished = true;
        const bool strict = parse_output(*spec, text, false, next, error);
        if (!strict) {
            std::string ignored;
            if (!parse_output(*spec, text, true, next, ignored)) next = msg;
            if (next.empty() && !text.empty()) {
                next         = {};
                next.role    = "assistant";
                next.content = text;
            }
        }
        std::string diff_error;
        if (diff_messages(msg, next, diffs, diff_error)) {
            msg = std::move(next);
        } else if (strict) {
            // the strict parse disagrees with what was streamed: the message is the strict one, the stream
            // cannot be corrected, and the caller learns why
            diffs.clear();
            error = "the final parse differs from the streamed one: " + diff_error;
            msg   = std::move(next);
        } else {
            diffs.clear(); // the fallback keeps what was streamed
        }
    }

    Napi::Object out   = Napi::Object::New(env);
    Napi::Array  array = Napi::Array::New(env, diffs.size());
    for (size_t i = 0; i < diffs.size(); i++) array.Set((uint32_t) i, diff_to_js(env, diffs[i]));
    out.Set("diffs", array);
    out.Set("error", error);
    return out;
}

Napi::Value ChatParser::message(const Napi::CallbackInfo & info) {
    Napi::Env    env = info.Env();
    Napi::Object o   = Napi::Object::New(env);
    o.Set("content", msg.content);
    o.Set("reasoningContent", msg.reasoning_content);
    Napi::Array calls = Napi::Array::New(env, msg.tool_calls.size());
    for (size_t i = 0; i < msg.tool_calls.size(); i++) calls.Set((uint32_t) i, tool_call_to_js(env, msg.tool_calls[i]));
    o.Set("toolCalls", calls);
    return o;
}
