#include "quantize.h"

#include "common.h"

#include "llama.h"

#include <string>

class quantize_worker : public Napi::AsyncWorker {
  public:
    quantize_worker(Napi::Env env, std::string in, std::string out, llama_model_quantize_params params)
        : Napi::AsyncWorker(env), deferred(Napi::Promise::Deferred::New(env)), in(std::move(in)), out(std::move(out)), params(params) {}

    Napi::Promise promise() { return deferred.Promise(); }

    // worker thread: no napi
    void Execute() override {
        std::string error;
        bool ok = try_run([&] {
            log_take_errors();
            if (llama_model_quantize(in.c_str(), out.c_str(), &params) != 0) {
                std::string details = log_take_errors();
                SetError("quantization failed" + (details.empty() ? std::string() : ": " + details));
            }
        }, error);
        if (!ok) SetError("quantization failed: " + error);
    }

    void OnOK() override { deferred.Resolve(Env().Undefined()); }

    void OnError(const Napi::Error & err) override { deferred.Reject(make_error(Env(), "quantize_failed", err.Message()).Value()); }

  private:
    Napi::Promise::Deferred     deferred;
    std::string                 in, out;
    llama_model_quantize_params params;
};

static Napi::Value quantize_impl(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString() || !info[1].IsString() || !info[2].IsString()) {
        Napi::TypeError::New(env, "quantize(input, output, type, threads?)").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    std::string type = info[2].As<Napi::String>().Utf8Value();
    llama_model_quantize_params params = llama_model_quantize_default_params();
    if (type == "f16") params.ftype = LLAMA_FTYPE_MOSTLY_F16;
    else if (type == "q8_0") params.ftype = LLAMA_FTYPE_MOSTLY_Q8_0;
    else if (type == "q4_0") params.ftype = LLAMA_FTYPE_MOSTLY_Q4_0;
    else if (type == "q4_k_m") params.ftype = LLAMA_FTYPE_MOSTLY_Q4_K_M;
    else return throw_error(env, "invalid_options", "unknown quantization type " + type);
    params.nthread = info[3].IsNumber() ? info[3].As<Napi::Number>().Int32Value() : 0;
    auto * w = new quantize_worker(env, info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::String>().Utf8Value(), params);
    Napi::Promise promise = w->promise();
    w->Queue();
    return promise;
}

Napi::Value quantize(const Napi::CallbackInfo & info) {
    return guard_js(info.Env(), [&] { return quantize_impl(info); });
}
