#include "sampler.h"

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <string>

seq_sampler::~seq_sampler() {
    if (chain) {
        llama_sampler_free(chain);
    }
}

std::unique_ptr<seq_sampler> sampler_init(const sampler_params & p, const llama_vocab * vocab, int32_t n_ctx, std::string & error) {
    auto s = std::make_unique<seq_sampler>();
    llama_sampler_chain_params cp = llama_sampler_chain_default_params();
    cp.no_perf = true;
    s->chain = llama_sampler_chain_init(cp);
    s->n_top_logprobs = p.n_top_logprobs;
    s->logprobs = p.logprobs || p.n_top_logprobs > 0;
    int32_t n_vocab = llama_vocab_n_tokens(vocab);

    if (!p.logit_bias.empty()) {
        llama_sampler_chain_add(s->chain, llama_sampler_init_logit_bias(n_vocab, (int32_t) p.logit_bias.size(), p.logit_bias.data()));
    }
    if (!p.grammar.empty()) {
        llama_sampler * g = llama_sampler_init_grammar(vocab, p.grammar.c_str(), "root");
        if (!g) {
            error = "the grammar does not parse";
            return nullptr;
        }
        llama_sampler_chain_add(s->chain, g);
    }
    bool penalize = p.repeat_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f;
    if (penalize && p.repeat_last_n != 0) {
        int32_t last_n = p.repeat_last_n < 0 ? n_ctx : p.repeat_last_n;
        s->penalties = llama_sampler_init_penalties(n_vocab, last_n, p.repeat_penalty, p.frequency_penalty, p.presence_penalty);
        llama_sampler_chain_add(s->chain, s->penalties);
    }
    if (p.temperature <= 0.0f) {
        llama_sampler_chain_add(s->chain, llama_sampler_init_greedy());
        return s;
    }
    if (p.top_k > 0) {
        llama_sampler_chain_add(s->chain, llama_sampler_init_top_k(p.top_k));
    }
    if (p.top_p < 1.0f) {
        llama_sampler_chain_add(s->chain, llama_sampler_init_top_p(p.top_p, 1));
    }
    if (p.min_p > 0.0f) {
        llama_sampler_chain_add(s->chain, llama_sampler_init_min_p(p.min_p, 1));
    }
    llama_sampler_chain_add(s->chain, llama_sampler_init_temp(p.temperature));
    llama_sampler_chain_add(s->chain, llama_sampler_init_dist(p.seed));
    return s;
}

void sampler_accept_prompt(seq_sampler & s, const llama_token * tokens, size_t n) {
    if (!s.penalties) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        llama_sampler_accept(s.penalties, tokens[i]);
    }
}

// log-softmax of the raw logits for the chosen token and the best alternatives (before any sampler
// changes them: what the model believes, as OpenAI reports)
static float raw_logprobs(const float * logits, int32_t n_vocab, llama_token chosen, int32_t n_top,
                          int32_t * top_ids, float * top_logprobs) {
    float max_logit = -std::numeric_limits<float>::infinity();
    for (int32_t i = 0; i < n_vocab; i++) {
        max_logit = std::max(max_logit, logits[i]);
    }
    double sum = 0.0;
    for (int32_t i = 0; i < n_vocab; i++) {
        sum += std::exp((double) (logits[i] - max_logit));
    }
    const float log_z = max_logit + (float) std::log(sum);
    if (n_top > 0) {
        // min-heap of the n_top largest logits
        std::vector<std::pair<float, int32_t>> heap;
        heap.reserve(n_top + 1);
        auto cmp = [](const std::pair<float, int32_t> & a, const std::pair<float, int32_t> & b) { return a.first > b.first; };
        for (int32_t i = 0; i < n_vocab; i++) {
            if ((int32_t) heap.size() < n_top) {
                heap.emplace_back(logits[i], i);
                std::push_heap(heap.begin(), heap.end(), cmp);
            } else if (logits[i] > heap.front().first) {
                std::pop_heap(heap.begin(), heap.end(), cmp);
                heap.back() = {logits[i], i};
                std::push_heap(heap.begin(), heap.end(), cmp);
            }
        }
        std::sort_heap(heap.begin(), heap.end(), cmp); // descending by logit
        for (int32_t k = 0; k < (int32_t) heap.size(); k++) { // fewer than n_top when the vocabulary is smaller
            top_ids[k]      = heap[k].second;
            top_logprobs[k] = heap[k].first - log_z;
        }
    }
    return logits[chosen] - log_z;
}

sampled_token sampler_sample(seq_sampler * s, const float * logits, int32_t n_vocab,
                             std::vector<llama_token_data> & scratch, int32_t * top_ids, float * top_logprobs) {
    sampled_token out;
    out.logprob = std::numeric_limits<float>::quiet_NaN();
    if (!s) {
        out.id = (llama_token) (std::max_element(logits, logits + n_vocab) - logits);
        return out;
    }
    // llama.cpp's samplers throw (the grammar's accept: "unexpected empty grammar stack", allocation
    // failures); on the decode thread an escaping exception would end the process
    try {
        scratch.resize(n_vocab);
        for (int32_t i = 0; i < n_vocab; i++) {
            scratch[i] = {i, logits[i], 0.0f};
        }
        llama_token_data_array cur = {scratch.data(), scratch.size(), -1, false};
        llama_sampler_apply(s->chain, &cur);
        // the grammar and the logit bias remove candidates by setting their logit to -inf; the selectors
        // (greedy, dist) still pick one of them when nothing else is left, so a -inf pick means nothing is allowed
        // (e.g. a completed grammar that allows only end-of-generation, banned by ignore_eos)
        if (cur.selected < 0 || cur.selected >= (int64_t) cur.size || !(cur.data[cur.selected].logit > -INFINITY)) {
            out.status = SAMPLE_NONE;
            return out;
        }
        out.id = cur.data[cur.selected].id;
        llama_sampler_accept(s->chain, out.id);
    } catch (const std::exception & e) {
        out.id     = LLAMA_TOKEN_NULL;
        out.status = SAMPLE_ERROR;
        out.error  = std::string("sampling failed: ") + e.what();
        return out;
    } catch (...) {
        out.id     = LLAMA_TOKEN_NULL;
        out.status = SAMPLE_ERROR;
        out.error  = "sampling failed with an unknown exception";
        return out;
    }
    if (s->logprobs) {
        out.logprob = raw_logprobs(logits, n_vocab, out.id, s->n_top_logprobs, top_ids, top_logprobs);
    }
    return out;
}
