// POST /v1/completions: raw prompts (a string, strings, token ids or lists of token ids), no template. The body
// becomes one library request in `completionRequest`; choices are numbered prompt by prompt (n per prompt).
import { HearthError, invalidParam } from '../lib/errors.js'
import type { Model, TextRequest } from '../lib/model.js'
import type { TokenInfo } from '../lib/sequence.js'
import { chatUsage } from './chat-completions.js'
import type { Reply } from './http.js'
import { newId, nowSeconds, SYSTEM_FINGERPRINT } from './ids.js'
import { legacyLogprobs } from './logprobs.js'
import { serveGeneration } from './run.js'
import { samplingFromWire } from './sampling.js'
import { CompletionRequest, IGNORED, validator } from './schemas.js'
import type { ServerState } from './state.js'
import { streamTail } from './stream-tail.js'

const validate = validator(CompletionRequest, IGNORED.completions)

/** The one place a completions body becomes a library request. */
function completionRequest(body: CompletionRequest): TextRequest {
  const n = body.n ?? 1
  if (body.best_of !== undefined && body.best_of !== null && body.best_of !== n) {
    throw new HearthError('unsupported_parameter', 'best_of other than n is not supported', 'best_of')
  }
  const nLogprobs = body.logprobs ?? null
  if (nLogprobs !== null && (nLogprobs < 0 || nLogprobs > 20)) throw invalidParam('logprobs', 'logprobs must be between 0 and 20')
  if (body.echo && nLogprobs !== null) {
    throw new HearthError('unsupported_parameter', 'echo with logprobs (prompt token log-probabilities) is not supported', 'echo')
  }
  return {
    prompt: body.prompt,
    ...(body.suffix !== undefined && body.suffix !== null ? { suffix: body.suffix } : {}),
    sampling: samplingFromWire(body, { maxTokens: body.max_tokens ?? 16, stop: body.stop, logprobs: nLogprobs !== null, topLogprobs: nLogprobs ?? 0 }),
    n,
  }
}

/** The prompts as text, for echo (token-id prompts are detokenized). */
function promptTexts(model: Model, prompt: CompletionRequest['prompt']): string[] {
  const list = typeof prompt === 'string' || (prompt.length > 0 && typeof prompt[0] === 'number') ? [prompt as string | number[]] : (prompt as (string | number[])[])
  return list.map((p) => (typeof p === 'string' ? p : model.detokenize(p)))
}

export async function completions(state: ServerState, reply: Reply, raw: unknown): Promise<void> {
  const body = validate(raw)
  const request = completionRequest(body)
  const model = await state.useModel(reply, body.model, { purpose: 'generate', ttl: body.ttl })
  const gen = await serveGeneration(state, reply, model, request, [])
  const n = request.n ?? 1
  const echo = body.echo ? promptTexts(model, body.prompt) : null
  const logprobs = body.logprobs !== undefined && body.logprobs !== null
  const head = { id: newId('cmpl-'), object: 'text_completion', created: nowSeconds(), model: model.id, system_fingerprint: SYSTEM_FINGERPRINT }
  const tokens: TokenInfo[][] = Array.from({ length: gen.choices }, () => [])

  if (body.stream) {
    const includeUsage = body.stream_options?.include_usage ?? false
    const extra = includeUsage ? { usage: null } : {}
    const sse = reply.sse()
    const offsets: number[] = Array(gen.choices).fill(0)
    if (echo) {
      // after admission (a refused request keeps its HTTP status), before the first token (a later step)
      for (let index = 0; index < gen.choices; index++) {
        sse.send({ ...head, choices: [{ text: echo[Math.floor(index / n)], index, logprobs: null, finish_reason: null }], ...extra })
      }
    }
    gen.listen((e) => {
      const index = e.choice
      if (e.kind === 'token' && logprobs) tokens[index]!.push(e.token)
      else if (e.kind === 'content') {
        const lp = logprobs ? legacyLogprobs(model, tokens[index]!.splice(0), offsets[index]!) : null
        offsets[index]! += e.text.length
        sse.send({ ...head, choices: [{ text: e.text, index, logprobs: lp, finish_reason: null }], ...extra })
      } else if (e.kind === 'end') {
        sse.send({ ...head, choices: [{ text: '', index, logprobs: null, finish_reason: e.finish === 'length' ? 'length' : 'stop' }], ...extra })
      }
    })
    await streamTail(sse, reply, gen.result, includeUsage ? (r) => ({ ...head, choices: [], usage: chatUsage(r.usage) }) : null)
    return
  }

  gen.listen((e) => {
    if (e.kind === 'token' && logprobs) tokens[e.choice]!.push(e.token)
  })
  const r = await gen.result
  reply.json(200, {
    ...head,
    choices: r.choices.map((c) => ({
      text: (echo ? echo[c.prompt] : '') + c.message.content,
      index: c.index,
      logprobs: logprobs ? legacyLogprobs(model, tokens[c.index]!, 0) : null,
      finish_reason: c.finish === 'length' ? 'length' : 'stop',
    })),
    usage: chatUsage(r.usage),
  })
}
