// POST /v1/completions: raw prompts (a string, strings, token ids or lists of token ids), no template.
import { HearthError, invalidParam } from '../lib/errors.js'
import type { Model } from '../lib/model.js'
import type { TokenInfo } from '../lib/sequence.js'
import type { Reply } from './http.js'
import { choiceCount, finishReason, finishStream, newId, nowSeconds, runSequences, SYSTEM_FINGERPRINT, toSampling, tokenEntry, usage } from './openai.js'
import { CompletionRequest, validator } from './schemas.js'
import type { ServerState } from './state.js'

const validate = validator(CompletionRequest)

/** Every prompt form to token arrays (strings get BOS as the model wants). */
export function promptTokens(model: Model, prompt: CompletionRequest['prompt'], param = 'prompt'): Int32Array[] {
  const list: (string | number[])[] =
    typeof prompt === 'string' ? [prompt] : prompt.length > 0 && typeof prompt[0] === 'number' ? [prompt as number[]] : (prompt as (string | number[])[])
  if (list.length === 0) throw invalidParam(param, `${param} must not be empty`)
  return list.map((p, i) => {
    if (typeof p === 'string') return model.tokenize(p)
    if (p.length === 0) throw invalidParam(param, `${param}[${i}] is an empty token list`)
    for (const t of p) {
      if (!Number.isInteger(t) || t < 0 || t >= model.facts.nVocab) {
        throw new HearthError('invalid_token', `token id ${t} is outside the vocabulary (0..${model.facts.nVocab - 1})`, param)
      }
    }
    return Int32Array.from(p)
  })
}

/** Legacy completions logprobs: tokens, token_logprobs, top_logprobs ({text: logprob}), text_offset. */
function legacyLogprobs(model: Model, tokens: TokenInfo[], offset: number) {
  const out = { tokens: [] as string[], token_logprobs: [] as number[], top_logprobs: [] as Record<string, number>[], text_offset: [] as number[] }
  let at = offset
  for (const t of tokens) {
    const e = tokenEntry(model, t.id, t.logprob ?? 0)
    out.tokens.push(e.token)
    out.token_logprobs.push(e.logprob)
    out.top_logprobs.push(Object.fromEntries(t.top.map((a) => [tokenEntry(model, a.id, a.logprob).token, a.logprob])))
    out.text_offset.push(at)
    at += e.token.length
  }
  return out
}

export async function completions(state: ServerState, reply: Reply, raw: unknown): Promise<void> {
  const body = validate(raw)
  const model = state.resolveModel(body.model)
  const n = choiceCount(body.n)
  if (body.best_of !== undefined && body.best_of !== null && body.best_of !== n) {
    throw new HearthError('unsupported_parameter', 'best_of other than n is not supported', 'best_of')
  }
  if (body.suffix) {
    throw new HearthError('unsupported_parameter', 'suffix (fill-in-the-middle) is not supported by this server for this model', 'suffix')
  }
  const nLogprobs = body.logprobs ?? null
  if (nLogprobs !== null && (nLogprobs < 0 || nLogprobs > 20)) throw invalidParam('logprobs', 'logprobs must be between 0 and 20')
  const echo = body.echo ?? false
  if (echo && nLogprobs !== null) {
    throw new HearthError('unsupported_parameter', 'echo with logprobs (prompt token log-probabilities) is not supported', 'echo')
  }
  const params = toSampling(body, {
    maxTokens: body.max_tokens ?? 16,
    stop: body.stop,
    logprobs: nLogprobs !== null,
    topLogprobs: nLogprobs ?? 0,
  })
  const prompts = promptTokens(model, body.prompt)
  const promptTexts = echo ? prompts.map((p) => model.detokenize(p)) : []
  const nPrompt = prompts.reduce((s, p) => s + p.length, 0)
  reply.promptTokens = nPrompt
  const id = newId('cmpl-')
  const created = nowSeconds()
  const head = { id, object: 'text_completion', created, model: model.id, system_fingerprint: SYSTEM_FINGERPRINT }
  const promptOf = (index: number) => Math.floor(index / n)

  if (body.stream) {
    const includeUsage = body.stream_options?.include_usage ?? false
    const extra = includeUsage ? { usage: null } : {}
    const sse = reply.sse()
    const offsets: number[] = []
    const pending: TokenInfo[][] = Array.from({ length: prompts.length * n }, () => [])
    const work = runSequences(state, model, reply, prompts, params, n, {
      chunk(index, c) {
        if (nLogprobs !== null && c.token) pending[index]!.push(c.token)
        if (!c.text) return
        const lp = nLogprobs !== null ? legacyLogprobs(model, pending[index]!.splice(0), offsets[index] ?? 0) : null
        offsets[index] = (offsets[index] ?? 0) + c.text.length
        sse.send({ ...head, choices: [{ text: c.text, index, logprobs: lp, finish_reason: null }], ...extra })
      },
      end(index, r) {
        sse.send({ ...head, choices: [{ text: '', index, logprobs: null, finish_reason: finishReason(r) }], ...extra })
      },
    })
    if (echo) {
      // sent after admission (a refused request keeps its HTTP status) but before the first token (a later step)
      for (let index = 0; index < prompts.length * n; index++) {
        sse.send({ ...head, choices: [{ text: promptTexts[promptOf(index)], index, logprobs: null, finish_reason: null }], ...extra })
      }
    }
    await finishStream(sse, reply, work, nPrompt, includeUsage ? (u) => ({ ...head, choices: [], usage: u }) : null)
    return
  }

  const texts: string[] = Array(prompts.length * n).fill('')
  const tokens: TokenInfo[][] = Array.from({ length: prompts.length * n }, () => [])
  const results = await runSequences(state, model, reply, prompts, params, n, {
    chunk(index, c) {
      texts[index] += c.text
      if (nLogprobs !== null && c.token) tokens[index]!.push(c.token)
    },
  })
  const u = usage(results, nPrompt)
  reply.completionTokens = u.completion_tokens
  reply.json(200, {
    ...head,
    choices: results.map((r, index) => ({
      text: (echo ? promptTexts[promptOf(index)] : '') + texts[index],
      index,
      logprobs: nLogprobs !== null ? legacyLogprobs(model, tokens[index]!, 0) : null,
      finish_reason: finishReason(r),
    })),
    usage: u,
  })
}
