// Projector: a multimodal projector (an mmproj GGUF through llama.cpp's mtmd library) for one loaded model,
// visible to JS as the class returned by loadProjector(). It turns media files into bitmaps, a prompt with media
// markers into chunks (token runs and media), and a media chunk into embeddings; Context::step decodes those
// embeddings into a sequence's KV cells on its decode thread (media_decode below).
//
// Threads: decode, tokenize and encode run on libuv workers, so the step loop keeps decoding while media is
// prepared. mtmd's encoder keeps its output in the mtmd_context, so encodes of one projector take turns
// (`encode_mutex`); decoding files and tokenizing are thread-safe in mtmd. The flags media_decode reads from the
// mtmd_context (M-RoPE, non-causal attention) are fixed at load, so the decode thread may read them while a
// worker encodes.
//
// Lifetime: the projector's mtmd_context and its model's weights are shared (std::shared_ptr) by the Projector
// object, every chunk it made and every step that decodes one; dispose() lets go of the object's share. A
// projector counts as a context of its model (model_handle::n_contexts), so the model is disposed after it.
//
// Errors (codes in lib/errors.ts): invalid_media (the bytes are no image or audio this build decodes, or exceed
// the pixel or sample limit), media_failed (tokenizing or encoding failed), projector_load_failed,
// projector_disposed.
#pragma once

#include <napi.h>

#include "common.h"
#include "model.h"

#include "mtmd.h"

#include <memory>
#include <mutex>
#include <string>
#include <vector>

struct projector_handle {
    mtmd_context *                ctx = nullptr;
    std::shared_ptr<model_handle> model;
    std::mutex                    encode_mutex;

    projector_handle(mtmd_context * c, std::shared_ptr<model_handle> m) : ctx(c), model(std::move(m)) {}
    projector_handle(const projector_handle &) = delete;
    projector_handle & operator=(const projector_handle &) = delete;
    ~projector_handle() { mtmd_free(ctx); }
};

// One media chunk of a tokenized prompt (owned copy), with the projector that made it.
struct media_chunk {
    std::shared_ptr<projector_handle> projector;
    mtmd::input_chunk_ptr             chunk;
};

// A media chunk's embeddings to decode into a sequence, read from a step's `media` argument on the JS thread.
struct media_input {
    std::shared_ptr<media_chunk> chunk;
    std::vector<float>           embd;
    int32_t                      seq = 0;
    int32_t                      pos = 0;
};

// JS thread. Reads step()'s optional media list: [{seq, pos, chunk, embeddings: Float32Array}]. Throws a JS
// error and returns false when an entry is malformed, its chunk comes from another model's projector, or its
// embeddings do not match the chunk.
bool media_read_inputs(Napi::Env env, const Napi::Value & v, int32_t n_seq_max, const llama_model * model, std::vector<media_input> & out);

// Decode thread: no napi. Decodes one chunk's embeddings into its sequence at its position (in n_batch pieces,
// with the projector's attention and position scheme). Returns llama_decode's code (0 ok), or -1 when the chunk
// is not media.
int32_t media_decode(llama_context * lctx, const media_input & in, int32_t n_batch);

class Projector : public Napi::ObjectWrap<Projector> {
  public:
    static Napi::Function define(Napi::Env env);

    // loadProjector(model, path, {threads, maxImageTokens?, warmup?}) -> Promise<Projector>; loads on a worker.
    static Napi::Value load(const Napi::CallbackInfo & info);
    static Napi::Value load_impl(const Napi::CallbackInfo & info);

    explicit Projector(const Napi::CallbackInfo & info);
    ~Projector() override;

    std::shared_ptr<projector_handle> handle; // empty once disposed

    template <Napi::Value (Projector::*M)(const Napi::CallbackInfo &)>
    Napi::Value guarded(const Napi::CallbackInfo & info) {
        return guard_js(info.Env(), [&] { return (this->*M)(info); });
    }

  private:
    bool check_alive(Napi::Env env) const;
    void release();

    Napi::Value facts(const Napi::CallbackInfo & info);
    Napi::Value decode(const Napi::CallbackInfo & info);
    Napi::Value tokenize(const Napi::CallbackInfo & info);
    Napi::Value encode(const Napi::CallbackInfo & info);
    Napi::Value dispose(const Napi::CallbackInfo & info);
};
