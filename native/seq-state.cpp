#include "seq-state.h"

#include "addon.h"
#include "common.h"

Napi::Function SeqState::define(Napi::Env env) {
    return DefineClass(env, "SeqState", {
        InstanceAccessor<&SeqState::guarded<&SeqState::byte_length>>("byteLength"),
        InstanceMethod<&SeqState::guarded<&SeqState::dispose>>("dispose"),
    });
}

Napi::Object SeqState::make(Napi::Env env, seq_state_bytes bytes) {
    auto * held = new seq_state_bytes(std::move(bytes));
    // the constructor takes its own copy of the pointer; the External only carries it there
    Napi::Object obj = addon_data(env)->seq_state_ctor.New({Napi::External<seq_state_bytes>::New(env, held)});
    delete held;
    return obj;
}

SeqState::SeqState(const Napi::CallbackInfo & info) : Napi::ObjectWrap<SeqState>(info) {
    if (!info[0].IsExternal()) {
        Napi::TypeError::New(info.Env(), "SeqState objects come from Context.seqSave()").ThrowAsJavaScriptException();
        return;
    }
    bytes = *info[0].As<Napi::External<seq_state_bytes>>().Data();
    // the garbage collector should know what an unreleased state costs
    if (bytes) Napi::MemoryManagement::AdjustExternalMemory(info.Env(), (int64_t) bytes->size());
}

SeqState::~SeqState() {
    // finalizers may not call into JS; the external-memory hint is only given back on dispose()
    bytes.reset();
}

void SeqState::release(Napi::Env env) {
    if (!bytes) return;
    Napi::MemoryManagement::AdjustExternalMemory(env, -(int64_t) bytes->size());
    bytes.reset();
}

Napi::Value SeqState::byte_length(const Napi::CallbackInfo & info) {
    return Napi::Number::New(info.Env(), bytes ? (double) bytes->size() : 0);
}

Napi::Value SeqState::dispose(const Napi::CallbackInfo & info) {
    release(info.Env());
    return info.Env().Undefined();
}
