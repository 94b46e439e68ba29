// Creating a llama_context (KV cache allocation, graph reservation) takes long enough to run off the JS
// thread; Context and Embedder both come from this worker.
#pragma once

#include <napi.h>

#include "model.h"

#include <memory>

class create_context_worker : public Napi::AsyncWorker {
  public:
    // `ctor` makes the JS object from (External<llama_context>, External<shared_ptr<model_handle>>); it lives
    // in the addon state for the environment's lifetime. With `mean_pool_fallback`, a context whose model
    // declares no pooling (a generative model used for embeddings) is made again with mean pooling.
    create_context_worker(Napi::Env env, std::shared_ptr<model_handle> model, llama_context_params params,
                          Napi::FunctionReference * ctor, bool mean_pool_fallback);
    ~create_context_worker() override;

    Napi::Promise promise() { return deferred.Promise(); }

    void Execute() override;
    void create();
    void OnOK() override;
    void OnError(const Napi::Error & err) override;

  private:
    Napi::Promise::Deferred       deferred;
    std::shared_ptr<model_handle> model;
    llama_context_params          params;
    Napi::FunctionReference *     ctor;
    bool                          mean_pool_fallback;
    llama_context *               ctx = nullptr;
};
