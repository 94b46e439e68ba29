#include "model.h"

#include "tokenize-worker.h"

#include "addon.h"
#include "common.h"

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

// Checks what llama.cpp would otherwise report only in its log: missing, empty or non-GGUF files.
// Returns an error code and fills `message`, or nullptr when the file looks like GGUF.
static const char * check_model_file(const std::string & path, std::string & message) {
    FILE * f = fopen(path.c_str(), "rb");
    if (!f) {
        message = "model file not found or not readable: " + path;
        return "model_not_found";
    }
    char magic[4] = {};
    size_t n = fread(magic, 1, sizeof(magic), f);
    fclose(f);
    if (n == 0) {
        message = "model file is empty: " + path;
        return "invalid_model";
    }
    if (n < 4 || memcmp(magic, "GGUF", 4) != 0) {
        message = "not a GGUF model file: " + path;
        return "invalid_model";
    }
    return nullptr;
}

struct load_progress {
    float value;
};

// Loads the model off the JS thread; progress goes back through a thread-safe function.
class load_worker : public Napi::AsyncWorker {
  public:
    load_worker(Napi::Env env, std::string path, llama_model_params params, Napi::Function on_progress)
        : Napi::AsyncWorker(env), deferred(Napi::Promise::Deferred::New(env)), path(std::move(path)), params(params) {
        if (!on_progress.IsEmpty()) {
            progress = Napi::ThreadSafeFunction::New(env, on_progress, "hearth.loadModel.progress", 0, 1);
            has_progress = true;
        }
    }

    ~load_worker() override {
        if (model) {
            llama_model_free(model); // only when the promise could not take it
        }
    }

    Napi::Promise promise() { return deferred.Promise(); }

    // worker thread: no napi except the thread-safe function
    void Execute() override {
        std::string error;
        if (!try_run([&] { load(); }, error)) {
            code    = "model_load_failed";
            message = "failed to load model " + path + ": " + error;
            SetError(message);
        }
    }

    void load() {
        code = check_model_file(path, message);
        if (code) {
            SetError(message);
            return;
        }
        llama_model_params p = params;
        if (has_progress) {
            p.progress_callback = [](float value, void * ud) {
                auto * self = static_cast<load_worker *>(ud);
                self->progress.NonBlockingCall(new load_progress{value}, [](Napi::Env env, Napi::Function fn, load_progress * data) {
                    float v = data->value;
                    delete data;
                    if (env != nullptr && fn != nullptr) {
                        fn.Call({Napi::Number::New(env, v)});
                    }
                });
                return true;
            };
            p.progress_callback_user_data = this;
        }
        log_take_errors();
        model = llama_model_load_from_file(path.c_str(), p);
        if (!model) {
            code = "model_load_failed";
            std::string details = log_take_errors();
            message = "failed to load model " + path + (details.empty() ? "" : ": " + details);
            SetError(message);
        }
    }

    void OnOK() override {
        release_progress();
        Napi::Env env = Env();
        Napi::Object obj = addon_data(env)->model_ctor.New({Napi::External<llama_model>::New(env, model)});
        model = nullptr;
        deferred.Resolve(obj);
    }

    void OnError(const Napi::Error & /*err*/) override {
        release_progress();
        deferred.Reject(make_error(Env(), code ? code : "model_load_failed", message).Value());
    }

  private:
    void release_progress() {
        if (has_progress) {
            progress.Release();
            has_progress = false;
        }
    }

    Napi::Promise::Deferred  deferred;
    std::string              path;
    llama_model_params       params;
    Napi::ThreadSafeFunction progress;
    bool                     has_progress = false;
    llama_model *            model        = nullptr;
    const char *             code         = nullptr;
    std::string              message;
};

Napi::Value Model::load(const Napi::CallbackInfo & info) {
    return guard_js(info.Env(), [&] { return load_impl(info); });
}

Napi::Value Model::load_impl(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) {
        Napi::TypeError::New(env, "path must be a string").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    Napi::Object opts = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
    llama_model_params params = llama_model_default_params();
    params.n_gpu_layers = opt_int(opts, "gpuLayers", params.n_gpu_layers);
    params.use_extra_bufts = opt_bool(opts, "useExtraBuffers", params.use_extra_bufts);
    Napi::Function on_progress = info[2].IsFunction() ? info[2].As<Napi::Function>() : Napi::Function();
    auto * worker = new load_worker(env, info[0].As<Napi::String>().Utf8Value(), params, on_progress);
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
}

Napi::Function Model::define(Napi::Env env) {
    return DefineClass(env, "Model", {
        InstanceMethod<&Model::guarded<&Model::facts>>("facts"),
        InstanceMethod<&Model::guarded<&Model::tokenize>>("tokenize"),
        InstanceMethod<&Model::guarded<&Model::tokenize_async>>("tokenizeAsync"),
        InstanceMethod<&Model::guarded<&Model::detokenize>>("detokenize"),
        InstanceMethod<&Model::guarded<&Model::token_pieces>>("tokenPieces"),
        InstanceMethod<&Model::guarded<&Model::eog_tokens>>("eogTokens"),
        InstanceMethod<&Model::guarded<&Model::check_grammar>>("checkGrammar"),
        InstanceMethod<&Model::guarded<&Model::dispose>>("dispose"),
    });
}

Model::Model(const Napi::CallbackInfo & info) : Napi::ObjectWrap<Model>(info) {
    if (!info[0].IsExternal()) {
        Napi::TypeError::New(info.Env(), "Model objects come from loadModel()").ThrowAsJavaScriptException();
        return;
    }
    handle = std::make_shared<model_handle>(info[0].As<Napi::External<llama_model>>().Data());
    model  = handle->model;
    vocab  = handle->vocab;
}

Model::~Model() = default;

bool Model::check_alive(Napi::Env env) const {
    if (!model) {
        throw_error(env, "model_disposed", "the model was disposed");
        return false;
    }
    return true;
}

static std::string meta_str(const llama_model * model, const char * key) {
    char buf[512];
    int32_t n = llama_model_meta_val_str(model, key, buf, sizeof(buf));
    return n < 0 ? std::string() : std::string(buf, std::min<size_t>(n, sizeof(buf) - 1));
}

Napi::Value Model::facts(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!check_alive(env)) return env.Undefined();
    Napi::Object o = Napi::Object::New(env);
    char desc[256];
    llama_model_desc(model, desc, sizeof(desc));
    o.Set("architecture", meta_str(model, "general.architecture"));
    o.Set("name", meta_str(model, "general.name"));
    o.Set("description", std::string(desc));
    o.Set("nParams", Napi::Number::New(env, (double) llama_model_n_params(model)));
    o.Set("sizeBytes", Napi::Number::New(env, (double) llama_model_size(model)));
    o.Set("nCtxTrain", llama_model_n_ctx_train(model));
    o.Set("nEmbd", llama_model_n_embd(model));
    o.Set("nLayer", llama_model_n_layer(model));
    o.Set("nHead", llama_model_n_head(model));
    o.Set("nHeadKv", llama_model_n_head_kv(model));
    o.Set("nVocab", llama_vocab_n_tokens(vocab));
    o.Set("bos", llama_vocab_bos(vocab));
    o.Set("eos", llama_vocab_eos(vocab));
    o.Set("eot", llama_vocab_eot(vocab));
    // fill-in-the-middle tokens (-1 when the vocabulary has none): /v1/completions' suffix
    o.Set("fimPre", llama_vocab_fim_pre(vocab));
    o.Set("fimSuf", llama_vocab_fim_suf(vocab));
    o.Set("fimMid", llama_vocab_fim_mid(vocab));
    o.Set("addBos", llama_vocab_get_add_bos(vocab));
    o.Set("addEos", llama_vocab_get_add_eos(vocab));
    o.Set("hasEncoder", llama_model_has_encoder(model));
    o.Set("isRecurrent", llama_model_is_recurrent(model) || llama_model_is_hybrid(model));
    const char * tmpl = llama_model_chat_template(model, nullptr);
    o.Set("chatTemplate", tmpl ? Napi::Value(Napi::String::New(env, tmpl)) : env.Null());
    Napi::Object meta = Napi::Object::New(env);
    int32_t n_meta = llama_model_meta_count(model);
    std::vector<char> key(256), val(4096);
    for (int32_t i = 0; i < n_meta; i++) {
        if (llama_model_meta_key_by_index(model, i, key.data(), key.size()) < 0) continue;
        int32_t n = llama_model_meta_val_str_by_index(model, i, val.data(), val.size());
        if (n < 0) continue;
        meta.Set(key.data(), std::string(val.data(), std::min<size_t>(n, val.size() - 1)));
    }
    o.Set("metadata", meta);
    return o;
}

// tokenize(text, addSpecial, parseSpecial) -> Int32Array
Napi::Value Model::tokenize(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!check_alive(env)) return env.Undefined();
    if (!info[0].IsString()) {
        Napi::TypeError::New(env, "text must be a string").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    std::string text = info[0].As<Napi::String>().Utf8Value();
    bool add_special   = info[1].ToBoolean();
    bool parse_special = info[2].ToBoolean();
    std::vector<llama_token> tokens(text.size() + 4);
    int32_t n = llama_tokenize(vocab, text.data(), (int32_t) text.size(), tokens.data(), (int32_t) tokens.size(), add_special, parse_special);
    if (n < 0) {
        tokens.resize(-n);
        n = llama_tokenize(vocab, text.data(), (int32_t) text.size(), tokens.data(), (int32_t) tokens.size(), add_special, parse_special);
    }
    if (n < 0) {
        return throw_error(env, "tokenize_failed", "tokenization failed");
    }
    Napi::Int32Array out = Napi::Int32Array::New(env, n);
    memcpy(out.Data(), tokens.data(), n * sizeof(llama_token));
    return out;
}

// tokenizeAsync(text, addSpecial, parseSpecial) -> Promise<Int32Array>, on the libuv pool (tokenize-worker.h)
Napi::Value Model::tokenize_async(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!check_alive(env)) return env.Undefined();
    if (!info[0].IsString()) {
        Napi::TypeError::New(env, "text must be a string").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    auto * w = new tokenize_worker(env, handle, info[0].As<Napi::String>().Utf8Value(), info[1].ToBoolean(), info[2].ToBoolean());
    Napi::Promise promise = w->promise();
    w->Queue();
    return promise;
}

// detokenize(Int32Array, removeSpecial, unparseSpecial) -> string
Napi::Value Model::detokenize(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!check_alive(env)) return env.Undefined();
    std::vector<int32_t> tokens;
    if (!read_i32_array(info[0], tokens, "tokens")) return env.Undefined();
    int32_t n_vocab = llama_vocab_n_tokens(vocab);
    for (int32_t t : tokens) {
        if (t < 0 || t >= n_vocab) {
            return throw_error(env, "invalid_token", "token id " + std::to_string(t) + " is outside the vocabulary");
        }
    }
    bool remove_special  = info[1].ToBoolean();
    bool unparse_special = info[2].ToBoolean();
    std::string text(tokens.size() * 8 + 16, '\0');
    int32_t n = llama_detokenize(vocab, tokens.data(), (int32_t) tokens.size(), text.data(), (int32_t) text.size(), remove_special, unparse_special);
    if (n < 0) {
        text.resize(-n);
        n = llama_detokenize(vocab, tokens.data(), (int32_t) tokens.size(), text.data(), (int32_t) text.size(), remove_special, unparse_special);
    }
    text.resize(std::max(n, 0));
    return Napi::String::New(env, text);
}

// tokenPieces(special) -> { bytes: Uint8Array, offsets: Uint32Array(nVocab + 1) }: every token's raw bytes,
// so JS can turn tokens into text without a native call per token.
Napi::Value Model::token_pieces(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!check_alive(env)) return env.Undefined();
    bool special = info[0].ToBoolean();
    int32_t n_vocab = llama_vocab_n_tokens(vocab);
    std::vector<uint8_t> bytes;
    bytes.reserve((size_t) n_vocab * 6);
    Napi::Uint32Array offsets = Napi::Uint32Array::New(env, n_vocab + 1);
    char buf[256];
    for (int32_t t = 0; t < n_vocab; t++) {
        offsets[t] = (uint32_t) bytes.size();
        int32_t n = llama_token_to_piece(vocab, t, buf, sizeof(buf), 0, special);
        if (n > 0) {
            bytes.insert(bytes.end(), buf, buf + n);
        } else if (n < 0) {
            std::vector<char> big(-n);
            n = llama_token_to_piece(vocab, t, big.data(), (int32_t) big.size(), 0, special);
            bytes.insert(bytes.end(), big.data(), big.data() + std::max(n, 0));
        }
    }
    offsets[n_vocab] = (uint32_t) bytes.size();
    Napi::Uint8Array out = Napi::Uint8Array::New(env, bytes.size());
    memcpy(out.Data(), bytes.data(), bytes.size());
    Napi::Object o = Napi::Object::New(env);
    o.Set("bytes", out);
    o.Set("offsets", offsets);
    return o;
}

// eogTokens() -> Int32Array of every end-of-generation token (EOS, EOT, <|im_end|>, ...)
Napi::Value Model::eog_tokens(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!check_alive(env)) return env.Undefined();
    std::vector<int32_t> eog;
    int32_t n_vocab = llama_vocab_n_tokens(vocab);
    for (int32_t t = 0; t < n_vocab; t++) {
        if (llama_vocab_is_eog(vocab, t)) eog.push_back(t);
    }
    Napi::Int32Array out = Napi::Int32Array::New(env, eog.size());
    if (!eog.empty()) memcpy(out.Data(), eog.data(), eog.size() * sizeof(int32_t));
    return out;
}

// checkGrammar(gbnf): throws `invalid_grammar` with llama.cpp's parse error when the GBNF does not parse
// against this vocabulary, so a request is refused before it reaches a slot.
Napi::Value Model::check_grammar(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!check_alive(env)) return env.Undefined();
    if (!info[0].IsString()) {
        Napi::TypeError::New(env, "grammar must be a string").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    std::string gbnf = info[0].As<Napi::String>().Utf8Value();
    log_take_errors();
    llama_sampler * g = llama_sampler_init_grammar(vocab, gbnf.c_str(), "root");
    if (!g) {
        std::string details = log_take_errors();
        return throw_error(env, "invalid_grammar", "the grammar does not parse" + (details.empty() ? std::string() : ": " + details));
    }
    llama_sampler_free(g);
    return env.Undefined();
}

// dispose(): frees the weights now. Contexts must be disposed first (the JS side enforces it).
Napi::Value Model::dispose(const Napi::CallbackInfo & info) {
    if (handle && handle->n_contexts > 0) {
        return throw_error(info.Env(), "model_in_use", "dispose the model's contexts before the model");
    }
    handle.reset();
    model = nullptr;
    vocab = nullptr;
    return info.Env().Undefined();
}
