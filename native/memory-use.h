// What a llama_context holds in memory, as llama.cpp itself counts it (llama_get_memory_breakdown, the staging
// API llama-server's --fit uses): the weights, the context's own memory (KV cache or recurrent state) and the
// compute buffers, summed over every buffer type, and the part of the total in host (CPU) memory.
#pragma once

#include <napi.h>

#include "llama.h"

// JS thread; `ctx` must not be decoding (a compute buffer may grow during a step). Returns
// { model, context, compute, host, hostModel } in bytes: host is the part of the three in host memory, hostModel
// the part of the weights. The weights (`model`) are the same for every context made from
// one model: count them once per model. With mmap, `model` is the mapped size of the tensors in the file.
Napi::Object memory_use_object(Napi::Env env, const llama_context * ctx);

// JS thread. Hands the allocator's free memory back to the system (glibc: malloc_trim). Freed KV caches and
// compute buffers stay in glibc's arenas otherwise, since its mmap threshold grows after the first large free, so
// RSS kept climbing across model loads and unloads. Returns false where the allocator has no such call.
Napi::Value trim_heap(const Napi::CallbackInfo & info);
