// Embedder: a llama_context in embedding mode that turns batches of token sequences into pooled,
// L2-normalised vectors. Pooling follows the model (mean, CLS or last); a model that declares none
// (a plain generative model) gets mean pooling. One embed() runs at a time; each input must fit nCtx.
#pragma once

#include <napi.h>

#include "common.h"

#include "model.h"

#include <memory>

class Embedder : public Napi::ObjectWrap<Embedder> {
  public:
    static Napi::Function define(Napi::Env env);

    // createEmbedder(model, options) -> Promise<Embedder>
    static Napi::Value create(const Napi::CallbackInfo & info);
    static Napi::Value create_impl(const Napi::CallbackInfo & info);

    explicit Embedder(const Napi::CallbackInfo & info);
    ~Embedder() override;

    std::shared_ptr<model_handle> model;
    llama_context *               ctx = nullptr;
    bool                          busy = false;

    // every method registered with DefineClass runs through guard_js (common.h)
    template <Napi::Value (Embedder::*M)(const Napi::CallbackInfo &)>
    Napi::Value guarded(const Napi::CallbackInfo & info) {
        return guard_js(info.Env(), [&] { return (this->*M)(info); });
    }

  private:
    void release();
    Napi::Value facts(const Napi::CallbackInfo & info);
    Napi::Value embed(const Napi::CallbackInfo & info);
    Napi::Value memory(const Napi::CallbackInfo & info);
    Napi::Value dispose(const Napi::CallbackInfo & info);
};
