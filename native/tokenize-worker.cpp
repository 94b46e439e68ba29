#include "tokenize-worker.h"

#include <cstring>
#include <exception>

tokenize_worker::tokenize_worker(Napi::Env env, std::shared_ptr<model_handle> model, std::string text, bool add_special, bool parse_special)
    : Napi::AsyncWorker(env), deferred(Napi::Promise::Deferred::New(env)), model(std::move(model)), text(std::move(text)),
      add_special(add_special), parse_special(parse_special) {}

// worker thread: no napi
void tokenize_worker::Execute() {
    try {
        const llama_vocab * vocab = model->vocab;
        tokens.resize(text.size() + 4);
        int32_t n = llama_tokenize(vocab, text.data(), (int32_t) text.size(), tokens.data(), (int32_t) tokens.size(), add_special, parse_special);
        if (n < 0) {
            tokens.resize(-n);
            n = llama_tokenize(vocab, text.data(), (int32_t) text.size(), tokens.data(), (int32_t) tokens.size(), add_special, parse_special);
        }
        if (n < 0) {
            failed = true;
            return;
        }
        tokens.resize(n);
    } catch (const std::exception &) {
        failed = true;
    }
}

void tokenize_worker::OnOK() {
    Napi::Env env = Env();
    Napi::HandleScope scope(env);
    if (failed) {
        deferred.Reject(make_error(env, "tokenize_failed", "tokenization failed").Value());
        return;
    }
    Napi::Int32Array out = Napi::Int32Array::New(env, tokens.size());
    if (!tokens.empty()) memcpy(out.Data(), tokens.data(), tokens.size() * sizeof(llama_token));
    deferred.Resolve(out);
}

void tokenize_worker::OnError(const Napi::Error & err) {
    deferred.Reject(err.Value());
}
