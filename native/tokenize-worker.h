// Tokenizing a request's text off the JS thread. llama.cpp's tokenizers are superlinear on some inputs (long runs of
// newlines or of bytes without a word piece: 200,000 newlines take seconds), so a request's text is tokenized on
// the libuv pool and only that request waits for it.
#pragma once

#include <napi.h>

#include "model.h"

#include <memory>
#include <string>
#include <vector>

// tokenizeAsync(text, addSpecial, parseSpecial) -> Promise<Int32Array>. Holds the weights (model_handle) until it
// settles, so a model disposed meanwhile is freed only afterwards. Worker thread: no napi; never throws.
class tokenize_worker : public Napi::AsyncWorker {
  public:
    tokenize_worker(Napi::Env env, std::shared_ptr<model_handle> model, std::string text, bool add_special, bool parse_special);

    Napi::Promise promise() { return deferred.Promise(); }

    void Execute() override;
    void OnOK() override;
    void OnError(const Napi::Error & err) override;

  private:
    Napi::Promise::Deferred       deferred;
    std::shared_ptr<model_handle> model;
    std::string                   text;
    bool                          add_special;
    bool                          parse_special;
    std::vector<llama_token>      tokens;
    bool                          failed = false;
};
