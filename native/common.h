// Helpers shared by every native object: errors with a string code, and llama.cpp log routing.
// Errors never cross the N-API boundary as C++ exceptions: they become JS Error objects whose
// `code` is one of the native codes listed in lib/errors.ts.
#pragma once

#include <napi.h>

#include <exception>
#include <new>
#include <string>
#include <vector>

// JS thread only. Makes an Error with `code` set.
Napi::Error make_error(Napi::Env env, const char * code, const std::string & message);

// JS thread only. Throws make_error(...) into JS and returns undefined, for `return throw_error(...)`.
Napi::Value throw_error(Napi::Env env, const char * code, const std::string & message);

// Installs hearth's llama.cpp/ggml log callback. Messages at or above `level` go to stderr
// (0 = debug, 1 = info, 2 = warn, 3 = error, 4 = none); errors are also kept per thread.
void log_init(int level);
void log_set_level(int level);

// Any thread. The first error line llama.cpp logged on this thread since the last call (the cause; later
// lines only repeat that loading failed), then clears them.
std::string log_take_errors();

// Reads an optional numeric/boolean/string option from a JS object.
int32_t     opt_int (const Napi::Object & o, const char * key, int32_t def);
double      opt_num (const Napi::Object & o, const char * key, double def);
bool        opt_bool(const Napi::Object & o, const char * key, bool def);
std::string opt_str (const Napi::Object & o, const char * key, const std::string & def);

// Reads the fields lib/ always passes. Their defaults live in TypeScript only (lib/params.ts, lib/model.ts), so
// a missing one is the caller's bug, not a reason to guess: the first missing or mistyped key is remembered and
// the caller refuses the call with it.
struct required_fields {
    const Napi::Object & o;
    std::string          missing; // the first key absent or of the wrong type; empty when all were there

    double      num  (const char * key);
    int32_t     int32(const char * key);
    bool        flag (const char * key);
    std::string str  (const char * key);
};

// Copies a JS Int32Array (or throws a TypeError and returns false).
bool read_i32_array(const Napi::Value & v, std::vector<int32_t> & out, const char * what);

// No C++ exception may cross the N-API boundary (node-addon-api is built without exception support, so one
// that escapes a callback or a worker thread ends the process). llama.cpp throws from its parsers and
// samplers and on allocation failure: every entry point runs its work through one of these.

// JS thread. Runs `fn` (returning Napi::Value); a C++ exception becomes a thrown JS error (`internal_error`).
template <typename F>
Napi::Value guard_js(Napi::Env env, F && fn) {
    const char * what = nullptr;
    std::string  message;
    try {
        return fn();
    } catch (const std::bad_alloc &) {
        what = "out of memory";
    } catch (const std::exception & e) {
        message = e.what();
        what    = message.c_str();
    } catch (...) {
        what = "unknown C++ exception";
    }
    if (env.IsExceptionPending()) return env.Undefined(); // a JS error was already thrown: keep it
    return throw_error(env, "internal_error", std::string("native call failed: ") + what);
}

// Any thread. Runs `fn`; returns false and fills `error` when it threw (worker threads report it themselves).
template <typename F>
bool try_run(F && fn, std::string & error) noexcept {
    try {
        fn();
        return true;
    } catch (const std::bad_alloc &) {
        error = "out of memory";
    } catch (const std::exception & e) {
        error = e.what();
    } catch (...) {
        error = "unknown C++ exception";
    }
    return false;
}

// Each ObjectWrap class declares this member template itself (InstanceMethod wants a member of that class):
//   template <Napi::Value (T::*M)(const Napi::CallbackInfo &)>
//   Napi::Value guarded(const Napi::CallbackInfo & info) { return guard_js(info.Env(), [&] { return (this->*M)(info); }); }
// and registers InstanceMethod<&T::guarded<&T::facts>>("facts").
