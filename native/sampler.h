// Per-sequence sampling: llama.cpp's common_sampler (common/sampling.h) built from hearth's sampling parameters,
// plus the log-probabilities of the chosen token and its top alternatives, computed from the raw logits.
//
// common_sampler is the sampler llama-server uses, and it is what the chat layer's output needs: lazy grammars
// with trigger words, patterns and tokens; a chat grammar fed the generation prompt the template already wrote
// (it starts with it); the reasoning-budget sampler, which keeps a lazy tool-call grammar out of the thinking
// block (and can bound the thinking); and the grammar applied by rejection (the chain picks a token, the grammar
// checks only that one and constrains the whole vocabulary only when it refuses), which keeps a grammar's cost
// per token independent of the vocabulary size in the common case. The chain is hearth's: logit bias,
// penalties (fed the prompt), top-k, top-p, min-p, temperature, a per-sequence seed; temperature 0 keeps only
// the best token (llama.cpp's temperature sampler at 0), which is greedy.
#pragma once

#include "llama.h"
#include "sampling.h" // llama.cpp common's (not a hearth file)

#include <memory>
#include <string>
#include <vector>

// What a ChatTemplates.apply() result asks of the sampler (NativeSamplerParams.chat in lib/native.ts).
struct sampler_chat_params {
    std::string                         grammar;           // the chat layer's grammar (tool calls, a JSON schema answer)
    bool                                grammar_lazy = false;
    std::vector<common_grammar_trigger> grammar_triggers;  // as the library returned them (words, patterns, tokens)
    std::vector<std::string>            preserved_tokens;
    std::string                         generation_prompt; // fed to the grammar (not lazy) and the reasoning budget first
    // The generation prompt as the prompt's own last tokens. llama.cpp tokenizes generation_prompt alone to feed it,
    // which for a SentencePiece vocabulary adds a word-start space the grammar does not expect (the template's
    // "\nAssistant:" becomes " \nAssistant:"); the prompt's tokens are what the model saw, and what it continues.
    std::vector<llama_token>            prefill_tokens;
    bool                                has_prefill = false;
    std::string                         thinking_start_tag;
    std::vector<std::string>            thinking_end_tags;
};

// Set field by field from lib/params.ts (Context::set_sampler requires every number): the initial values are
// "off", not defaults; hearth's defaults live in TypeScript only.
struct sampler_params {
    float    temperature       = 0.0f;  // 0 = greedy
    int32_t  top_k             = 0;     // 0 = off
    float    top_p             = 1.0f;  // 1 = off
    float    min_p             = 0.0f;  // 0 = off
    float    repeat_penalty    = 1.0f;  // 1 = off
    int32_t  repeat_last_n     = 0;     // -1 = whole context
    float    presence_penalty  = 0.0f;
    float    frequency_penalty = 0.0f;
    uint32_t seed              = 0;
    int32_t  n_top_logprobs    = 0;     // alternatives to report per token (0..20)
    bool     logprobs          = false; // report the chosen token's log-probability
    std::string grammar;                // a user's GBNF, applied from the first token; empty = unconstrained
    std::vector<llama_logit_bias> logit_bias;
    bool                has_chat = false;  // `chat` is set: the output follows a chat template's format
    sampler_chat_params chat;
    int32_t     reasoning_budget = -1;     // tokens allowed inside the thinking block; -1 = unlimited
    std::string reasoning_budget_message;  // written before the end tag when the budget runs out
};

struct seq_sampler {
    common_sampler_ptr smpl; // the grammar, the reasoning budget and the chain
    int32_t n_top_logprobs = 0;
    bool    logprobs       = false;
    bool    penalties      = false; // the chain has repetition penalties, which the prompt feeds
};

// JS thread. Builds the sampler; returns nullptr and fills `error` (llama.cpp's reason) when the grammar does
// not parse or the parameters are refused (a grammar trigger word that is a single token but not a preserved
// one, an llguidance grammar: this build has no llguidance).
std::unique_ptr<seq_sampler> sampler_init(const sampler_params & params, const llama_model * model, int32_t n_ctx, std::string & error);

// Feeds tokens (the prompt) to the repetition penalties only, not to the grammar or the reasoning budget.
void sampler_accept_prompt(seq_sampler & s, const llama_token * tokens, size_t n);

// What sampling one position gave; `id` is meaningful only when `status` is sample_ok.
enum sample_status : int32_t {
    SAMPLE_OK      = 0,
    SAMPLE_NONE    = 1, // the constraints (grammar, logit bias, ignore_eos) leave no candidate: nothing was accepted
    SAMPLE_ERROR   = 2, // llama.cpp threw while sampling or accepting; `error` says why, the chain's state is unspecified
};

struct sampled_token {
    llama_token   id      = LLAMA_TOKEN_NULL;
    float         logprob = 0.0f; // NaN unless logprobs were asked for
    sample_status status  = SAMPLE_OK;
    std::string   error;          // empty unless status is SAMPLE_ERROR
};

// Worker thread: no napi; never throws. Samples one token at batch index `idx` of `ctx` (whose raw logits are
// `logits`, n_vocab floats), accepts it into the sampler, and writes n_top_logprobs alternatives (ids, logprobs;
// sorted, most likely first) when asked for. Without a sampler (`s` null) it is the best raw logit.
// A token the chain rejected (its logit is -inf after the chain) is never accepted: that is SAMPLE_NONE.
// After SAMPLE_NONE or SAMPLE_ERROR the sequence cannot go on with this chain (set a new one or end it).
sampled_token sampler_sample(seq_sampler * s, llama_context * ctx, int32_t idx, const float * logits, int32_t n_vocab,
                             int32_t * top_ids, float * top_logprobs);
