#include "sampler.h"

#include "common.h" // hearth's: try_run, log_take_errors

#include <algorithm>
#include <cmath>
#include <exception>
#include <limits>
#include <string>

// Text the template wrote (tags, the generation prompt) as the model's tokens, special tokens included.
static llama_tokens tokenize_special(const llama_vocab * vocab, const std::string & text) {
    return common_tokenize(vocab, text, /* add_special */ false, /* parse_special */ true);
}

// Fills the grammar, trigger and reasoning-budget parts of `cp` from a chat template's result, as llama-server
// does: a trigger word that is one special token becomes a token trigger (then it must be a preserved token),
// since the lazy grammar matches words against text; the thinking tags arm the reasoning-budget sampler, which
// keeps a lazy grammar from firing inside the thinking block and can bound the thinking.
static bool chat_to_common(const sampler_params & p, const llama_vocab * vocab, common_params_sampling & cp, std::string & error) {
    const sampler_chat_params & chat = p.chat;
    if (!chat.grammar.empty()) cp.grammar = common_grammar(COMMON_GRAMMAR_TYPE_TOOL_CALLS, chat.grammar);
    cp.grammar_lazy = chat.grammar_lazy && !chat.grammar.empty();
    for (const std::string & text : chat.preserved_tokens) {
        llama_tokens ids = tokenize_special(vocab, text);
        if (ids.size() == 1) cp.preserved_tokens.insert(ids[0]);
    }
    const int32_t n_vocab = llama_vocab_n_tokens(vocab);
    for (const common_grammar_trigger & t : chat.grammar_triggers) {
        if (t.type == COMMON_GRAMMAR_TRIGGER_TYPE_WORD) {
            llama_tokens ids = tokenize_special(vocab, t.value);
            if (ids.size() == 1) {
                if (!cp.preserved_tokens.count(ids[0])) {
                    error = "the grammar trigger word '" + t.value + "' is one token but not a preserved token";
                    return false;
                }
                cp.grammar_triggers.push_back({COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN, t.value, ids[0]});
                continue;
            }
        } else if (t.type == COMMON_GRAMMAR_TRIGGER_TYPE_TOKEN && (t.token < 0 || t.token >= n_vocab)) {
            error = "grammar trigger token " + std::to_string(t.token) + " is outside the vocabulary";
            return false;
        }
        cp.grammar_triggers.push_back(t);
    }
    if (cp.grammar_lazy && cp.grammar_triggers.empty()) {
        error = "a lazy grammar needs at least one trigger";
        return false;
    }
    // an exact prefill replaces llama.cpp's (see sampler_chat_params): fed after init, below; a lazy grammar is
    // never prefilled, so it keeps llama.cpp's way (which feeds only the reasoning budget)
    cp.generation_prompt = chat.has_prefill && !cp.grammar_lazy && !chat.grammar.empty() ? std::string() : chat.generation_prompt;
    if (!chat.thinking_start_tag.empty() && !chat.thinking_end_tags.empty()) {
        cp.reasoning_budget_start = tokenize_special(vocab, chat.thinking_start_tag);
        for (const std::string & tag : chat.thinking_end_tags) {
            if (!tag.empty()) cp.reasoning_budget_end.push_back(tokenize_special(vocab, tag));
        }
        if (!cp.reasoning_budget_end.empty()) {
            cp.reasoning_budget_forced = tokenize_special(vocab, p.reasoning_budget_message);
            const llama_tokens & end = cp.reasoning_budget_end.front();
            cp.reasoning_budget_forced.insert(cp.reasoning_budget_forced.end(), end.begin(), end.end());
        }
        cp.reasoning_budget_tokens = p.reasoning_budget;
    }
    return true;
}

std::unique_ptr<seq_sampler> sampler_init(const sampler_params & p, const llama_model * model, int32_t n_ctx, std::string & error) {
    const llama_vocab * vocab = llama_model_get_vocab(model);
    common_params_sampling cp;
    cp.no_perf         = true;
    cp.seed            = p.seed;
    cp.min_keep        = 1; // top-p and min-p keep at least one candidate, as hearth's own chain did
    cp.top_k           = p.top_k;
    cp.top_p           = p.top_p;
    cp.min_p           = p.min_p;
    cp.temp            = std::max(p.temperature, 0.0f); // 0: the temperature sampler keeps only the best token
    cp.penalty_last_n  = p.repeat_last_n < 0 ? n_ctx : p.repeat_last_n;
    cp.penalty_repeat  = p.repeat_penalty;
    cp.penalty_freq    = p.frequency_penalty;
    cp.penalty_present = p.presence_penalty;
    cp.logit_bias      = p.logit_bias;

    // hearth's chain, in hearth's order; the samplers left out are off at hearth's parameter ranges anyway
    const bool penalize = (p.repeat_penalty != 1.0f || p.presence_penalty != 0.0f || p.frequency_penalty != 0.0f) && p.repeat_last_n != 0;
    cp.samplers.clear();
    if (penalize) cp.samplers.push_back(COMMON_SAMPLER_TYPE_PENALTIES);
    if (cp.temp > 0.0f) {
        if (p.top_k > 0) cp.samplers.push_back(COMMON_SAMPLER_TYPE_TOP_K);
        if (p.top_p < 1.0f) cp.samplers.push_back(COMMON_SAMPLER_TYPE_TOP_P);
        if (p.min_p > 0.0f) cp.samplers.push_back(COMMON_SAMPLER_TYPE_MIN_P);
    } else {
        // greedy: top-k 1 leaves the distribution sampler one candidate; the temperature sampler at 0 alone
        // would leave the whole vocabulary to it (a softmax over all of it per token: 5-10x the cost measured)
        cp.top_k = 1;
        cp.samplers.push_back(COMMON_SAMPLER_TYPE_TOP_K);
    }
    cp.samplers.push_back(COMMON_SAMPLER_TYPE_TEMPERATURE);

    if (!p.grammar.empty() && p.has_chat && !p.chat.grammar.empty()) {
        error = "a grammar and a chat template's grammar cannot both apply";
        return nullptr;
    }
    if (!p.grammar.empty()) cp.grammar = common_grammar(COMMON_GRAMMAR_TYPE_USER, p.grammar);
    if (p.has_chat && !chat_to_common(p, vocab, cp, error)) return nullptr;
    // common_sampler_init aborts the process on an llguidance grammar when built without llguidance
    if (common_grammar_value(cp.grammar).compare(0, 11, "%llguidance") == 0) {
        error = "llguidance grammars are not supported";
        return nullptr;
    }

    auto s = std::make_unique<seq_sampler>();
    s->n_top_logprobs = p.n_top_logprobs;
    s->logprobs       = p.logprobs || p.n_top_logprobs > 0;
    s->penalties      = penalize;
    log_take_errors();
    std::string what;
    const bool prefill = p.has_chat && p.chat.has_prefill && cp.generation_prompt.empty() && !p.chat.generation_prompt.empty();
    if (!try_run([&] {
            s->smpl.reset(common_sampler_init(model, cp));
            // as llama.cpp's own prefill: the grammar and the reasoning budget advance past what the template wrote
            if (prefill && s->smpl) {
                for (llama_token t : p.chat.prefill_tokens) common_sampler_accept(s->smpl.get(), t, /* is_generated */ true);
            }
        }, what)) {
        const std::string details = log_take_errors();
        // the grammar's own reason is logged by llama.cpp; the exception only says that it failed
        error = what + (details.empty() ? std::string() : ": " + details);
        return nullptr;
    }
    return s;
}

void sampler_accept_prompt(seq_sampler & s, const llama_token * tokens, size_t n) {
    if (!s.penalties) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        common_sampler_accept(s.smpl.get(), tokens[i], /* is_generated */ false);
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

sampled_token sampler_sample(seq_sampler * s, llama_context * ctx, int32_t idx, const float * logits, int32_t n_vocab,
                             int32_t * top_ids, float * top_logprobs) {
    sampled_token out;
    out.logprob = std::numeric_limits<float>::quiet_NaN();
    if (!s) {
        out.id = (llama_token) (std::max_element(logits, logits + n_vocab) - logits);
        return out;
    }
    // llama.cpp's samplers throw (the grammar's accept: "unexpected empty grammar stack", allocation
    // failures); on the decode thread an escaping exception would end the process
    std::string what;
    const bool ok = try_run([&] {
        const llama_token id = common_sampler_sample(s->smpl.get(), ctx, idx);
        // the grammar, the logit bias and the reasoning budget remove candidates by setting their logit to -inf;
        // the selectors still pick one of them when nothing else is left, so a -inf pick means nothing is allowed
        // (e.g. a completed grammar that allows only end-of-generation, banned by ignore_eos)
        const llama_token_data_array * cur = common_sampler_get_candidates(s->smpl.get(), false);
        if (cur->selected < 0 || cur->selected >= (int64_t) cur->size || !(cur->data[cur->selected].logit > -INFINITY)) {
            out.status = SAMPLE_NONE;
            return;
        }
        common_sampler_accept(s->smpl.get(), id, /* is_generated */ true);
        out.id = id;
    }, what);
    if (!ok) {
        out.id     = LLAMA_TOKEN_NULL;
        out.status = SAMPLE_ERROR;
        out.error  = "sampling failed: " + what;
        return out;
    }
    if (out.status != SAMPLE_OK) {
        return out;
    }
    if (s->logprobs) {
        out.logprob = raw_logprobs(logits, n_vocab, out.id, s->n_top_logprobs, top_ids, top_logprobs);
    }
    return out;
}
