// Per-sequence sampling over one row of logits: a llama.cpp sampler chain built from hearth's sampling
// parameters, plus the log-probabilities of the chosen token and its top alternatives when asked for.
#pragma once

#include "llama.h"

#include <memory>
#include <string>
#include <vector>

struct sampler_params {
    float    temperature       = 0.8f;  // 0 = greedy
    int32_t  top_k             = 40;    // 0 = off
    float    top_p             = 0.95f; // 1 = off
    float    min_p             = 0.05f; // 0 = off
    float    repeat_penalty    = 1.0f;  // 1 = off
    int32_t  repeat_last_n     = 64;    // -1 = whole context
    float    presence_penalty  = 0.0f;
    float    frequency_penalty = 0.0f;
    uint32_t seed              = LLAMA_DEFAULT_SEED;
    int32_t  n_top_logprobs    = 0;     // alternatives to report per token (0..20)
    bool     logprobs          = false; // report the chosen token's log-probability
    std::string grammar;                // GBNF, empty = unconstrained
    std::vector<llama_logit_bias> logit_bias;
};

struct seq_sampler {
    llama_sampler * chain     = nullptr; // owns every sampler below
    llama_sampler * penalties = nullptr; // inside chain, fed prompt tokens too
    int32_t n_top_logprobs = 0;
    bool    logprobs       = false;

    seq_sampler() = default;
    seq_sampler(const seq_sampler &) = delete;
    seq_sampler & operator=(const seq_sampler &) = delete;
    ~seq_sampler();
};

// JS thread. Builds a chain; returns nullptr and fills `error` when the grammar does not parse.
std::unique_ptr<seq_sampler> sampler_init(const sampler_params & params, const llama_vocab * vocab, int32_t n_ctx, std::string & error);

// Feeds tokens (the prompt) to the repetition penalties only, not to the grammar.
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

// Worker thread: no napi; never throws. Samples one token from `logits` (n_vocab floats), accepts it into the
// chain, and writes n_top_logprobs alternatives (ids, logprobs; sorted, most likely first) when asked for.
// A token the chain rejected (its logit is -inf after the chain) is never accepted: that is SAMPLE_NONE.
// After SAMPLE_NONE or SAMPLE_ERROR the sequence cannot go on with this chain (set a new one or end it).
sampled_token sampler_sample(seq_sampler * s, const float * logits, int32_t n_vocab,
                             std::vector<llama_token_data> & scratch, int32_t * top_ids, float * top_logprobs);
