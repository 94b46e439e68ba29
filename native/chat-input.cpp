#include "chat-input.h"

#include "json-schema.h"
#include "json.h"

#include <exception>

namespace {

// Reads fields of one JS object, recording the first problem with the field's path.
struct field_reader {
    chat_input_error & err;

    bool fail(const char * code, const std::string & message) {
        if (!err.code) {
            err.code    = code;
            err.message = message;
        }
        return false;
    }

    bool bad_type(const std::string & path, const char * expected) {
        return fail("invalid_parameter", path + " must be " + expected);
    }

    // Optional string: absent (undefined) keeps `out`; null counts as absent where `null_ok`.
    bool opt_string(const Napi::Object & o, const char * key, const std::string & path, std::string & out, bool null_ok = true) {
        Napi::Value v = o.Get(key);
        if (v.IsUndefined() || (null_ok && v.IsNull())) return true;
        if (!v.IsString()) return bad_type(path, "a string");
        out = v.As<Napi::String>().Utf8Value();
        return true;
    }

    bool req_string(const Napi::Object & o, const char * key, const std::string & path, std::string & out) {
        Napi::Value v = o.Get(key);
        if (!v.IsString()) return bad_type(path, "a string");
        out = v.As<Napi::String>().Utf8Value();
        return true;
    }

    bool opt_bool(const Napi::Object & o, const char * key, const std::string & path, bool & out) {
        Napi::Value v = o.Get(key);
        if (v.IsUndefined() || v.IsNull()) return true;
        if (!v.IsBoolean()) return bad_type(path, "a boolean");
        out = v.As<Napi::Boolean>().Value();
        return true;
    }

    // Optional array: returns true with `present` false when absent.
    bool opt_array(const Napi::Object & o, const char * key, const std::string & path, Napi::Array & out, bool & present) {
        Napi::Value v = o.Get(key);
        present = false;
        if (v.IsUndefined() || v.IsNull()) return true;
        if (!v.IsArray()) return bad_type(path, "an array");
        out     = v.As<Napi::Array>();
        present = true;
        return true;
    }

    bool element_object(const Napi::Array & a, uint32_t i, const std::string & path, Napi::Object & out) {
        Napi::Value v = a.Get(i);
        if (!v.IsObject() || v.IsArray()) return bad_type(path, "an object");
        out = v.As<Napi::Object>();
        return true;
    }

    // Optional string that must be one of `choices`; returns the index in `out`.
    bool opt_choice(const Napi::Object & o, const char * key, const std::string & path,
                    std::initializer_list<const char *> choices, int & out) {
        std::string s;
        bool        set = false;
        Napi::Value v   = o.Get(key);
        if (v.IsUndefined() || v.IsNull()) return true;
        if (v.IsString()) {
            s = v.As<Napi::String>().Utf8Value();
            int i = 0;
            for (const char * c : choices) {
                if (s == c) {
                    out = i;
                    set = true;
                    break;
                }
                i++;
            }
        }
        if (set) return true;
        std::string list;
        for (const char * c : choices) list += (list.empty() ? "'" : ", '") + std::string(c) + "'";
        return fail("invalid_parameter", path + " must be one of " + list);
    }
};

bool read_tool_call(field_reader & r, const Napi::Object & o, const std::string & path, common_chat_tool_call & tc) {
    return r.req_string(o, "name", path + ".name", tc.name) &&
           r.req_string(o, "arguments", path + ".arguments", tc.arguments) &&
           r.opt_string(o, "id", path + ".id", tc.id);
}

bool read_message(field_reader & r, const Napi::Object & o, const std::string & path, common_chat_msg & msg) {
    if (!r.req_string(o, "role", path + ".role", msg.role)) return false;
    Napi::Value content = o.Get("content");
    if (content.IsString()) {
        msg.content = content.As<Napi::String>().Utf8Value();
    } else if (content.IsArray()) {
        Napi::Array parts = content.As<Napi::Array>();
        for (uint32_t i = 0; i < parts.Length(); i++) {
            const std::string part_path = path + ".content[" + std::to_string(i) + "]";
            Napi::Object      part;
            std::string       type;
            common_chat_msg_content_part p;
            if (!r.element_object(parts, i, part_path, part) || !r.req_string(part, "type", part_path + ".type", type)) return false;
            if (type != "text") return r.fail("invalid_parameter", part_path + ".type must be 'text'");
            if (!r.req_string(part, "text", part_path + ".text", p.text)) return false;
            p.type = "text";
            msg.content_parts.push_back(std::move(p));
        }
    } else if (!content.IsUndefined() && !content.IsNull()) {
        return r.bad_type(path + ".content", "a string, an array of text parts or null");
    }
    Napi::Array calls;
    bool        has_calls = false;
    if (!r.opt_array(o, "toolCalls", path + ".toolCalls", calls, has_calls)) return false;
    for (uint32_t i = 0; has_calls && i < calls.Length(); i++) {
        const std::string     call_path = path + ".toolCalls[" + std::to_string(i) + "]";
        Napi::Object          call;
        common_chat_tool_call tc;
        if (!r.element_object(calls, i, call_path, call) || !read_tool_call(r, call, call_path, tc)) return false;
        msg.tool_calls.push_back(std::move(tc));
    }
    return r.opt_string(o, "reasoningContent", path + ".reasoningContent", msg.reasoning_content) &&
           r.opt_string(o, "toolCallId", path + ".toolCallId", msg.tool_call_id) &&
           r.opt_string(o, "toolName", path + ".toolName", msg.tool_name);
}

bool read_tool(field_reader & r, const Napi::Object & o, const std::string & path, common_chat_tool & tool) {
    // a tool without parameters takes none, as the library (and llama-server) reads an absent schema
    tool.parameters = "{}";
    if (!r.req_string(o, "name", path + ".name", tool.name) ||
        !r.opt_string(o, "description", path + ".description", tool.description) ||
        !r.opt_string(o, "parameters", path + ".parameters", tool.parameters)) {
        return false;
    }
    if (tool.name.empty()) return r.fail("invalid_parameter", path + ".name must not be empty");
    std::string error;
    if (!chat_schema_check(tool.parameters, error)) return r.fail("invalid_json_schema", path + ".parameters: " + error);
    return true;
}

} // namespace

bool chat_schema_check(const std::string & text, std::string & error) {
    try {
        common_chat_schema_from_json(common_json::parse(text));
        return true;
    } catch (const std::exception & e) {
        error = e.what();
    } catch (...) {
        error = "not a JSON schema";
    }
    return false;
}

bool chat_input_read(const Napi::Object & o, common_chat_templates_inputs & in, chat_input_error & err) {
    field_reader r{err};

    Napi::Value messages = o.Get("messages");
    if (!messages.IsArray()) return r.bad_type("messages", "an array");
    Napi::Array list = messages.As<Napi::Array>();
    in.messages.reserve(list.Length());
    for (uint32_t i = 0; i < list.Length(); i++) {
        const std::string path = "messages[" + std::to_string(i) + "]";
        Napi::Object      m;
        common_chat_msg   msg;
        if (!r.element_object(list, i, path, m) || !read_message(r, m, path, msg)) return false;
        in.messages.push_back(std::move(msg));
    }

    Napi::Array tools;
    bool        has_tools = false;
    if (!r.opt_array(o, "tools", "tools", tools, has_tools)) return false;
    for (uint32_t i = 0; has_tools && i < tools.Length(); i++) {
        const std::string path = "tools[" + std::to_string(i) + "]";
        Napi::Object      t;
        common_chat_tool  tool;
        if (!r.element_object(tools, i, path, t) || !read_tool(r, t, path, tool)) return false;
        in.tools.push_back(std::move(tool));
    }

    int tool_choice = 0;
    if (!r.opt_choice(o, "toolChoice", "toolChoice", {"auto", "required", "none"}, tool_choice)) return false;
    in.tool_choice = tool_choice == 1 ? COMMON_CHAT_TOOL_CHOICE_REQUIRED
                   : tool_choice == 2 ? COMMON_CHAT_TOOL_CHOICE_NONE
                                      : COMMON_CHAT_TOOL_CHOICE_AUTO;

    in.parallel_tool_calls = false;
    if (!r.opt_bool(o, "parallelToolCalls", "parallelToolCalls", in.parallel_tool_calls)) return false;

    // A user's GBNF grammar is no input here: the library's render never puts it in the result (llama-server
    // passes it to the sampler beside the chat output), so it goes to setSampler as a user grammar.
    if (!r.opt_string(o, "jsonSchema", "jsonSchema", in.json_schema)) return false;
    std::string error;
    if (!in.json_schema.empty() && !chat_schema_check(in.json_schema, error)) {
        return r.fail("invalid_json_schema", "jsonSchema: " + error);
    }

    // hearth's default is llama-server's: reasoning goes to reasoning_content where the template has it
    int reasoning = 1;
    if (!r.opt_choice(o, "reasoningFormat", "reasoningFormat", {"none", "auto", "deepseek", "deepseek-legacy"}, reasoning)) return false;
    in.reasoning_format = reasoning == 0 ? COMMON_REASONING_FORMAT_NONE
                        : reasoning == 2 ? COMMON_REASONING_FORMAT_DEEPSEEK
                        : reasoning == 3 ? COMMON_REASONING_FORMAT_DEEPSEEK_LEGACY
                                         : COMMON_REASONING_FORMAT_AUTO;

    in.enable_thinking       = true;
    in.add_generation_prompt = true;
    if (!r.opt_bool(o, "enableThinking", "enableThinking", in.enable_thinking) ||
        !r.opt_bool(o, "addGenerationPrompt", "addGenerationPrompt", in.add_generation_prompt)) {
        return false;
    }

    int cont = 0;
    if (!r.opt_choice(o, "continueFinalMessage", "continueFinalMessage", {"none", "auto", "content", "reasoning"}, cont)) return false;
    in.continue_final_message = cont == 1 ? COMMON_CHAT_CONTINUATION_AUTO
                              : cont == 2 ? COMMON_CHAT_CONTINUATION_CONTENT
                              : cont == 3 ? COMMON_CHAT_CONTINUATION_REASONING
                                          : COMMON_CHAT_CONTINUATION_NONE;
    if (in.continue_final_message != COMMON_CHAT_CONTINUATION_NONE) {
        // the same preconditions llama-server checks before continuing a message
        if (in.messages.empty() || in.messages.back().role != "assistant") {
            return r.fail("invalid_parameter", "continueFinalMessage needs the last message to be the assistant's");
        }
        if (!in.messages.back().tool_calls.empty()) {
            return r.fail("invalid_parameter", "continueFinalMessage cannot continue an assistant message with tool calls");
        }
        if (o.Get("addGenerationPrompt").IsBoolean() && in.add_generation_prompt) {
            return r.fail("invalid_parameter", "addGenerationPrompt and continueFinalMessage cannot both be set");
        }
        in.add_generation_prompt = false;
    }

    Napi::Value kwargs = o.Get("chatTemplateKwargs");
    if (!kwargs.IsUndefined() && !kwargs.IsNull()) {
        if (!kwargs.IsObject() || kwargs.IsArray()) return r.bad_type("chatTemplateKwargs", "an object");
        Napi::Object kw   = kwargs.As<Napi::Object>();
        Napi::Array  keys = kw.GetPropertyNames();
        for (uint32_t i = 0; i < keys.Length(); i++) {
            const std::string key  = keys.Get(i).ToString().Utf8Value();
            const std::string path = "chatTemplateKwargs." + key;
            std::string       text;
            if (!r.req_string(kw, key.c_str(), path, text)) return false;
            if (common_json::parse_no_throw(text).is_discarded()) {
                return r.fail("invalid_parameter", path + " must be JSON text (e.g. '\"high\"' or 'true')");
            }
            in.chat_template_kwargs[key] = std::move(text);
        }
    }

    return true;
}

bool chat_sampler_read(const Napi::Object & o, sampler_chat_params & out, std::string & error) {
    chat_input_error err;
    field_reader     r{err};
    auto             fail = [&]() {
        error = err.message;
        return false;
    };
    if (!r.opt_string(o, "grammar", "chat.grammar", out.grammar) || !r.opt_bool(o, "grammarLazy", "chat.grammarLazy", out.grammar_lazy) ||
        !r.opt_string(o, "generationPrompt", "chat.generationPrompt", out.generation_prompt) ||
        !r.opt_string(o, "thinkingStartTag", "chat.thinkingStartTag", out.thinking_start_tag)) {
        return fail();
    }
    auto read_strings = [&](const char * key, std::vector<std::string> & list) {
        Napi::Array a;
        bool        present = false;
        const std::string path = std::string("chat.") + key;
        if (!r.opt_array(o, key, path, a, present)) return false;
        for (uint32_t i = 0; present && i < a.Length(); i++) {
            Napi::Value v = a.Get(i);
            if (!v.IsString()) return r.bad_type(path + "[" + std::to_string(i) + "]", "a string");
            list.push_back(v.As<Napi::String>().Utf8Value());
        }
        return true;
    };
    if (!read_strings("preservedTokens", out.preserved_tokens) || !read_strings("thinkingEndTags", out.thinking_end_tags)) return fail();
    Napi::Value prefill = o.Get("prefillTokens");
    if (!prefill.IsUndefined()) {
        if (!prefill.IsTypedArray() || prefill.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
            error = "chat.prefillTokens must be an Int32Array";
            return false;
        }
        Napi::Int32Array a = prefill.As<Napi::Int32Array>();
        out.prefill_tokens.assign(a.Data(), a.Data() + a.ElementLength());
        out.has_prefill = true;
    }
    Napi::Array triggers;
    bool        present = false;
    if (!r.opt_array(o, "grammarTriggers", "chat.grammarTriggers", triggers, present)) return fail();
    for (uint32_t i = 0; present && i < triggers.Length(); i++) {
        const std::string      path = "chat.grammarTriggers[" + std::to_string(i) + "]";
        Napi::Object           t;
        int                    type = 0;
        common_grammar_trigger trigger;
        if (!r.element_object(triggers, i, path, t) || !r.opt_choice(t, "type", path + ".type", {"word", "pattern", "patternFull", "token"}, type) ||
            !r.req_string(t, "value", path + ".value", trigger.value)) {
            return fail();
        }
        trigger.type = type == 1 ? COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN
                     : type == 2 ? COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL
                     : type == 3 ? COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN
                                 : COMMON_GRAMMAR_TRIGGER_TYPE_WORD;
        Napi::Value token = t.Get("token");
        trigger.token = token.IsNumber() ? token.As<Napi::Number>().Int32Value() : LLAMA_TOKEN_NULL;
        out.grammar_triggers.push_back(std::move(trigger));
    }
    return true;
}
