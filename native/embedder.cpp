#include "embedder.h"

#include "addon.h"
#include "common.h"
#include "context-worker.h"
#include "memory-use.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

static const char * pooling_name(enum llama_pooling_type t) {
    switch (t) {
        case LLAMA_POOLING_TYPE_MEAN: return "mean";
        case LLAMA_POOLING_TYPE_CLS:  return "cls";
        case LLAMA_POOLING_TYPE_LAST: return "last";
        case LLAMA_POOLING_TYPE_RANK: return "rank";
        default:                      return "none";
    }
}

Napi::Value Embedder::create(const Napi::CallbackInfo & info) {
    return guard_js(info.Env(), [&] { return create_impl(info); });
}

Napi::Value Embedder::create_impl(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    Napi::Object model_obj = info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object();
    if (model_obj.IsEmpty() || !model_obj.InstanceOf(addon_data(env)->model_ctor.Value())) {
        Napi::TypeError::New(env, "createEmbedder needs a Model").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    Model * m = Model::Unwrap(model_obj);
    if (!m->check_alive(env)) return env.Undefined();
    Napi::Object o = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
    // sizes and threads come from lib/model.ts, which owns their defaults
    required_fields r{o, {}};
    llama_context_params p = llama_context_default_params();
    p.embeddings      = true;
    p.n_ctx           = (uint32_t) r.int32("nCtx");
    p.n_batch         = p.n_ctx; // a pooled sequence must fit one physical batch
    p.n_ubatch        = p.n_ctx;
    p.n_seq_max       = (uint32_t) r.int32("nSeqMax");
    p.kv_unified      = true;
    p.n_threads       = r.int32("threads");
    if (!r.missing.empty()) return throw_error(env, "invalid_options", "createEmbedder needs " + r.missing);
    p.n_threads_batch = p.n_threads;
    p.no_perf         = true;
    std::string pooling = opt_str(o, "pooling", "");
    p.pooling_type = pooling == "mean" ? LLAMA_POOLING_TYPE_MEAN : pooling == "cls" ? LLAMA_POOLING_TYPE_CLS
                   : pooling == "last" ? LLAMA_POOLING_TYPE_LAST : LLAMA_POOLING_TYPE_UNSPECIFIED;
    auto * worker = new create_context_worker(env, m->handle, p, &addon_data(env)->embedder_ctor, true);
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
}

Napi::Function Embedder::define(Napi::Env env) {
    return DefineClass(env, "Embedder", {
        InstanceMethod<&Embedder::guarded<&Embedder::facts>>("facts"),
        InstanceMethod<&Embedder::guarded<&Embedder::embed>>("embed"),
        InstanceMethod<&Embedder::guarded<&Embedder::memory>>("memory"),
        InstanceMethod<&Embedder::guarded<&Embedder::dispose>>("dispose"),
    });
}

Embedder::Embedder(const Napi::CallbackInfo & info) : Napi::ObjectWrap<Embedder>(info) {
    if (!info[0].IsExternal() || !info[1].IsExternal()) {
        Napi::TypeError::New(info.Env(), "Embedder objects come from createEmbedder()").ThrowAsJavaScriptException();
        return;
    }
    ctx   = info[0].As<Napi::External<llama_context>>().Data();
    model = *info[1].As<Napi::External<std::shared_ptr<model_handle>>>().Data();
}

Embedder::~Embedder() {
    release();
}

void Embedder::release() {
    if (!ctx) return;
    llama_free(ctx);
    ctx = nullptr;
    model->n_contexts--;
    model.reset();
}

// memory() -> { model, context, compute, host, hostModel } bytes (memory-use.h); not while an embed() is in flight
Napi::Value Embedder::memory(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!ctx) return throw_error(env, "context_disposed", "the embedder was disposed");
    if (busy) return throw_error(env, "context_busy", "an embedding batch is in flight on this embedder");
    return memory_use_object(env, ctx);
}

Napi::Value Embedder::facts(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!ctx) return throw_error(env, "context_disposed", "the embedder was disposed");
    Napi::Object o = Napi::Object::New(env);
    o.Set("nCtx", llama_n_ctx(ctx));
    o.Set("nSeqMax", llama_n_seq_max(ctx));
    o.Set("nEmbd", llama_model_n_embd_out(model->model));
    o.Set("pooling", pooling_name(llama_pooling_type(ctx)));
    return o;
}

class embed_worker : public Napi::AsyncWorker {
  public:
    embed_worker(Napi::Object self, Embedder * e)
        : Napi::AsyncWorker(self.Env()), deferred(Napi::Promise::Deferred::New(self.Env())), self(Napi::Persistent(self)), e(e) {}

    Napi::Promise promise() { return deferred.Promise(); }

    std::vector<int32_t> tokens, offsets; // input i is tokens[offsets[i] .. offsets[i + 1])

    // worker thread: no napi
    void Execute() override {
        std::string error;
        if (!try_run([&] { run(); }, error)) SetError("embedding failed: " + error);
    }

    void run() {
        llama_context * ctx = e->ctx;
        const int32_t n_ctx    = (int32_t) llama_n_ctx(ctx);
        const int32_t n_seq    = (int32_t) llama_n_seq_max(ctx);
        const int32_t n_embd   = llama_model_n_embd_out(e->model->model);
        const size_t  n_inputs = offsets.size() - 1;
        out.assign(n_inputs * n_embd, 0.0f);
        llama_batch batch = llama_batch_init(n_ctx, 0, 1);
        struct batch_owner {
            llama_batch & b;
            ~batch_owner() { llama_batch_free(b); }
        } owner{batch}; // freed on every way out, exceptions included
        llama_memory_t mem = llama_get_memory(ctx);
        size_t next = 0;
        log_take_errors();
        while (next < n_inputs) {
            // pack whole inputs into one batch: at most n_ctx tokens and n_seq sequences
            size_t first = next;
            batch.n_tokens = 0;
            while (next < n_inputs && (int32_t) (next - first) < n_seq) {
                int32_t len = offsets[next + 1] - offsets[next];
                if (batch.n_tokens + len > n_ctx) break;
                for (int32_t j = 0; j < len; j++) {
                    int32_t i = batch.n_tokens++;
                    batch.token[i]     = tokens[offsets[next] + j];
                    batch.pos[i]       = j;
                    batch.n_seq_id[i]  = 1;
                    batch.seq_id[i][0] = (llama_seq_id) (next - first);
                    batch.logits[i]    = 1;
                }
                next++;
            }
            llama_memory_clear(mem, true);
            int32_t rc = llama_decode(ctx, batch);
            if (rc != 0) {
                std::string details = log_take_errors();
                SetError("llama_decode returned " + std::to_string(rc) + (details.empty() ? "" : ": " + details));
                break;
            }
            for (size_t k = first; k < next; k++) {
                const float * v = llama_get_embeddings_seq(ctx, (llama_seq_id) (k - first));
                if (!v) {
                    SetError("the model gave no pooled embedding");
                    break;
                }
                double norm = 0.0;
                for (int32_t d = 0; d < n_embd; d++) norm += (double) v[d] * v[d];
                const float scale = norm > 0.0 ? (float) (1.0 / std::sqrt(norm)) : 0.0f;
                float * dst = out.data() + k * n_embd;
                for (int32_t d = 0; d < n_embd; d++) dst[d] = v[d] * scale;
            }
        }
        llama_memory_clear(mem, true);
    }

    void OnOK() override {
        e->busy = false;
        Napi::Float32Array a = Napi::Float32Array::New(Env(), out.size());
        if (!out.empty()) memcpy(a.Data(), out.data(), out.size() * sizeof(float));
        deferred.Resolve(a);
    }

    void OnError(const Napi::Error & err) override {
        e->busy = false;
        deferred.Reject(make_error(Env(), "decode_failed", err.Message()).Value());
    }

  private:
    Napi::Promise::Deferred deferred;
    Napi::ObjectReference   self; // keeps the embedder alive while the worker runs
    Embedder *              e;
    std::vector<float>      out;
};

// embed(tokens: Int32Array, offsets: Int32Array(nInputs + 1)) -> Promise<Float32Array(nInputs * nEmbd)>
Napi::Value Embedder::embed(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!ctx) return throw_error(env, "context_disposed", "the embedder was disposed");
    if (busy) return throw_error(env, "context_busy", "an embedding batch is in flight on this embedder");
    // validated before the worker (and its promise) exists: a promise never settled would leak in node
    std::vector<int32_t> tokens, offsets;
    if (!read_i32_array(info[0], tokens, "tokens") || !read_i32_array(info[1], offsets, "offsets")) {
        return env.Undefined();
    }
    const int32_t n_ctx   = (int32_t) llama_n_ctx(ctx);
    const int32_t n_vocab = llama_vocab_n_tokens(model->vocab);
    std::string problem;
    if (offsets.size() < 2 || offsets.front() != 0 || offsets.back() != (int32_t) tokens.size()) {
        problem = "offsets must start at 0 and end at tokens.length";
    }
    for (size_t i = 0; problem.empty() && i + 1 < offsets.size(); i++) {
        int32_t len = offsets[i + 1] - offsets[i];
        if (len < 1) problem = "input " + std::to_string(i) + " is empty";
        else if (len > n_ctx) problem = "input " + std::to_string(i) + " has " + std::to_string(len) + " tokens, more than the embedding context of " + std::to_string(n_ctx);
    }
    for (size_t i = 0; problem.empty() && i < tokens.size(); i++) {
        if (tokens[i] < 0 || tokens[i] >= n_vocab) problem = "token id " + std::to_string(tokens[i]) + " is outside the vocabulary";
    }
    if (!problem.empty()) return throw_error(env, "invalid_input", problem);
    auto * w = new embed_worker(info.This().As<Napi::Object>(), this); // deletes itself once settled
    w->tokens  = std::move(tokens);
    w->offsets = std::move(offsets);
    busy = true;
    Napi::Promise promise = w->promise();
    w->Queue();
    return promise;
}

Napi::Value Embedder::dispose(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (busy) return throw_error(env, "context_busy", "an embedding batch is in flight on this embedder");
    release();
    return env.Undefined();
}
