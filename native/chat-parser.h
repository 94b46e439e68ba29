// Model output to an assistant message through llama.cpp's chat parsers (common_chat_peg_parse): content,
// reasoning_content and tool calls for every template family the library knows, streamed as the library's
// own diffs (common_chat_msg_diff::compute_diffs), the same way llama-server streams them.
//
//   ChatParserSpec  what one ChatTemplates.apply() decided about the output (format, the PEG parser, the
//                   generation prompt). Immutable; made only by apply(). createParser() makes any number of
//                   parsers from it (one per generated choice).
//   ChatParser      one generation's output. push(text, isFinal) appends text and returns the diffs since the
//                   last push; message() is the whole message so far.
//
// Threads: JS thread only (push parses synchronously: see the measurement in DEVELOPERS.md).
//
// Depth guard: the library's parser recurses once per level of JSON nesting in the output (about 2.5 KB of
// stack a level: a tool call's arguments 4,000 brackets deep overflowed an 8 MB stack), and model output is
// not bounded by any request check. So the parser counts unclosed [ and { (an upper bound of any nesting in
// the text) and, past chat_parser_max_depth, stops interpreting: from that push on the text goes out verbatim
// as content, and the final push reports why in `error`.
// Lifetime: a parser keeps its spec alive; neither holds the model, the templates or a context.
#pragma once

#include <napi.h>

#include "chat.h"
#include "common.h" // hearth's: guard_js
#include "peg-parser.h"

#include <memory>
#include <string>

// Deepest bracket nesting the parser interprets (far below the crash point even on a 1 MB main-thread stack;
// no real answer nests JSON this deep).
constexpr int32_t chat_parser_max_depth = 128;

struct chat_parser_spec {
    common_chat_parser_params params;          // format and generation prompt; its own arena copy stays empty
    common_peg_arena          arena;           // the parser, loaded once from the apply result
    bool                      is_continuation; // apply() continued the last assistant message
};

class ChatParserSpec : public Napi::ObjectWrap<ChatParserSpec> {
  public:
    static Napi::Function define(Napi::Env env);

    // JS thread. Wraps a spec made on a worker by apply(); the only way to make one.
    static Napi::Object wrap(Napi::Env env, std::shared_ptr<const chat_parser_spec> spec);

    explicit ChatParserSpec(const Napi::CallbackInfo & info);

    std::shared_ptr<const chat_parser_spec> spec;

    // every method registered with DefineClass runs through guard_js (common.h)
    template <Napi::Value (ChatParserSpec::*M)(const Napi::CallbackInfo &)>
    Napi::Value guarded(const Napi::CallbackInfo & info) {
        return guard_js(info.Env(), [&] { return (this->*M)(info); });
    }

  private:
    // createParser({ echo?: boolean }) -> ChatParser. With echo, a continued message's prefilled part is
    // part of the first diff; without (the default, as llama-server), diffs start after it.
    Napi::Value create_parser(const Napi::CallbackInfo & info);
};

class ChatParser : public Napi::ObjectWrap<ChatParser> {
  public:
    static Napi::Function define(Napi::Env env);

    explicit ChatParser(const Napi::CallbackInfo & info);

    std::shared_ptr<const chat_parser_spec> spec;
    std::string     text;             // everything pushed so far
    common_chat_msg msg;              // the message as of the last push
    bool            finished = false; // the final push happened
    int32_t         depth    = 0;     // unclosed [ and { so far (closing ones past zero ignored)
    bool            verbatim = false; // the depth guard tripped: text is passed through as content

    // every method registered with DefineClass runs through guard_js (common.h)
    template <Napi::Value (ChatParser::*M)(const Napi::CallbackInfo &)>
    Napi::Value guarded(const Napi::CallbackInfo & info) {
        return guard_js(info.Env(), [&] { return (this->*M)(info); });
    }

  private:
    // push(text: string, isFinal: boolean) -> { diffs: ChatDiff[], error: string }
    //   Partial text never throws: output the parser cannot place yet gives no diffs until it can.
    //   The final push parses strictly. When that fails ("" otherwise) `error` holds the library's reason and
    //   the message falls back to what the lenient (streaming) parse recognised, or, when it recognised
    //   nothing, to the whole output as content: what was already streamed is never taken back.
    //   Past the depth guard (above), text is content verbatim and the final push sets `error`.
    //   Throws `chat_parser_finished` when called after the final push.
    Napi::Value push(const Napi::CallbackInfo & info);
    // message() -> { content, reasoningContent, toolCalls: [{ id, name, arguments }] }
    Napi::Value message(const Napi::CallbackInfo & info);
};
