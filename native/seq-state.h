// SeqState: one sequence's KV cells saved to host memory (llama_state_seq_get_data), as JS sees it: an opaque
// handle that Context.seqRestore() puts back into a sequence of the same context. The bytes live in native
// memory, not in a JS buffer: nothing is copied to or from the JS heap, a restore reads them on the decode
// thread without pinning anything, and dispose() frees them at once (a prompt cache under a memory budget
// must not wait for the garbage collector). A restore in flight holds its own reference to the bytes, so
// disposing during it is safe.
#pragma once

#include <napi.h>

#include <cstdint>
#include <memory>
#include <vector>

using seq_state_bytes = std::shared_ptr<const std::vector<uint8_t>>;

class SeqState : public Napi::ObjectWrap<SeqState> {
  public:
    static Napi::Function define(Napi::Env env);

    // JS thread. A new SeqState owning `bytes` (made by the Context after a save settles).
    static Napi::Object make(Napi::Env env, seq_state_bytes bytes);

    explicit SeqState(const Napi::CallbackInfo & info);
    ~SeqState() override;

    // empty once disposed
    seq_state_bytes bytes;

    template <Napi::Value (SeqState::*M)(const Napi::CallbackInfo &)>
    Napi::Value guarded(const Napi::CallbackInfo & info) {
        return guard_js(info.Env(), [&] { return (this->*M)(info); });
    }

  private:
    void release(Napi::Env env);
    Napi::Value byte_length(const Napi::CallbackInfo & info);
    Napi::Value dispose(const Napi::CallbackInfo & info);
};
