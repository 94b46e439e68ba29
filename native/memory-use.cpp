#include "memory-use.h"

#include "ggml-backend.h"
#include "llama-ext.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

Napi::Object memory_use_object(Napi::Env env, const llama_context * ctx) {
    double model = 0, context = 0, compute = 0, host = 0, host_model = 0;
    for (const auto & [buft, mb] : llama_get_memory_breakdown(ctx)) {
        model   += (double) mb.model;
        context += (double) mb.context;
        compute += (double) mb.compute;
        if (buft == nullptr || ggml_backend_buft_is_host(buft)) {
            host       += (double) mb.total();
            host_model += (double) mb.model;
        }
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("model", model);
    o.Set("context", context);
    o.Set("compute", compute);
    o.Set("host", host);
    o.Set("hostModel", host_model);
    return o;
}

Napi::Value trim_heap(const Napi::CallbackInfo & info) {
#if defined(__GLIBC__)
    malloc_trim(0);
    return Napi::Boolean::New(info.Env(), true);
#else
    return Napi::Boolean::New(info.Env(), false);
#endif
}
