#include "chat-templates.h"

#include "addon.h"
#include "chat-input.h"
#include "chat-parser.h"
#include "common.h"
#include "model.h"

#include "jinja/lexer.h"
#include "jinja/parser.h"
#include "jinja/runtime.h"

#include <exception>
#include <map>
#include <string>

// "supports_tool_calls" -> "supportsToolCalls": capability names as lib/ spells them, for any the library adds
static std::string camel_case(const std::string & snake) {
    std::string out;
    bool        upper = false;
    for (char c : snake) {
        if (c == '_') {
            upper = true;
            continue;
        }
        out += upper ? (char) toupper((unsigned char) c) : c;
        upper = false;
    }
    return out;
}

// Loads the templates and probes them off the JS thread.
class create_templates_worker : public Napi::AsyncWorker {
  public:
    create_templates_worker(Napi::Env env, std::shared_ptr<model_handle> model, std::string override_src)
        : Napi::AsyncWorker(env), deferred(Napi::Promise::Deferred::New(env)), model(std::move(model)),
          override_src(std::move(override_src)) {}

    Napi::Promise promise() { return deferred.Promise(); }

    // worker thread: no napi
    void Execute() override {
        try {
            const char * model_src = llama_model_chat_template(model->model, nullptr);
            model_has_template     = model_src != nullptr || llama_model_chat_template(model->model, "tool_use") != nullptr;
            const std::string src  = override_src.empty() ? (model_src ? model_src : "") : override_src;
            if (!src.empty() && src != "chatml") {
                // the library reports a parse error as a bare std::exception (its message lost on rethrow), so
                // the source is parsed once here first for the reason
                jinja::lexer lexer;
                jinja::parse_from_tokens(lexer.tokenize(src));
            }
            common_chat_templates_ptr t = common_chat_templates_init(model->model, override_src);
            tmpls = std::shared_ptr<const common_chat_templates>(t.release(), common_chat_templates_free);
            origin = !override_src.empty() && override_src != "chatml" ? "override"
                   : override_src.empty() && model_has_template         ? "model"
                                                                        : "chatml";
            source          = common_chat_templates_source(tmpls.get());
            tool_use_source = common_chat_templates_source(tmpls.get(), "tool_use");
            caps            = common_chat_templates_get_caps(tmpls.get());
            try {
                supports_thinking = common_chat_templates_support_enable_thinking(tmpls.get());
            } catch (const std::exception &) {
                supports_thinking = false; // the probe render failed: nothing says the template thinks
            }
        } catch (const std::exception & e) {
            SetError(std::string("the chat template does not parse: ") + e.what());
        } catch (...) {
            SetError("the chat template does not parse");
        }
    }

    void OnOK() override {
        std::string error;
        if (!try_run([&] { resolve(); }, error)) {
            deferred.Reject(make_error(Env(), "internal_error", "createChatTemplates could not report: " + error).Value());
        }
    }

    void OnError(const Napi::Error & err) override {
        deferred.Reject(make_error(Env(), "invalid_chat_template", err.Message()).Value());
    }

  private:
    void resolve() {
        Napi::Env    env = Env();
        auto *       holder = new std::shared_ptr<const common_chat_templates>(tmpls);
        Napi::Object obj    = addon_data(env)->chat_templates_ctor.New({Napi::External<std::shared_ptr<const common_chat_templates>>::New(
            env, holder, [](Napi::Env, std::shared_ptr<const common_chat_templates> * p) { delete p; })});
        obj.DefineProperties({
            Napi::PropertyDescriptor::Value("source", Napi::String::New(env, source), napi_enumerable),
            Napi::PropertyDescriptor::Value("toolUseSource", tool_use_source.empty() ? env.Null() : Napi::String::New(env, tool_use_source), napi_enumerable),
            Napi::PropertyDescriptor::Value("origin", Napi::String::New(env, origin), napi_enumerable),
            Napi::PropertyDescriptor::Value("modelHasTemplate", Napi::Boolean::New(env, model_has_template), napi_enumerable),
            Napi::PropertyDescriptor::Value("caps", caps_to_js(env), napi_enumerable),
        });
        deferred.Resolve(obj);
    }

    Napi::Object caps_to_js(Napi::Env env) const {
        Napi::Object o = Napi::Object::New(env);
        for (const auto & [name, value] : caps) o.Set(camel_case(name), value);
        o.Set("supportsThinking", supports_thinking);
        o.Freeze();
        return o;
    }

    Napi::Promise::Deferred                      deferred;
    std::shared_ptr<model_handle>                model; // the weights stay while the worker reads the vocabulary
    std::string                                  override_src;
    std::shared_ptr<const common_chat_templates> tmpls;
    std::string                                  source, tool_use_source;
    const char *                                 origin             = "chatml";
    bool                                         model_has_template = false;
    bool                                         supports_thinking  = false;
    std::map<std::string, bool>                  caps;
};

Napi::Value ChatTemplates::create(const Napi::CallbackInfo & info) {
    return guard_js(info.Env(), [&] { return create_impl(info); });
}

Napi::Value ChatTemplates::create_impl(const Napi::CallbackInfo & info) {
    Napi::Env   env = info.Env();
    Napi::Value m   = info[0];
    if (!m.IsObject() || !m.As<Napi::Object>().InstanceOf(addon_data(env)->model_ctor.Value())) {
        Napi::TypeError::New(env, "createChatTemplates needs a Model").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    Model * model = Model::Unwrap(m.As<Napi::Object>());
    if (!model->check_alive(env)) return env.Undefined();
    if (!info[1].IsUndefined() && !info[1].IsNull() && !info[1].IsString()) {
        Napi::TypeError::New(env, "the template override must be a string").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    std::string override_src = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    auto * worker = new create_templates_worker(env, model->handle, std::move(override_src));
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
}

Napi::Function ChatTemplates::define(Napi::Env env) {
    return DefineClass(env, "ChatTemplates", {
        InstanceMethod<&ChatTemplates::guarded<&ChatTemplates::apply>>("apply"),
    });
}

ChatTemplates::ChatTemplates(const Napi::CallbackInfo & info) : Napi::ObjectWrap<ChatTemplates>(info) {
    if (!info[0].IsExternal()) {
        Napi::TypeError::New(info.Env(), "ChatTemplates objects come from createChatTemplates()").ThrowAsJavaScriptException();
        return;
    }
    tmpls = *info[0].As<Napi::External<std::shared_ptr<const common_chat_templates>>>().Data();
}

static const char * trigger_type_name(common_grammar_trigger_type type) {
    switch (type) {
        case COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN:        return "token";
        case COMMON_GRAMMAR_TRIGGER_TYPE_WORD:         return "word";
        case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN:      return "pattern";
        case COMMON_GRAMMAR_TRIGGER_TYPE_PATTERN_FULL: return "patternFull";
    }
    return "word";
}

static Napi::Array strings_to_js(Napi::Env env, const std::vector<std::string> & v) {
    Napi::Array a = Napi::Array::New(env, v.size());
    for (size_t i = 0; i < v.size(); i++) a.Set((uint32_t) i, v[i]);
    return a;
}

// One render off the JS thread.
class apply_worker : public Napi::AsyncWorker {
  public:
    apply_worker(Napi::Env env, std::shared_ptr<const common_chat_templates> tmpls, common_chat_templates_inputs inputs)
        : Napi::AsyncWorker(env), deferred(Napi::Promise::Deferred::New(env)), tmpls(std::move(tmpls)), inputs(std::move(inputs)) {}

    Napi::Promise promise() { return deferred.Promise(); }

    // worker thread: no napi; every exception the library throws ends here
    void Execute() override {
        try {
            out       = common_chat_templates_apply(tmpls.get(), inputs);
            auto spec = std::make_shared<chat_parser_spec>();
            spec->params.format            = out.format;
            spec->params.generation_prompt = out.generation_prompt;
            spec->params.reasoning_format  = inputs.reasoning_format;
            spec->is_continuation          = inputs.continue_final_message != COMMON_CHAT_CONTINUATION_NONE;
            if (!out.parser.empty()) spec->arena.load(out.parser);
            parser = std::move(spec);
        } catch (const std::exception & e) {
            fail(e.what());
        } catch (...) {
            fail("unknown failure");
        }
    }

    void OnOK() override {
        std::string error;
        if (!try_run([&] { resolve(); }, error)) {
            deferred.Reject(make_error(Env(), "internal_error", "apply could not report: " + error).Value());
        }
    }

    void OnError(const Napi::Error & err) override {
        deferred.Reject(make_error(Env(), code, err.Message()).Value());
    }

  private:
    void resolve() {
        Napi::Env    env = Env();
        Napi::Object o   = Napi::Object::New(env);
        o.Set("prompt", out.prompt);
        o.Set("format", common_chat_format_name(out.format));
        o.Set("grammar", out.grammar);
        o.Set("grammarLazy", out.grammar_lazy);
        Napi::Array triggers = Napi::Array::New(env, out.grammar_triggers.size());
        for (size_t i = 0; i < out.grammar_triggers.size(); i++) {
            const common_grammar_trigger & t  = out.grammar_triggers[i];
            Napi::Object                   to = Napi::Object::New(env);
            to.Set("type", trigger_type_name(t.type));
            to.Set("value", t.value);
            to.Set("token", t.token);
            triggers.Set((uint32_t) i, to);
        }
        o.Set("grammarTriggers", triggers);
        o.Set("preservedTokens", strings_to_js(env, out.preserved_tokens));
        o.Set("additionalStops", strings_to_js(env, out.additional_stops));
        o.Set("generationPrompt", out.generation_prompt);
        o.Set("supportsThinking", out.supports_thinking);
        o.Set("thinkingStartTag", out.thinking_start_tag);
        o.Set("thinkingEndTags", strings_to_js(env, out.thinking_end_tags));
        o.Set("parser", ChatParserSpec::wrap(env, std::move(parser)));
        deferred.Resolve(o);
    }

    void fail(const std::string & what) {
        // the library wraps every failure of its parser generation in one invalid_argument; a schema it
        // cannot turn into a grammar is the request's fault and named as such
        if (what.find("JSON schema conversion failed") != std::string::npos) {
            code = "invalid_json_schema";
            SetError("a JSON schema cannot be turned into a grammar: " + what);
        } else {
            code = "chat_template_error";
            SetError("the chat template failed on this input: " + what);
        }
    }

    Napi::Promise::Deferred                      deferred;
    std::shared_ptr<const common_chat_templates> tmpls;
    common_chat_templates_inputs                 inputs;
    common_chat_params                           out;
    std::shared_ptr<const chat_parser_spec>      parser;
    const char *                                 code = "chat_template_error";
};

Napi::Value ChatTemplates::apply(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) {
        Napi::TypeError::New(env, "apply needs an input object").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    common_chat_templates_inputs inputs;
    chat_input_error             err;
    const bool ok = chat_input_read(info[0].As<Napi::Object>(), inputs, err);
    if (env.IsExceptionPending()) return env.Undefined(); // a getter on the input threw
    if (!ok) {
        Napi::Promise::Deferred d = Napi::Promise::Deferred::New(env);
        d.Reject(make_error(env, err.code, err.message).Value());
        return d.Promise();
    }
    auto * worker = new apply_worker(env, tmpls, std::move(inputs));
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
}
