// Module init and export table of hearth.node. Every export is typed in lib/native.ts.
#include "addon.h"

#include "chat-parser.h"
#include "chat-schema.h"
#include "chat-templates.h"
#include "common.h"
#include "context.h"
#include "embedder.h"
#include "media.h"
#include "memory-use.h"
#include "model.h"
#include "quantize.h"
#include "seq-state.h"

#include "llama.h"

addon_state * addon_data(Napi::Env env) {
    return env.GetInstanceData<addon_state>();
}

// setLogLevel(level): 0 debug, 1 info, 2 warn, 3 error (default), 4 none
static Napi::Value set_log_level(const Napi::CallbackInfo & info) {
    log_set_level(info[0].IsNumber() ? info[0].As<Napi::Number>().Int32Value() : 3);
    return info.Env().Undefined();
}

static Napi::Value system_info(const Napi::CallbackInfo & info) {
    Napi::Env env = info.Env();
    Napi::Object o = Napi::Object::New(env);
    o.Set("llama", llama_print_system_info());
    o.Set("gpuOffload", llama_supports_gpu_offload());
    o.Set("mmap", llama_supports_mmap());
    o.Set("maxParallelSequences", Napi::Number::New(env, (double) llama_max_parallel_sequences()));
    return o;
}

static Napi::Object init(Napi::Env env, Napi::Object exports) {
    static bool backend_ready = false;
    if (!backend_ready) {
        log_init(4); // quiet: errors reach JS through the rejected promises; setLogLevel() to see more
        llama_backend_init();
        backend_ready = true;
    }
    auto * state = new addon_state();
    Napi::Function model_ctor    = Model::define(env);
    Napi::Function context_ctor  = Context::define(env);
    Napi::Function embedder_ctor = Embedder::define(env);
    state->model_ctor    = Napi::Persistent(model_ctor);
    state->context_ctor  = Napi::Persistent(context_ctor);
    state->embedder_ctor = Napi::Persistent(embedder_ctor);
    state->chat_templates_ctor   = Napi::Persistent(ChatTemplates::define(env));
    state->chat_parser_spec_ctor = Napi::Persistent(ChatParserSpec::define(env));
    state->chat_parser_ctor      = Napi::Persistent(ChatParser::define(env));
    state->seq_state_ctor        = Napi::Persistent(SeqState::define(env));
    state->projector_ctor        = Napi::Persistent(Projector::define(env));
    env.SetInstanceData<addon_state>(state);

    exports.Set("Model", model_ctor);
    exports.Set("Context", context_ctor);
    exports.Set("Embedder", embedder_ctor);
    exports.Set("loadModel", Napi::Function::New<Model::load>(env, "loadModel"));
    exports.Set("createContext", Napi::Function::New<Context::create>(env, "createContext"));
    exports.Set("createEmbedder", Napi::Function::New<Embedder::create>(env, "createEmbedder"));
    exports.Set("loadProjector", Napi::Function::New<Projector::load>(env, "loadProjector"));
    exports.Set("createChatTemplates", Napi::Function::New<ChatTemplates::create>(env, "createChatTemplates"));
    exports.Set("jsonSchemaToGrammar", Napi::Function::New<json_schema_to_grammar_export>(env, "jsonSchemaToGrammar"));
    exports.Set("quantize", Napi::Function::New<quantize>(env, "quantize"));
    exports.Set("setLogLevel", Napi::Function::New<set_log_level>(env, "setLogLevel"));
    exports.Set("systemInfo", Napi::Function::New<system_info>(env, "systemInfo"));
    exports.Set("trimHeap", Napi::Function::New<trim_heap>(env, "trimHeap"));
    return exports;
}

NODE_API_MODULE(hearth, init)
