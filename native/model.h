// Model: one loaded GGUF model (weights + vocabulary), visible to JS as the class returned by loadModel().
// Lifetime: the weights are shared (std::shared_ptr) by this object and every context made from it, and
// freed when the last of them lets go; dispose() lets go of this object's share and refuses while a
// context is alive, so JS code sees one clear order: contexts first, then the model.
#pragma once

#include <napi.h>

#include "common.h"

#include "llama.h"

#include <memory>

// The weights, shared by a Model and the contexts made from it.
struct model_handle {
    llama_model *       model      = nullptr;
    const llama_vocab * vocab      = nullptr;
    int                 n_contexts = 0; // JS thread only: live contexts/embedders made from this model

    explicit model_handle(llama_model * m) : model(m), vocab(llama_model_get_vocab(m)) {}
    model_handle(const model_handle &) = delete;
    model_handle & operator=(const model_handle &) = delete;
    ~model_handle() { llama_model_free(model); }
};

class Model : public Napi::ObjectWrap<Model> {
  public:
    static Napi::Function define(Napi::Env env);

    // loadModel(path, options, onProgress?) -> Promise<Model>; loads on a worker thread.
    static Napi::Value load(const Napi::CallbackInfo & info);
    static Napi::Value load_impl(const Napi::CallbackInfo & info);

    explicit Model(const Napi::CallbackInfo & info);
    ~Model() override;

    std::shared_ptr<model_handle> handle; // empty once disposed
    llama_model *       model = nullptr;
    const llama_vocab * vocab = nullptr;

    // JS thread. Throws `model_disposed` and returns false when the model was disposed.
    bool check_alive(Napi::Env env) const;

    // every method registered with DefineClass runs through guard_js (common.h)
    template <Napi::Value (Model::*M)(const Napi::CallbackInfo &)>
    Napi::Value guarded(const Napi::CallbackInfo & info) {
        return guard_js(info.Env(), [&] { return (this->*M)(info); });
    }

  private:
    Napi::Value facts(const Napi::CallbackInfo & info);
    Napi::Value tokenize(const Napi::CallbackInfo & info);
    Napi::Value tokenize_async(const Napi::CallbackInfo & info);
    Napi::Value detokenize(const Napi::CallbackInfo & info);
    Napi::Value token_pieces(const Napi::CallbackInfo & info);
    Napi::Value eog_tokens(const Napi::CallbackInfo & info);
    Napi::Value check_grammar(const Napi::CallbackInfo & info);
    Napi::Value dispose(const Napi::CallbackInfo & info);
};
