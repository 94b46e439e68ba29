// ChatTemplates: a model's chat template (or an override) as llama.cpp's chat layer sees it
// (common_chat_templates_init): Jinja rendered by the library's own engine, with tools, tool_choice, a JSON
// schema and reasoning options, returning the prompt plus everything generation needs to honour the
// template's output format: a grammar (lazy, with triggers), preserved tokens, extra stop strings, the
// generation prompt, the thinking tags and a parser spec for the output (chat-parser.h).
//
//   createChatTemplates(model, override?) -> Promise<ChatTemplates>
//     override: Jinja source, or "chatml" for the library's ChatML; empty/absent = the model's template, or
//     ChatML when the model has none. Bos/eos strings come from the model's vocabulary. Rejects with
//     `invalid_chat_template` when the template does not parse. Runs on a worker: init also probes the
//     template's capabilities by rendering it several times.
//   templates.apply(input) -> Promise<ChatApplied>
//     Renders on a libuv worker thread: the library analyses the template by rendering it several times per
//     call (its "differential autoparser"), which measured milliseconds, growing with the history (see
//     DEVELOPERS.md); the JS thread only copies the input in and the result out. Rejects with a code:
//     `invalid_parameter` / `invalid_json_schema` for a bad field (named), `chat_template_error` when the
//     template fails on this input (its raise_exception, a runtime error) or the library cannot build a
//     parser or grammar for it. Several applies may run at once on one object: the library's templates are
//     read-only while rendering (llama-server renders concurrently from its HTTP threads the same way).
//
// Lifetime: independent of the model once created (the library copies the template and the bos/eos text);
// a worker in flight keeps the templates alive.
#pragma once

#include <napi.h>

#include "chat.h"
#include "common.h" // hearth's: guard_js

#include <memory>

class ChatTemplates : public Napi::ObjectWrap<ChatTemplates> {
  public:
    static Napi::Function define(Napi::Env env);

    static Napi::Value create(const Napi::CallbackInfo & info);
    static Napi::Value create_impl(const Napi::CallbackInfo & info);

    explicit ChatTemplates(const Napi::CallbackInfo & info);

    std::shared_ptr<const common_chat_templates> tmpls;

    // every method registered with DefineClass runs through guard_js (common.h)
    template <Napi::Value (ChatTemplates::*M)(const Napi::CallbackInfo &)>
    Napi::Value guarded(const Napi::CallbackInfo & info) {
        return guard_js(info.Env(), [&] { return (this->*M)(info); });
    }

  private:
    Napi::Value apply(const Napi::CallbackInfo & info);
};
