// Per-environment addon state (one per Node worker/isolate that loads hearth.node).
#pragma once

#include <napi.h>

struct addon_state {
    Napi::FunctionReference model_ctor;
    Napi::FunctionReference context_ctor;
    Napi::FunctionReference embedder_ctor;
    Napi::FunctionReference chat_templates_ctor;
    Napi::FunctionReference chat_parser_spec_ctor;
    Napi::FunctionReference chat_parser_ctor;
    Napi::FunctionReference seq_state_ctor;
    Napi::FunctionReference projector_ctor;
};

// JS thread only.
addon_state * addon_data(Napi::Env env);
