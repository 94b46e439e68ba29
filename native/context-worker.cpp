#include "context-worker.h"

#include "common.h"

#include <string>

create_context_worker::create_context_worker(Napi::Env env, std::shared_ptr<model_handle> model, llama_context_params params,
                                             Napi::FunctionReference * ctor, bool mean_pool_fallback)
    : Napi::AsyncWorker(env), deferred(Napi::Promise::Deferred::New(env)), model(std::move(model)), params(params),
      ctor(ctor), mean_pool_fallback(mean_pool_fallback) {
    this->model->n_contexts++; // counted from now so the model cannot be disposed under the worker
}

create_context_worker::~create_context_worker() {
    if (ctx) llama_free(ctx);
}

// worker thread: no napi
void create_context_worker::Execute() {
    std::string error;
    if (!try_run([&] { create(); }, error)) {
        SetError("failed to create a context: " + error);
    }
}

// worker thread: no napi
void create_context_worker::create() {
    log_take_errors();
    ctx = llama_init_from_model(model->model, params);
    if (ctx && mean_pool_fallback && llama_pooling_type(ctx) == LLAMA_POOLING_TYPE_NONE) {
        llama_free(ctx);
        params.pooling_type = LLAMA_POOLING_TYPE_MEAN;
        ctx = llama_init_from_model(model->model, params);
    }
    if (!ctx) {
        std::string details = log_take_errors();
        SetError("failed to create a context" + (details.empty() ? std::string() : ": " + details));
    }
}

void create_context_worker::OnOK() {
    Napi::Env env = Env();
    Napi::Object obj = ctor->New({
        Napi::External<llama_context>::New(env, ctx),
        Napi::External<std::shared_ptr<model_handle>>::New(env, &model),
    });
    ctx = nullptr; // the new object owns it (and its own share of the model: n_contexts stays counted)
    deferred.Resolve(obj);
}

void create_context_worker::OnError(const Napi::Error & err) {
    model->n_contexts--;
    deferred.Reject(make_error(Env(), "context_failed", err.Message()).Value());
}
