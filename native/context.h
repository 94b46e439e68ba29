// Context: one llama_context with n_seq_max sequences (slots) and the per-slot samplers. The KV cache is either
// unified (one pool of cells shared by every sequence: a prefix can be shared between sequences without a copy,
// but every decoded token attends over the cells of all sequences) or split into one stream per sequence
// (kvUnified false: n_ctx / n_seq_max cells each; a sequence attends over its own cells only). JS drives it one
// decode step at a time: step() takes the tokens of every active sequence (prompt chunks and next tokens mixed),
// runs llama_decode and the samplers on its decode thread, and settles with the sampled tokens as typed arrays.
//
// Step results, per sampled entry k (one per sampleAt index): status[k] is
//   0 ok:      tokens[k] was sampled and accepted into the sequence's sampler chain;
//   1 none:    the constraints (grammar, logit bias incl. ignore_eos's ban on end-of-generation) leave no
//              candidate, e.g. a completed grammar that only allows end-of-generation; nothing was accepted and
//              tokens[k] is -1. The sequence cannot continue: the scheduler ends it normally (finish "stop").
//   2 error:   llama.cpp failed while sampling or accepting (errors[k] says why); tokens[k] is -1 and the chain's
//              state is unspecified. The scheduler fails that sequence only.
// A token the chain rejected is never accepted. Only a failure of llama_decode itself (or an exception around
// it) fails the whole step: the promise rejects with the error code (kv_cache_full, decode_failed, ...).
//
// Saved sequences: seqSave() copies one sequence's cells to host memory (a SeqState, seq-state.h) and
// seqRestore() puts such a state back into a sequence, both as jobs on the decode thread between steps.
//
// Threading contract: steps, saves and restores run on the context's own decode thread (decode-thread.h), one
// at a time. While one is in flight (`busy`), only that thread touches the llama_context and the samplers;
// every other method throws `context_busy`. The JS scheduler therefore changes sequences and samplers only
// between them.
#pragma once

#include <napi.h>

#include "common.h"

#include "model.h"
#include "sampler.h"

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct context_job; // context.cpp: work for the decode thread

class Context : public Napi::ObjectWrap<Context> {
  public:
    static Napi::Function define(Napi::Env env);

    // createContext(model, options) -> Promise<Context>; allocates the KV cache on a worker thread.
    static Napi::Value create(const Napi::CallbackInfo & info);
    static Napi::Value create_impl(const Napi::CallbackInfo & info);

    explicit Context(const Napi::CallbackInfo & info);
    ~Context() override;

    std::shared_ptr<model_handle>             model;
    llama_context *                           ctx = nullptr;
    std::vector<std::unique_ptr<seq_sampler>> samplers; // one per sequence, null = greedy
    llama_batch                               batch = {};
    int32_t                                   n_batch = 0;
    int32_t                                   n_seq_max = 0;
    int32_t                                   n_threads_max = 0;       // the pools' sizes: setThreads never goes past them
    int32_t                                   n_threads_batch_max = 0;
    bool                                      busy = false;
    bool                                      kv_unified = true;
    std::vector<uint8_t>                      copy_scratch; // a cross-stream copy's state, reused
    struct step_runner;                                 // context.cpp: the decode thread and the way back to JS
    std::unique_ptr<step_runner>              runner;
    // persistent CPU thread pools (generation, batches), attached as llama-server attaches them; freed after ctx
    ggml_threadpool *                         pool       = nullptr;
    ggml_threadpool *                         pool_batch = nullptr;

    // every method registered with DefineClass runs through guard_js (common.h)
    template <Napi::Value (Context::*M)(const Napi::CallbackInfo &)>
    Napi::Value guarded(const Napi::CallbackInfo & info) {
        return guard_js(info.Env(), [&] { return (this->*M)(info); });
    }

  private:
    bool check_idle(Napi::Env env);
    bool check_seq(Napi::Env env, const Napi::Value & v, int32_t & seq);
    void release();
    bool copy_across_streams(int32_t src, int32_t dst, int32_t n, std::string & error);
    void post(Napi::Env env, std::unique_ptr<context_job> job);

    Napi::Value facts(const Napi::CallbackInfo & info);
    Napi::Value set_sampler(const Napi::CallbackInfo & info);
    Napi::Value seq_remove(const Napi::CallbackInfo & info);
    Napi::Value seq_copy(const Napi::CallbackInfo & info);
    Napi::Value seq_range(const Napi::CallbackInfo & info);
    Napi::Value clear(const Napi::CallbackInfo & info);
    Napi::Value step(const Napi::CallbackInfo & info);
    Napi::Value seq_save(const Napi::CallbackInfo & info);
    Napi::Value seq_restore(const Napi::CallbackInfo & info);
    Napi::Value memory(const Napi::CallbackInfo & info);
    Napi::Value set_threads(const Napi::CallbackInfo & info);
    Napi::Value dispose(const Napi::CallbackInfo & info);
};
