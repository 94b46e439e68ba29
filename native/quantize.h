// quantize(input, output, type, threads) -> Promise<void>: llama.cpp's model quantization on a worker thread.
// type: "f16", "q8_0", "q4_0", "q4_k_m". Used by bench/make-model to write real-shaped quantised models.
#pragma once

#include <napi.h>

Napi::Value quantize(const Napi::CallbackInfo & info);
