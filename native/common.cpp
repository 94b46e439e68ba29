#include "common.h"

#include "llama.h"
#include "log.h" // llama.cpp common's logger (chat templates and parsers log through it, not through llama_log)
#include "mtmd-helper.h"

#include <atomic>
#include <cstdio>
#include <cstring>

static std::atomic<int> g_log_level{4};
static thread_local std::string t_errors;
static thread_local int t_last_rank = 1;

Napi::Error make_error(Napi::Env env, const char * code, const std::string & message) {
    Napi::Error err = Napi::Error::New(env, message);
    err.Value().Set("code", Napi::String::New(env, code));
    return err;
}

Napi::Value throw_error(Napi::Env env, const char * code, const std::string & message) {
    make_error(env, code, message).ThrowAsJavaScriptException();
    return env.Undefined();
}

static int level_rank(ggml_log_level level) {
    switch (level) {
        case GGML_LOG_LEVEL_DEBUG: return 0;
        case GGML_LOG_LEVEL_INFO:  return 1;
        case GGML_LOG_LEVEL_WARN:  return 2;
        case GGML_LOG_LEVEL_ERROR: return 3;
        default:                   return -1; // GGML_LOG_LEVEL_CONT continues the previous message
    }
}

// any thread: llama.cpp logs from worker threads during load and decode
static void log_callback(ggml_log_level level, const char * text, void * /*user_data*/) {
    int rank = level_rank(level);
    if (rank < 0) {
        rank = t_last_rank;
    } else {
        t_last_rank = rank;
    }
    if (rank == 3 && t_errors.size() < 4096) {
        t_errors += text;
    }
    if (rank >= g_log_level.load(std::memory_order_relaxed)) {
        fputs(text, stderr);
    }
}

// llama.cpp's common library has its own logger with verbosity thresholds; keep it at the same level
static void common_log_follow(int level) {
    static const int thold[] = {LOG_LEVEL_DEBUG, LOG_LEVEL_INFO, LOG_LEVEL_WARN, LOG_LEVEL_ERROR};
    common_log_set_verbosity_thold(level >= 0 && level < 4 ? thold[level] : -1);
}

void log_init(int level) {
    g_log_level = level;
    llama_log_set(log_callback, nullptr);
    mtmd_helper_log_set(log_callback, nullptr); // mtmd (media) logs through its own logger
    common_log_follow(level);
}

void log_set_level(int level) {
    g_log_level = level;
    common_log_follow(level);
}

std::string log_take_errors() {
    std::string out;
    out.swap(t_errors);
    size_t nl = out.find('\n');
    if (nl != std::string::npos && nl > 0) {
        out.resize(nl);
    }
    while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) {
        out.pop_back();
    }
    return out;
}

int32_t opt_int(const Napi::Object & o, const char * key, int32_t def) {
    Napi::Value v = o.Get(key);
    return v.IsNumber() ? v.As<Napi::Number>().Int32Value() : def;
}

double opt_num(const Napi::Object & o, const char * key, double def) {
    Napi::Value v = o.Get(key);
    return v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : def;
}

bool opt_bool(const Napi::Object & o, const char * key, bool def) {
    Napi::Value v = o.Get(key);
    return v.IsBoolean() ? v.As<Napi::Boolean>().Value() : def;
}

double required_fields::num(const char * key) {
    Napi::Value v = o.Get(key);
    if (v.IsNumber()) return v.As<Napi::Number>().DoubleValue();
    if (missing.empty()) missing = key;
    return 0;
}

int32_t required_fields::int32(const char * key) {
    Napi::Value v = o.Get(key);
    if (v.IsNumber()) return v.As<Napi::Number>().Int32Value();
    if (missing.empty()) missing = key;
    return 0;
}

bool required_fields::flag(const char * key) {
    Napi::Value v = o.Get(key);
    if (v.IsBoolean()) return v.As<Napi::Boolean>().Value();
    if (missing.empty()) missing = key;
    return false;
}

std::string required_fields::str(const char * key) {
    Napi::Value v = o.Get(key);
    if (v.IsString()) return v.As<Napi::String>().Utf8Value();
    if (missing.empty()) missing = key;
    return "";
}

std::string opt_str(const Napi::Object & o, const char * key, const std::string & def) {
    Napi::Value v = o.Get(key);
    return v.IsString() ? v.As<Napi::String>().Utf8Value() : def;
}

bool read_i32_array(const Napi::Value & v, std::vector<int32_t> & out, const char * what) {
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
        Napi::TypeError::New(v.Env(), std::string(what) + " must be an Int32Array").ThrowAsJavaScriptException();
        return false;
    }
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    out.assign(a.Data(), a.Data() + a.ElementLength());
    return true;
}
