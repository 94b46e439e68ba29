#include "media.h"

#include "addon.h"

#include "mtmd-helper.h"
#include "stb/stb_image.h" // declarations only: the implementation is compiled into mtmd-helper

#include <algorithm>
#include <cstring>

// Tags that tell hearth's externals from any other object passed back in (napi_type_tag, N-API 8).
static const napi_type_tag k_bitmap_tag = {0x6865617274682d62ULL, 0x69746d61702d7631ULL};
static const napi_type_tag k_chunk_tag  = {0x6865617274682d63ULL, 0x68756e6b2d763101ULL};

struct media_bitmap {
    mtmd::bitmap_ptr ptr;
};

template <typename T>
static Napi::External<std::shared_ptr<T>> make_external(Napi::Env env, std::shared_ptr<T> value, const napi_type_tag & tag) {
    auto ext = Napi::External<std::shared_ptr<T>>::New(env, new std::shared_ptr<T>(std::move(value)),
                                                       [](Napi::Env, std::shared_ptr<T> * p) { delete p; });
    ext.TypeTag(&tag);
    return ext;
}

template <typename T>
static std::shared_ptr<T> read_external(const Napi::Value & v, const napi_type_tag & tag) {
    if (!v.IsExternal()) return nullptr;
    Napi::External<std::shared_ptr<T>> ext = v.As<Napi::External<std::shared_ptr<T>>>();
    if (!ext.CheckTypeTag(&tag)) return nullptr;
    return *ext.Data();
}

// ---- loading ----

class media_load_projector_worker : public Napi::AsyncWorker {
  public:
    media_load_projector_worker(Napi::Env env, std::shared_ptr<model_handle> model, std::string path, mtmd_context_params params,
                          std::string marker)
        : Napi::AsyncWorker(env), deferred(Napi::Promise::Deferred::New(env)), model(std::move(model)), path(std::move(path)),
          params(params), marker(std::move(marker)) {
        this->model->n_contexts++; // counted from now so the model cannot be disposed under the worker
    }

    ~media_load_projector_worker() override {
        if (ctx) mtmd_free(ctx);
    }

    Napi::Promise promise() { return deferred.Promise(); }

    // worker thread: no napi
    void Execute() override {
        std::string error;
        if (!try_run([&] { run(); }, error)) SetError("failed to load the projector: " + error);
    }

    void run() {
        log_take_errors();
        params.media_marker = marker.c_str();
        ctx = mtmd_init_from_file(path.c_str(), model->model, params);
        if (!ctx) {
            std::string details = log_take_errors();
            SetError("cannot load the projector " + path + (details.empty() ? std::string() : ": " + details));
        }
    }

    void OnOK() override {
        Napi::Env env = Env();
        auto handle = std::make_shared<projector_handle>(ctx, model);
        ctx = nullptr;
        Napi::Object obj = addon_data(env)->projector_ctor.New({Napi::External<std::shared_ptr<projector_handle>>::New(env, &handle)});
        deferred.Resolve(obj);
    }

    void OnError(const Napi::Error & err) override {
        model->n_contexts--;
        deferred.Reject(make_error(Env(), "projector_load_failed", err.Message()).Value());
    }

  private:
    Napi::Promise::Deferred       deferred;
    std::shared_ptr<model_handle> model;
    std::string                   path;
    mtmd_context_params           params;
    std::string                   marker;
    mtmd_context *                ctx = nullptr;
};

Napi::Value Projector::load(const Napi::CallbackInfo & info) {
    return guard_js(info.Env(), [&] { return load_impl(info); });
}

Napi::Value Projector::load_impl(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    Napi::Object model_obj = info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object();
    if (model_obj.IsEmpty() || !model_obj.InstanceOf(addon_data(env)->model_ctor.Value())) {
        Napi::TypeError::New(env, "loadProjector needs a Model").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    if (!info[1].IsString()) {
        Napi::TypeError::New(env, "loadProjector needs a file path").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    Model * m = Model::Unwrap(model_obj);
    if (!m->check_alive(env)) return env.Undefined();
    Napi::Object opts = info[2].IsObject() ? info[2].As<Napi::Object>() : Napi::Object::New(env);
    // every option comes from lib/media.ts, which owns their defaults
    required_fields r{opts, {}};
    mtmd_context_params p = mtmd_context_params_default();
    p.print_timings    = false;
    p.n_threads        = std::max(1, r.int32("threads"));
    p.warmup           = r.flag("warmup");
    p.image_max_tokens = r.int32("maxImageTokens");
    p.use_gpu          = r.flag("gpu");
    std::string marker = r.str("marker");
    if (!r.missing.empty()) return throw_error(env, "invalid_options", "loadProjector needs " + r.missing);
    auto * worker = new media_load_projector_worker(env, m->handle, info[1].As<Napi::String>().Utf8Value(), p, marker);
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
}

// ---- the object ----

Napi::Function Projector::define(Napi::Env env) {
    return DefineClass(env, "Projector", {
        InstanceMethod<&Projector::guarded<&Projector::facts>>("facts"),
        InstanceMethod<&Projector::guarded<&Projector::decode>>("decode"),
        InstanceMethod<&Projector::guarded<&Projector::tokenize>>("tokenize"),
        InstanceMethod<&Projector::guarded<&Projector::encode>>("encode"),
        InstanceMethod<&Projector::guarded<&Projector::dispose>>("dispose"),
    });
}

Projector::Projector(const Napi::CallbackInfo & info) : Napi::ObjectWrap<Projector>(info) {
    if (!info[0].IsExternal()) {
        Napi::TypeError::New(info.Env(), "Projector objects come from loadProjector()").ThrowAsJavaScriptException();
        return;
    }
    handle = *info[0].As<Napi::External<std::shared_ptr<projector_handle>>>().Data();
}

Projector::~Projector() {
    release();
}

void Projector::release() {
    if (!handle) return;
    handle->model->n_contexts--;
    handle.reset(); // chunks still alive keep the mtmd_context until they are collected
}

bool Projector::check_alive(Napi::Env env) const {
    if (handle) return true;
    throw_error(env, "projector_disposed", "the projector was disposed");
    return false;
}

Napi::Value Projector::facts(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!check_alive(env)) return env.Undefined();
    mtmd_context * ctx = handle->ctx;
    Napi::Object o = Napi::Object::New(env);
    o.Set("vision", mtmd_support_vision(ctx));
    o.Set("audio", mtmd_support_audio(ctx));
    o.Set("audioSampleRate", mtmd_get_audio_sample_rate(ctx));
    o.Set("marker", mtmd_get_marker(ctx));
    o.Set("nEmbd", llama_model_n_embd_inp(handle->model->model));
    o.Set("mrope", mtmd_decode_use_mrope(ctx));
    o.Set("nonCausal", mtmd_decode_use_non_causal(ctx, nullptr));
    return o;
}

Napi::Value Projector::dispose(const Napi::CallbackInfo & info) {
    release();
    return info.Env().Undefined();
}

// ---- decode: file bytes to a bitmap ----

class media_decode_worker : public Napi::AsyncWorker {
  public:
    media_decode_worker(Napi::Env env, std::shared_ptr<projector_handle> p, std::vector<uint8_t> bytes, double max_pixels)
        : Napi::AsyncWorker(env), deferred(Napi::Promise::Deferred::New(env)), projector(std::move(p)), bytes(std::move(bytes)),
          max_pixels(max_pixels) {}

    Napi::Promise promise() { return deferred.Promise(); }

    // worker thread: no napi
    void Execute() override {
        std::string error;
        if (!try_run([&] { run(); }, error)) SetError(error);
    }

    void run() {
        log_take_errors();
        // an image's size is read from its header first: a small file can declare a huge image (a pixel bomb)
        int nx = 0, ny = 0, nc = 0;
        if (stbi_info_from_memory(bytes.data(), (int) bytes.size(), &nx, &ny, &nc) && (double) nx * (double) ny > max_pixels) {
            SetError("the image is " + std::to_string(nx) + "x" + std::to_string(ny) + " pixels, more than the limit of " +
                     std::to_string((long long) max_pixels));
            return;
        }
        mtmd_helper_bitmap_wrapper w = mtmd_helper_bitmap_init_from_buf(projector->ctx, bytes.data(), bytes.size(), false,
                                                                        mtmd_helper_init_opt_default());
        if (!w.bitmap) {
            const char * why = stbi_failure_reason();
            std::string details = log_take_errors();
            SetError(std::string("the media cannot be decoded") + (why ? std::string(" (") + why + ")" : "") +
                     (details.empty() ? "" : ": " + details));
            return;
        }
        result = std::make_shared<media_bitmap>();
        result->ptr.reset(w.bitmap);
    }

    void OnOK() override {
        Napi::Env env = Env();
        mtmd_bitmap * b = result->ptr.get();
        Napi::Object o = Napi::Object::New(env);
        const char * id = mtmd_bitmap_get_id(b);
        o.Set("id", id ? id : "");
        o.Set("audio", mtmd_bitmap_is_audio(b));
        o.Set("nx", mtmd_bitmap_get_nx(b));
        o.Set("ny", mtmd_bitmap_get_ny(b));
        o.Set("handle", make_external(env, result, k_bitmap_tag));
        deferred.Resolve(o);
    }

    void OnError(const Napi::Error & err) override {
        deferred.Reject(make_error(Env(), "invalid_media", err.Message()).Value());
    }

  private:
    Napi::Promise::Deferred           deferred;
    std::shared_ptr<projector_handle> projector;
    std::vector<uint8_t>              bytes;
    double                            max_pixels;
    std::shared_ptr<media_bitmap>     result;
};

// decode(bytes: Uint8Array, maxPixels) -> Promise<{id, audio, nx, ny, handle}>; id is the SHA-256 of the bytes
Napi::Value Projector::decode(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!check_alive(env)) return env.Undefined();
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
        Napi::TypeError::New(env, "decode needs a Uint8Array").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    Napi::Uint8Array a = info[0].As<Napi::Uint8Array>();
    if (a.ElementLength() == 0 || a.ElementLength() > (size_t) INT32_MAX) {
        return throw_error(env, "invalid_media", "the media is empty or larger than 2 GiB");
    }
    double max_pixels = info[1].IsNumber() ? info[1].As<Napi::Number>().DoubleValue() : 64.0 * 1024 * 1024;
    std::vector<uint8_t> bytes(a.Data(), a.Data() + a.ElementLength());
    auto * worker = new media_decode_worker(env, handle, std::move(bytes), max_pixels);
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
}

// ---- tokenize: a prompt with markers and its bitmaps to chunks ----

class media_tokenize_worker : public Napi::AsyncWorker {
  public:
    media_tokenize_worker(Napi::Env env, std::shared_ptr<projector_handle> p, std::string text, bool parse_special,
                    std::vector<std::shared_ptr<media_bitmap>> bitmaps)
        : Napi::AsyncWorker(env), deferred(Napi::Promise::Deferred::New(env)), projector(std::move(p)), text(std::move(text)),
          parse_special(parse_special), bitmaps(std::move(bitmaps)), chunks(mtmd_input_chunks_init()) {}

    Napi::Promise promise() { return deferred.Promise(); }

    // worker thread: no napi
    void Execute() override {
        std::string error;
        if (!try_run([&] { run(); }, error)) SetError(error);
    }

    void run() {
        log_take_errors();
        mtmd_input_text in = {text.c_str(), text.size(), /* add_special */ false, parse_special};
        std::vector<const mtmd_bitmap *> ptrs;
        for (auto & b : bitmaps) ptrs.push_back(b->ptr.get());
        int32_t rc = mtmd_tokenize(projector->ctx, chunks.get(), &in, ptrs.data(), ptrs.size());
        if (rc != 0) {
            std::string details = log_take_errors();
            SetError((rc == 1 ? "the prompt's media markers do not match its " + std::to_string(ptrs.size()) + " media"
                              : "the media could not be prepared for the projector") +
                     (details.empty() ? std::string() : ": " + details));
        }
    }

    void OnOK() override {
        Napi::Env env = Env();
        size_t n = mtmd_input_chunks_size(chunks.get());
        Napi::Array out = Napi::Array::New(env, n);
        for (size_t i = 0; i < n; i++) {
            const mtmd_input_chunk * c = mtmd_input_chunks_get(chunks.get(), i);
            mtmd_input_chunk_type type = mtmd_input_chunk_get_type(c);
            if (type == MTMD_INPUT_CHUNK_TYPE_TEXT) {
                size_t n_tokens = 0;
                const llama_token * t = mtmd_input_chunk_get_tokens_text(c, &n_tokens);
                Napi::Int32Array a = Napi::Int32Array::New(env, n_tokens);
                if (n_tokens) memcpy(a.Data(), t, n_tokens * sizeof(int32_t));
                out.Set((uint32_t) i, a);
                continue;
            }
            auto owned = std::make_shared<media_chunk>();
            owned->projector = projector;
            owned->chunk.reset(mtmd_input_chunk_copy(c));
            Napi::Object o = Napi::Object::New(env);
            o.Set("type", type == MTMD_INPUT_CHUNK_TYPE_IMAGE ? "image" : "audio");
            o.Set("nTokens", (double) mtmd_input_chunk_get_n_tokens(c));
            o.Set("nPos", (double) mtmd_input_chunk_get_n_pos(c));
            const char * id = mtmd_input_chunk_get_id(c);
            o.Set("id", id ? id : "");
            o.Set("handle", make_external(env, owned, k_chunk_tag));
            out.Set((uint32_t) i, o);
        }
        deferred.Resolve(out);
    }

    void OnError(const Napi::Error & err) override {
        deferred.Reject(make_error(Env(), "invalid_media", err.Message()).Value());
    }

  private:
    Napi::Promise::Deferred                    deferred;
    std::shared_ptr<projector_handle>          projector;
    std::string                                text;
    bool                                       parse_special;
    std::vector<std::shared_ptr<media_bitmap>> bitmaps;
    mtmd::input_chunks_ptr                     chunks;
};

// tokenize(text, bitmapHandles[], parseSpecial) -> Promise<(Int32Array | {type, nTokens, nPos, id, handle})[]>
Napi::Value Projector::tokenize(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!check_alive(env)) return env.Undefined();
    if (!info[0].IsString() || !info[1].IsArray()) {
        Napi::TypeError::New(env, "tokenize needs a text and an array of bitmaps").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    Napi::Array list = info[1].As<Napi::Array>();
    std::vector<std::shared_ptr<media_bitmap>> bitmaps;
    for (uint32_t i = 0; i < list.Length(); i++) {
        auto b = read_external<media_bitmap>(list.Get(i), k_bitmap_tag);
        if (!b) {
            Napi::TypeError::New(env, "bitmap " + std::to_string(i) + " is not a handle from decode()").ThrowAsJavaScriptException();
            return env.Undefined();
        }
        bitmaps.push_back(std::move(b));
    }
    bool parse_special = info[2].IsBoolean() ? info[2].As<Napi::Boolean>().Value() : true;
    auto * worker = new media_tokenize_worker(env, handle, info[0].As<Napi::String>().Utf8Value(), parse_special, std::move(bitmaps));
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
}

// ---- encode: a media chunk to embeddings ----

class media_encode_worker : public Napi::AsyncWorker {
  public:
    media_encode_worker(Napi::Env env, std::shared_ptr<media_chunk> c)
        : Napi::AsyncWorker(env), deferred(Napi::Promise::Deferred::New(env)), chunk(std::move(c)) {}

    Napi::Promise promise() { return deferred.Promise(); }

    // worker thread: no napi
    void Execute() override {
        std::string error;
        if (!try_run([&] { run(); }, error)) SetError(error);
    }

    void run() {
        projector_handle & p = *chunk->projector;
        std::lock_guard<std::mutex> lock(p.encode_mutex); // the output buffer lives in the mtmd_context
        log_take_errors();
        const int64_t t0 = llama_time_us();
        if (mtmd_encode_chunk(p.ctx, chunk->chunk.get()) != 0) {
            std::string details = log_take_errors();
            SetError("encoding the media failed" + (details.empty() ? std::string() : ": " + details));
            return;
        }
        const size_t n = mtmd_input_chunk_get_n_tokens(chunk->chunk.get()) * (size_t) llama_model_n_embd_inp(p.model->model);
        const float * embd = mtmd_get_output_embd(p.ctx);
        embeddings.assign(embd, embd + n);
        encode_us = (double) (llama_time_us() - t0);
    }

    void OnOK() override {
        Napi::Env env = Env();
        Napi::Float32Array a = Napi::Float32Array::New(env, embeddings.size());
        if (!embeddings.empty()) memcpy(a.Data(), embeddings.data(), embeddings.size() * sizeof(float));
        Napi::Object o = Napi::Object::New(env);
        o.Set("embeddings", a);
        o.Set("encodeUs", encode_us);
        deferred.Resolve(o);
    }

    void OnError(const Napi::Error & err) override {
        deferred.Reject(make_error(Env(), "media_failed", err.Message()).Value());
    }

  private:
    Napi::Promise::Deferred      deferred;
    std::shared_ptr<media_chunk> chunk;
    std::vector<float>           embeddings;
    double                       encode_us = 0;
};

// encode(chunkHandle) -> Promise<{embeddings: Float32Array (nTokens x nEmbd), encodeUs}>
Napi::Value Projector::encode(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    if (!check_alive(env)) return env.Undefined();
    auto c = read_external<media_chunk>(info[0], k_chunk_tag);
    if (!c) {
        Napi::TypeError::New(env, "encode needs a media chunk handle from tokenize()").ThrowAsJavaScriptException();
        return env.Undefined();
    }
    auto * worker = new media_encode_worker(env, std::move(c));
    Napi::Promise promise = worker->promise();
    worker->Queue();
    return promise;
}

// ---- decoding embeddings into a context (Context::step) ----

bool media_read_inputs(Napi::Env env, const Napi::Value & v, int32_t n_seq_max, const llama_model * model, std::vector<media_input> & out) {
    if (v.IsUndefined() || v.IsNull()) return true;
    const int32_t n_embd = llama_model_n_embd_inp(model);
    if (!v.IsArray()) {
        Napi::TypeError::New(env, "media must be an array").ThrowAsJavaScriptException();
        return false;
    }
    Napi::Array list = v.As<Napi::Array>();
    for (uint32_t i = 0; i < list.Length(); i++) {
        const std::string at = "media[" + std::to_string(i) + "]";
        Napi::Value e = list.Get(i);
        if (!e.IsObject()) {
            Napi::TypeError::New(env, at + " must be an object").ThrowAsJavaScriptException();
            return false;
        }
        Napi::Object o = e.As<Napi::Object>();
        media_input in;
        in.chunk = read_external<media_chunk>(o.Get("chunk"), k_chunk_tag);
        if (!in.chunk) {
            Napi::TypeError::New(env, at + ".chunk is not a media chunk handle").ThrowAsJavaScriptException();
            return false;
        }
        if (in.chunk->projector->model->model != model) {
            throw_error(env, "invalid_batch", at + ": the chunk comes from a projector of another model");
            return false;
        }
        in.seq = opt_int(o, "seq", -1);
        in.pos = opt_int(o, "pos", -1);
        if (in.seq < 0 || in.seq >= n_seq_max) {
            throw_error(env, "invalid_sequence", at + ": sequence id " + std::to_string(in.seq) + " is out of range");
            return false;
        }
        if (in.pos < 0) {
            throw_error(env, "invalid_batch", at + ": position must be >= 0");
            return false;
        }
        Napi::Value embd = o.Get("embeddings");
        if (!embd.IsTypedArray() || embd.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
            Napi::TypeError::New(env, at + ".embeddings must be a Float32Array").ThrowAsJavaScriptException();
            return false;
        }
        Napi::Float32Array a = embd.As<Napi::Float32Array>();
        const size_t want = mtmd_input_chunk_get_n_tokens(in.chunk->chunk.get()) * (size_t) n_embd;
        if (a.ElementLength() != want) {
            throw_error(env, "invalid_batch", at + ": " + std::to_string(a.ElementLength()) + " embedding values, the chunk needs " + std::to_string(want));
            return false;
        }
        in.embd.assign(a.Data(), a.Data() + a.ElementLength());
        out.push_back(std::move(in));
    }
    return true;
}

int32_t media_decode(llama_context * lctx, const media_input & in, int32_t n_batch) {
    llama_pos new_n_past = 0;
    return mtmd_helper_decode_image_chunk(in.chunk->projector->ctx, lctx, in.chunk->chunk.get(),
                                          const_cast<float *>(in.embd.data()), in.pos, in.seq, n_batch, &new_n_past, nullptr, nullptr);
}
