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
