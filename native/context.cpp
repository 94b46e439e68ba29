#include "context.h"

#include "addon.h"
#include "chat-input.h"
#include "common.h"
#include "context-worker.h"
#include "decode-thread.h"
#include "seq-state.h"
#include "memory-use.h"
#include "media.h"

#include "ggml-cpu.h"

#include <cmath>
#include <cstring>
#include <string>

// maps llama_decode's return codes to hearth's error codes
static const char * decode_error_code(int32_t rc) {
    switch (rc) {
        case 1:  return "kv_cache_full";
        case 2:  return "decode_aborted";
        case -1: return "invalid_batch";
        default: return "decode_failed";
    }
}

// the KV cache types offered (lib/native.ts validates the names first; an unknown one is GGML_TYPE_COUNT)
static ggml_type kv_cache_type(const std::string & name) {
    if (name == "f16")  return GGML_TYPE_F16;
    if (name == "q8_0") return GGML_TYPE_Q8_0;
    if (name == "q4_0") return GGML_TYPE_Q4_0;
    return GGML_TYPE_COUNT;
}

// Every size and thread count comes from lib/model.ts, which owns their defaults; `missing` names the first absent.
static llama_context_params context_params_from(const Napi::Object & o, std::string & missing) {
    required_fields r{o, {}};
    llama_context_params p = llama_context_default_params();
    p.n_ctx           = (uint32_t) r.int32("nCtx");
    p.n_seq_max       = (uint32_t) r.int32("nSeqMax");
    p.n_batch         = (uint32_t) r.int32("nBatch");
    p.n_ubatch        = (uint32_t) r.int32("nUbatch");
    p.n_threads       = r.int32("threads");
    p.n_threads_batch = r.int32("threadsBatch");
    p.kv_unified      = r.flag("kvUnified");
    p.type_k          = kv_cache_type(r.str("typeK"));
    p.type_v          = kv_cache_type(r.str("typeV"));
    // a step samples at most one position per sequence, and llama.cpp sizes the graph's output buffer by
    // this: the default (n_batch outputs) reserves vocab x n_batch floats of logits (a 300 MB compute
    // buffer instead of 38 MB for a 150k vocabulary); llama-server reserves one output per slot the same way
    p.n_outputs_max         = p.n_seq_max;
    p.n_outputs_max_per_seq = 1;
    p.no_perf         = true;
    std::string fa = r.str("flashAttention");
    p.flash_attn_type = fa == "on" ? LLAMA_FLASH_ATTN_TYPE_ENABLED : fa == "off" ? LLAMA_FLASH_ATTN_TYPE_DISABLED : LLAMA_FLASH_ATTN_TYPE_AUTO;
    missing = r.missing;
    return p;
}

// Work for the decode thread: made on the JS thread, run() on the decode thread (no napi there, never throws),
// settle() back on the JS thread through the context's thread-safe function. One job at a time per context.
struct context_job {
    Context *               c;
    Napi::Promise::Deferred deferred;
    Napi::ObjectReference   self; // keeps the context alive while the job runs

    context_job(Napi::Object self_obj, Context * c)
        : c(c), deferred(Napi::Promise::Deferred::New(self_obj.Env())), self(Napi::Persistent(self_obj)) {}
    virtual ~context_job() = default;

    // decode thread: no napi; must not throw
    virtual void run() = 0;
    // JS thread
    virtual void settle(Napi::Env env) = 0;
};

// One decode step for the whole batch: inputs copied on the JS thread, run on the decode thread (no napi
// there), results handed back through a thread-safe function.
struct step_job : context_job {
    std::vector<int32_t>    tokens, pos, seqs, sample_at;
    std::vector<media_input> media; // decoded before the tokens, each in its own llama_decode calls
    int32_t                 rc = 0;
    const char *            error_code = nullptr; // set when the whole step failed
    int32_t                 n_top = 0;
    double                  decode_us = 0, sample_us = 0;
    std::string             error;
    std::vector<int32_t>    out_tokens, out_top_ids, out_status;
    std::vector<float>      out_logprobs, out_top_logprobs;
    std::vector<std::string> out_errors;

    step_job(Napi::Object self_obj, Context * c) : context_job(self_obj, c) {}

    // decode thread: no napi, never throws (an exception escaping the decode thread ends the process)
    void run() override {
        try {
            decode_and_sample();
        } catch (const std::exception & e) {
            error_code = "decode_failed";
            error = std::string("the decode step failed: ") + e.what();
        } catch (...) {
            error_code = "decode_failed";
            error = "the decode step failed with an unknown exception";
        }
    }

    void decode_and_sample() {
        const int64_t t0 = llama_time_us();
        for (const media_input & m : media) {
            log_take_errors();
            rc = media_decode(c->ctx, m, c->n_batch);
            if (rc != 0) {
                std::string details = log_take_errors();
                error_code = rc == -1 ? "media_failed" : decode_error_code(rc);
                error = "decoding media into sequence " + std::to_string(m.seq) + " returned " + std::to_string(rc) + (details.empty() ? "" : ": " + details);
                return;
            }
        }
        const int32_t n = (int32_t) tokens.size();
        llama_batch & b = c->batch;
        b.n_tokens = n;
        for (int32_t i = 0; i < n; i++) {
            b.token[i]     = tokens[i];
            b.pos[i]       = pos[i];
            b.n_seq_id[i]  = 1;
            b.seq_id[i][0] = seqs[i];
            b.logits[i]    = 0;
        }
        for (int32_t idx : sample_at) b.logits[idx] = 1;
        log_take_errors();
        rc = n > 0 ? llama_decode(c->ctx, b) : 0;
        const int64_t t1 = llama_time_us();
        decode_us = (double) (t1 - t0);
        if (rc != 0) {
            std::string details = log_take_errors();
            error_code = decode_error_code(rc);
            error = "llama_decode returned " + std::to_string(rc) + (details.empty() ? "" : ": " + details);
            return;
        }
        const int32_t n_vocab = llama_vocab_n_tokens(c->model->vocab);
        const size_t m = sample_at.size();
        for (int32_t idx : sample_at) {
            seq_sampler * s = c->samplers[seqs[idx]].get();
            if (s) n_top = std::max(n_top, s->n_top_logprobs);
        }
        out_tokens.resize(m);
        out_logprobs.resize(m);
        out_status.resize(m);
        out_errors.resize(m);
        out_top_ids.assign(m * n_top, -1);
        out_top_logprobs.assign(m * n_top, NAN);
        // each sequence's sampling succeeds or fails on its own: one sequence's grammar must not fail the batch
        for (size_t k = 0; k < m; k++) {
            const int32_t idx = sample_at[k];
            const float * logits = llama_get_logits_ith(c->ctx, idx);
            sampled_token t;
            if (!logits) {
                t.status = SAMPLE_ERROR;
                t.error  = "no logits for batch index " + std::to_string(idx) + ": " + log_take_errors();
            } else {
                t = sampler_sample(c->samplers[seqs[idx]].get(), c->ctx, idx, logits, n_vocab,
                                   out_top_ids.data() + k * n_top, out_top_logprobs.data() + k * n_top);
            }
            out_tokens[k]   = t.status == SAMPLE_OK ? t.id : LLAMA_TOKEN_NULL;
            out_logprobs[k] = t.logprob;
            out_status[k]   = t.status;
            out_errors[k]   = std::move(t.error);
        }
        sample_us = (double) (llama_time_us() - t1);
    }

    template <typename A, typename T>
    static A to_array(Napi::Env env, const std::vector<T> & v) {
        A a = A::New(env, v.size());
        if (!v.empty()) memcpy(a.Data(), v.data(), v.size() * sizeof(T));
        return a;
    }

    // JS thread
    void settle(Napi::Env env) override {
        Napi::HandleScope scope(env);
        c->busy = false;
        if (error_code) {
            Napi::Error e = make_error(env, error_code, error);
            e.Value().Set("rc", rc);
            deferred.Reject(e.Value());
            return;
        }
        Napi::Object o = Napi::Object::New(env);
        o.Set("tokens", to_array<Napi::Int32Array>(env, out_tokens));
        o.Set("logprobs", to_array<Napi::Float32Array>(env, out_logprobs));
        o.Set("status", to_array<Napi::Int32Array>(env, out_status));
        Napi::Array errors = Napi::Array::New(env, out_errors.size());
        for (size_t k = 0; k < out_errors.size(); k++) errors.Set((uint32_t) k, out_errors[k]);
        o.Set("errors", errors);
        o.Set("nTop", n_top);
        o.Set("topIds", to_array<Napi::Int32Array>(env, out_top_ids));
        o.Set("topLogprobs", to_array<Napi::Float32Array>(env, out_top_logprobs));
        o.Set("decodeUs", decode_us);
        o.Set("sampleUs", sample_us);
        deferred.Resolve(o);
    }
};

// A sequence's cells as llama.cpp's per-sequence state bytes, into `out`; false with `error` when it cannot.
static bool read_seq_state(llama_context * ctx, int32_t seq, std::vector<uint8_t> & out, std::string & error) {
    log_take_errors();
    const size_t size = llama_state_seq_get_size_ext(ctx, seq, 0);
    if (size == 0) {
        error = "llama_state_seq_get_size failed for sequence " + std::to_string(seq) + ": " + log_take_errors();
        return false;
    }
    out.resize(size);
    const size_t n = llama_state_seq_get_data_ext(ctx, out.data(), size, seq, 0);
    if (n != size) {
        error = "llama_state_seq_get_data wrote " + std::to_string(n) + " of " + std::to_string(size) + " bytes: " + log_take_errors();
        return false;
    }
    return true;
}

// Replaces sequence `seq`'s cells with saved state bytes and keeps positions [0, keep) (all when keep < 0). On
// failure the sequence is left empty, not half written.
static bool write_seq_state(llama_context * ctx, int32_t seq, const uint8_t * data, size_t size, int32_t keep, std::string & error) {
    log_take_errors();
    llama_memory_t mem = llama_get_memory(ctx);
    if (llama_state_seq_set_data_ext(ctx, data, size, seq, 0) == 0) {
        llama_memory_seq_rm(mem, seq, -1, -1);
        error = "llama_state_seq_set_data failed for sequence " + std::to_string(seq) + ": " + log_take_errors();
        return false;
    }
    if (keep >= 0) llama_memory_seq_rm(mem, seq, keep, -1);
    return true;
}

// seqSave(): the sequence's cells copied into bytes the SeqState will own
struct save_job : context_job {
    int32_t                              seq;
    std::shared_ptr<std::vector<uint8_t>> bytes;
    std::string                          error;

    save_job(Napi::Object self_obj, Context * c, int32_t seq) : context_job(self_obj, c), seq(seq) {}

    void run() override {
        if (!try_run([&] { save(); }, error) && error.empty()) error = "saving the sequence failed";
    }

    void save() {
        auto out = std::make_shared<std::vector<uint8_t>>();
        if (read_seq_state(c->ctx, seq, *out, error)) bytes = std::move(out);
    }

    void settle(Napi::Env env) override {
        Napi::HandleScope scope(env);
        c->busy = false;
        if (!bytes) {
            deferred.Reject(make_error(env, "state_save_failed", error).Value());
            return;
        }
        deferred.Resolve(SeqState::make(env, std::move(bytes)));
    }
};

// seqRestore(): a saved state put back into a sequence (replacing its cells), then cut to `keep` positions
struct restore_job : context_job {
    int32_t         seq;
    seq_state_bytes bytes;
    int32_t         keep;
    int32_t         n_pos = 0;
    std::string     error;

    restore_job(Napi::Object self_obj, Context * c, int32_t seq, seq_state_bytes bytes, int32_t keep)
        : context_job(self_obj, c), seq(seq), bytes(std::move(bytes)), keep(keep) {}

    void run() override {
        if (!try_run([&] { restore(); }, error) && error.empty()) error = "restoring the sequence failed";
    }

    void restore() {
        if (!write_seq_state(c->ctx, seq, bytes->data(), bytes->size(), keep, error)) return;
        n_pos = llama_memory_seq_pos_max(llama_get_memory(c->ctx), seq) + 1;
    }

    void settle(Napi::Env env) override {
        c->busy = false;
        if (!error.empty()) {
            deferred.Reject(make_error(env, "state_restore_failed", error).Value());
            return;
        }
        deferred.Resolve(Napi::Number::New(env, n_pos));
    }
};

static void step_done(Napi::Env env, Napi::Function fn, Context * c, context_job * job);

using step_done_fn = Napi::TypedThreadSafeFunction<Context, context_job, step_done>;

struct Context::step_runner {
    step_done_fn  done;   // unref'd while idle so an idle context does not keep Node alive
    decode_thread thread;
};

static void step_done(Napi::Env env, Napi::Function /*fn*/, Context * c, context_job * job) {
    if (env == nullptr) return; // the environment is being torn down; the job's references die with it
    c->runner->done.Unref(env);
    std::string error;
    if (!try_run([&] { job->settle(env); }, error)) {
        c->busy = false;
        job->deferred.Reject(make_error(env, "internal_error", "a decode-thread job could not report: " + error).Value());
    }
    delete job;
}

Napi::Value Context::create(const Napi::CallbackInfo & info) {
    return guard_js(info.Env(), [&] { return create_impl(info); });
}

Napi::Value Context::create_impl(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    Napi::Object model_obj = info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object();
    if (model_obj.IsEmpty() || !model_obj.InstanceOf(addon_data(env)->model_ctor.Value())) {
        Napi::TypeError::New(env, "createContext needs a Model").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    Model * m = Model::Unwrap(model_obj);
    if (!m->check_alive(env)) return env.Undefined();
    Napi::Object opts = info[1].IsObject() ? info[1].As<Napi::Object>() : Napi::Object::New(env);
    std::string missing;
    llama_context_params params = context_params_from(opts, missing);
    if (!missing.empty()) return throw_error(env, "invalid_options", "createContext needs " + missing);
    if (params.type_k == GGML_TYPE_COUNT || params.type_v == GGML_TYPE_COUNT) {
        return throw_error(env, "invalid_options", "typeK and typeV must be f16, q8_0 or q4_0");
    }
    if (params.n_seq_max < 1 || params.n_seq_max > llama_max_parallel_sequences()) {
        return throw_error(env, "invalid_options", "nSeqMax must be between 1 and " + std::to_string(llama_max_parallel_sequences()));
    }
    auto * worker = new create_context_worker(env, m->handle, params, &addon_data(env)->context_ctor, false);
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
}

Napi::Function Context::define(Napi::Env env) {
    return DefineClass(env, "Context", {
        InstanceMethod<&Context::guarded<&Context::facts>>("facts"),
        InstanceMethod<&Context::guarded<&Context::set_sampler>>("setSampler"),
        InstanceMethod<&Context::guarded<&Context::seq_remove>>("seqRemove"),
        InstanceMethod<&Context::guarded<&Context::seq_copy>>("seqCopy"),
        InstanceMethod<&Context::guarded<&Context::seq_range>>("seqRange"),
        InstanceMethod<&Context::guarded<&Context::clear>>("clear"),
        InstanceMethod<&Context::guarded<&Context::step>>("step"),
        InstanceMethod<&Context::guarded<&Context::seq_save>>("seqSave"),
        InstanceMethod<&Context::guarded<&Context::seq_restore>>("seqRestore"),
        InstanceMethod<&Context::guarded<&Context::memory>>("memory"),
        InstanceMethod<&Context::guarded<&Context::set_threads>>("setThreads"),
        InstanceMethod<&Context::guarded<&Context::dispose>>("dispose"),
    });
}

Context::Context(const Napi::CallbackInfo & info) : Napi::ObjectWrap<Context>(info) {
    if (!info[0].IsExternal() || !info[1].IsExternal()) {
        Napi::TypeError::New(info.Env(), "Context objects come from createContext()").ThrowAsJavaScriptException();
        return;
    }
    ctx       = info[0].As<Napi::External<llama_context>>().Data();
    model     = *info[1].As<Napi::External<std::shared_ptr<model_handle>>>().Data();
    n_batch   = (int32_t) llama_n_batch(ctx);
    n_seq_max = (int32_t) llama_n_seq_max(ctx);
    // llama.cpp gives each of n_seq_max streams n_ctx / n_seq_max cells when the cache is not unified
    kv_unified = n_seq_max == 1 || llama_n_ctx_seq(ctx) == llama_n_ctx(ctx);
    samplers.resize(n_seq_max);
    batch = llama_batch_init(n_batch, 0, 1);
    // persistent pools, as llama-server attaches them: without, ggml makes a new pool for every graph
    const int32_t n_threads = llama_n_threads(ctx), n_threads_batch = llama_n_threads_batch(ctx);
    n_threads_max       = n_threads;
    n_threads_batch_max = n_threads_batch;
    ggml_threadpool_params tpp = ggml_threadpool_params_default(n_threads);
    ggml_threadpool_params tpp_batch = ggml_threadpool_params_default(n_threads_batch);
    if (!ggml_threadpool_params_match(&tpp, &tpp_batch)) {
        pool_batch = ggml_threadpool_new(&tpp_batch);
        tpp.paused = true;
    }
    pool = ggml_threadpool_new(&tpp);
    if (pool) llama_attach_threadpool(ctx, pool, pool_batch ? pool_batch : pool);
    runner = std::make_unique<step_runner>();
    runner->done = step_done_fn::New(info.Env(), "hearth.step", 0, 1, this);
    runner->done.Unref(info.Env());
}

Context::~Context() {
    release();
}

void Context::release() {
    if (!ctx) return;
    step_done_fn done = runner->done;
    runner.reset(); // joins the decode thread (idle: nothing is released while a step is in flight)
    done.Release();
    samplers.clear();
    llama_batch_free(batch);
    batch = {};
    llama_free(ctx);
    ctx = nullptr;
    if (pool) ggml_threadpool_free(pool);
    if (pool_batch) ggml_threadpool_free(pool_batch);
    pool = pool_batch = nullptr;
    model->n_contexts--;
    model.reset();
}

bool Context::check_idle(Napi::Env env) {
    if (!ctx) {
        throw_error(env, "context_disposed", "the context was disposed");
        return false;
    }
    if (busy) {
        throw_error(env, "context_busy", "a decode step is in flight on this context");
        return false;
    }
    return true;
}

bool Context::check_seq(Napi::Env env, const Napi::Value & v, int32_t & seq) {
    if (!v.IsNumber()) {
        Napi::TypeError::New(env, "sequence id must be a number").ThrowAsJavaScriptException();
        return false;
    }
    seq = v.As<Napi::Number>().Int32Value();
    if (seq < 0 || seq >= n_seq_max) {
        throw_error(env, "invalid_sequence", "sequence id " + std::to_string(seq) + " is outside 0.." + std::to_string(n_seq_max - 1));
        return false;
    }
    return true;
}

Napi::Value Context::facts(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!ctx) return throw_error(env, "context_disposed", "the context was disposed");
    Napi::Object o = Napi::Object::New(env);
    o.Set("nCtx", llama_n_ctx(ctx));
    o.Set("nCtxSeq", llama_n_ctx_seq(ctx));
    o.Set("nBatch", llama_n_batch(ctx));
    o.Set("nUbatch", llama_n_ubatch(ctx));
    o.Set("nSeqMax", llama_n_seq_max(ctx));
    o.Set("nThreads", llama_n_threads(ctx));
    o.Set("nThreadsBatch", llama_n_threads_batch(ctx));
    o.Set("kvUnified", kv_unified);
    return o;
}

// setSampler(seq, params | null, promptTokens?: Int32Array): params as in lib/native.ts SamplerParams (with
// `chat`, the grammar, triggers, generation prompt and thinking tags of a ChatTemplates.apply() result);
// promptTokens are fed to the repetition penalties.
Napi::Value Context::set_sampler(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    int32_t seq;
    if (!check_idle(env) || !check_seq(env, info[0], seq)) return env.Undefined();
    if (!info[1].IsObject()) {
        samplers[seq].reset();
        return env.Undefined();
    }
    Napi::Object o = info[1].As<Napi::Object>();
    // every number comes from lib/params.ts (toNativeSampler), which owns the defaults
    required_fields r{o, {}};
    sampler_params p;
    p.temperature       = (float) r.num("temperature");
    p.top_k             = r.int32("topK");
    p.top_p             = (float) r.num("topP");
    p.min_p             = (float) r.num("minP");
    p.repeat_penalty    = (float) r.num("repeatPenalty");
    p.repeat_last_n     = r.int32("repeatLastN");
    p.presence_penalty  = (float) r.num("presencePenalty");
    p.frequency_penalty = (float) r.num("frequencyPenalty");
    r.num("seed");
    if (r.missing.empty()) p.seed = (uint32_t) o.Get("seed").As<Napi::Number>().Int64Value(); // modulo 2^32; a double cast would be UB
    p.logprobs          = r.flag("logprobs");
    p.n_top_logprobs    = std::max(0, std::min(r.int32("topLogprobs"), 20));
    if (!r.missing.empty()) return throw_error(env, "invalid_parameter", "setSampler needs " + r.missing);
    p.grammar           = opt_str(o, "grammar", "");
    Napi::Value bias = o.Get("logitBias");
    if (bias.IsTypedArray()) {
        // Float32Array of [token, bias, token, bias, ...]
        Napi::Float32Array b = bias.As<Napi::Float32Array>();
        int32_t n_vocab = llama_vocab_n_tokens(model->vocab);
        for (size_t i = 0; i + 1 < b.ElementLength(); i += 2) {
            int32_t tok = (int32_t) b[i];
            if (tok < 0 || tok >= n_vocab) {
                return throw_error(env, "invalid_token", "logit_bias token " + std::to_string(tok) + " is outside the vocabulary");
            }
            p.logit_bias.push_back({tok, b[i + 1]});
        }
    }
    Napi::Value chat = o.Get("chat");
    if (!chat.IsUndefined() && !chat.IsNull()) {
        std::string chat_error;
        if (!chat.IsObject() || !chat_sampler_read(chat.As<Napi::Object>(), p.chat, chat_error)) {
            return throw_error(env, "invalid_parameter", chat_error.empty() ? "chat must be an object" : chat_error);
        }
        p.has_chat = true;
    }
    p.reasoning_budget         = std::max(-1, opt_int(o, "reasoningBudget", -1));
    p.reasoning_budget_message = opt_str(o, "reasoningBudgetMessage", "");
    std::string error;
    std::unique_ptr<seq_sampler> s = sampler_init(p, model->model, (int32_t) llama_n_ctx(ctx), error);
    if (!s) return throw_error(env, "invalid_grammar", error);
    if (info[2].IsTypedArray()) {
        std::vector<int32_t> prompt;
        if (!read_i32_array(info[2], prompt, "promptTokens")) return env.Undefined();
        sampler_accept_prompt(*s, prompt.data(), prompt.size());
    }
    samplers[seq] = std::move(s);
    return env.Undefined();
}

// seqRemove(seq, p0 = -1, p1 = -1) -> boolean: drops the sequence's cells in [p0, p1) (all by default)
Napi::Value Context::seq_remove(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    int32_t seq;
    if (!check_idle(env) || !check_seq(env, info[0], seq)) return env.Undefined();
    int32_t p0 = info[1].IsNumber() ? info[1].As<Napi::Number>().Int32Value() : -1;
    int32_t p1 = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : -1;
    return Napi::Boolean::New(env, llama_memory_seq_rm(llama_get_memory(ctx), seq, p0, p1));
}

// seqCopy(src, dst, p0 = -1, p1 = -1): dst gets src's cells in [p0, p1). In a unified cache they are shared,
// not copied. Across streams (kvUnified false) only a prefix can be copied (p0 <= 0), and dst's cells are
// replaced: see copy_across_streams().
Napi::Value Context::seq_copy(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    int32_t src, dst;
    if (!check_idle(env) || !check_seq(env, info[0], src) || !check_seq(env, info[1], dst)) return env.Undefined();
    int32_t p0 = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : -1;
    int32_t p1 = info[3].IsNumber() ? info[3].As<Napi::Number>().Int32Value() : -1;
    if (kv_unified || src == dst) {
        llama_memory_seq_cp(llama_get_memory(ctx), src, dst, p0, p1);
        return env.Undefined();
    }
    if (p0 > 0) return throw_error(env, "invalid_options", "across KV streams only a prefix can be copied (p0 must be 0 or -1)");
    std::string error;
    if (!copy_across_streams(src, dst, p1, error)) return throw_error(env, "state_restore_failed", error);
    return env.Undefined();
}

// JS thread, idle. llama_memory_seq_cp across streams (llama-kv-cache.cpp) copies whole sequences only, copies
// the source stream's entire buffer (every cell of it, in every layer, used or not) and does so lazily, at the
// start of the next llama_decode: a save or restore of either stream before then would read or be overwritten
// by stale data. Copying the source's used cells through the per-sequence state instead is immediate and moves
// only what the sequence holds (twice: out to the scratch buffer, into dst); measured in DEVELOPERS.md.
bool Context::copy_across_streams(int32_t src, int32_t dst, int32_t n, std::string & error) {
    const bool ok = read_seq_state(ctx, src, copy_scratch, error) &&
                    write_seq_state(ctx, dst, copy_scratch.data(), copy_scratch.size(), n, error);
    // a large scratch buffer is not kept between copies
    if (copy_scratch.capacity() > (64u << 20)) std::vector<uint8_t>().swap(copy_scratch);
    return ok;
}

// seqRange(seq) -> [minPos, maxPos], [-1, -1] when the sequence is empty
Napi::Value Context::seq_range(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    int32_t seq;
    if (!check_idle(env) || !check_seq(env, info[0], seq)) return env.Undefined();
    llama_memory_t mem = llama_get_memory(ctx);
    Napi::Array out = Napi::Array::New(env, 2);
    out[0u] = Napi::Number::New(env, llama_memory_seq_pos_min(mem, seq));
    out[1u] = Napi::Number::New(env, llama_memory_seq_pos_max(mem, seq));
    return out;
}

Napi::Value Context::clear(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!check_idle(env)) return env.Undefined();
    llama_memory_clear(llama_get_memory(ctx), true);
    for (auto & s : samplers) s.reset();
    return env.Undefined();
}

// step(tokens, positions, seqIds, sampleAt, media?) -> Promise<StepResult>
//   tokens/positions/seqIds: Int32Array of the same length (at most nBatch), one entry per token;
//   sampleAt: Int32Array of batch indices whose logits are sampled with their sequence's sampler;
//   media: [{seq, pos, chunk, embeddings}] (media.h), decoded before the tokens: a sequence's tokens in the same
//   step must come after its media.
Napi::Value Context::step(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!check_idle(env)) return env.Undefined();
    // validated before the job (and its promise) exists: a promise never settled would leak in node
    std::vector<int32_t> tokens, pos, seqs, sample_at;
    if (!read_i32_array(info[0], tokens, "tokens") || !read_i32_array(info[1], pos, "positions") ||
        !read_i32_array(info[2], seqs, "seqIds") || !read_i32_array(info[3], sample_at, "sampleAt")) {
        return env.Undefined();
    }
    const size_t n = tokens.size();
    if (pos.size() != n || seqs.size() != n) {
        return throw_error(env, "invalid_batch", "tokens, positions and seqIds must have the same length");
    }
    if ((int32_t) n > n_batch) {
        return throw_error(env, "invalid_batch", "batch of " + std::to_string(n) + " tokens exceeds nBatch " + std::to_string(n_batch));
    }
    const int32_t n_vocab = llama_vocab_n_tokens(model->vocab);
    for (size_t i = 0; i < n; i++) {
        if (tokens[i] < 0 || tokens[i] >= n_vocab) return throw_error(env, "invalid_token", "token id " + std::to_string(tokens[i]) + " is outside the vocabulary");
        if (seqs[i] < 0 || seqs[i] >= n_seq_max) return throw_error(env, "invalid_sequence", "sequence id " + std::to_string(seqs[i]) + " is out of range");
    }
    std::vector<bool> sampled(n_seq_max, false);
    for (int32_t idx : sample_at) {
        if (idx < 0 || (size_t) idx >= n) return throw_error(env, "invalid_batch", "sampleAt index " + std::to_string(idx) + " is outside the batch");
        // llama.cpp asserts (aborts the process) past the outputs reserved: one per sequence
        if (sampled[seqs[idx]]) return throw_error(env, "invalid_batch", "sampleAt has two positions of sequence " + std::to_string(seqs[idx]) + ": a step samples each sequence at most once");
        sampled[seqs[idx]] = true;
    }
    std::vector<media_input> media;
    if (!media_read_inputs(env, info[4], n_seq_max, model->model, media)) return env.Undefined();
    auto job = std::make_unique<step_job>(info.This().As<Napi::Object>(), this);
    job->media     = std::move(media);
    job->tokens    = std::move(tokens);
    job->pos       = std::move(pos);
    job->seqs      = std::move(seqs);
    job->sample_at = std::move(sample_at);
    Napi::Promise promise = job->deferred.Promise();
    post(env, std::move(job));
    return promise;
}

void Context::post(Napi::Env env, std::unique_ptr<context_job> job) {
    busy = true;
    runner->done.Ref(env);
    step_runner * r = runner.get();
    context_job * w = job.release(); // step_done deletes it
    r->thread.post([r, w] {
        w->run();
        r->done.NonBlockingCall(w);
    });
}

// seqSave(seq) -> Promise<SeqState>: the sequence's cells (positions, K and V of every layer) in host memory
Napi::Value Context::seq_save(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    int32_t seq;
    if (!check_idle(env) || !check_seq(env, info[0], seq)) return env.Undefined();
    auto job = std::make_unique<save_job>(info.This().As<Napi::Object>(), this, seq);
    Napi::Promise promise = job->deferred.Promise();
    post(env, std::move(job));
    return promise;
}

// seqRestore(seq, state, keep = -1) -> Promise<number>: replaces the sequence's cells with a state saved from
// this context, keeps positions [0, keep) (all when keep < 0) and resolves with the sequence's length. Rejects
// with state_restore_failed (the sequence is then empty) when its stream has no room or the state is not one.
Napi::Value Context::seq_restore(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    int32_t seq;
    if (!check_idle(env) || !check_seq(env, info[0], seq)) return env.Undefined();
    SeqState * state = info[1].IsObject() && info[1].As<Napi::Object>().InstanceOf(addon_data(env)->seq_state_ctor.Value())
                           ? SeqState::Unwrap(info[1].As<Napi::Object>())
                           : nullptr;
    if (!state) {
        Napi::TypeError::New(env, "seqRestore needs a SeqState from seqSave()").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    if (!state->bytes) return throw_error(env, "state_restore_failed", "the saved state was disposed");
    const int32_t keep = info[2].IsNumber() ? info[2].As<Napi::Number>().Int32Value() : -1;
    auto job = std::make_unique<restore_job>(info.This().As<Napi::Object>(), this, seq, state->bytes, keep);
    Napi::Promise promise = job->deferred.Promise();
    post(env, std::move(job));
    return promise;
}

// memory() -> { model, context, compute, host, hostModel } bytes (memory-use.h); between steps only
Napi::Value Context::memory(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!check_idle(env)) return env.Undefined();
    return memory_use_object(env, ctx);
}

// setThreads(n, nBatch): threads for the next steps (generation, prompt batches), between steps only. Each is
// clamped to 1 .. the count the context was created with: the persistent pools have that many workers, and an
// OpenMP team larger than its pool would index past it. Returns the counts now in use as [n, nBatch].
Napi::Value Context::set_threads(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!check_idle(env)) return env.Undefined();
    if (!info[0].IsNumber() || !info[1].IsNumber()) {
        Napi::TypeError::New(env, "setThreads needs two thread counts (generation, prompt batches)").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    const int32_t want       = info[0].As<Napi::Number>().Int32Value();
    const int32_t want_batch = info[1].As<Napi::Number>().Int32Value();
    const int32_t n       = std::max(1, std::min(want, n_threads_max));
    const int32_t n_batch_threads = std::max(1, std::min(want_batch, n_threads_batch_max));
    llama_set_n_threads(ctx, n, n_batch_threads);
    Napi::Array out = Napi::Array::New(env, 2);
    out[0u] = Napi::Number::New(env, n);
    out[1u] = Napi::Number::New(env, n_batch_threads);
    return out;
}

Napi::Value Context::dispose(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (busy) return throw_error(env, "context_busy", "a decode step is in flight on this context");
    release();
    return env.Undefined();
}
