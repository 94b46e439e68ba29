// POST /v1/chat/completions: messages through the model's chat template, streamed or not, exactly in
// OpenAI's wire format (role chunk first, content deltas, a finish chunk with delta {}, the include_usage
// chunk with choices [] before [DONE]).
import { HearthError, invalidParam } from '../lib/errors.js'
import type { TokenInfo } from '../lib/sequence.js'
import type { Reply } from './http.js'
import { jsonGrammar } from './json-grammar.js'
import {
  chatLogprobContent,
  checkToolChoice,
  choiceCount,
  finishReason,
  finishStream,
  newId,
  nowSeconds,
  runSequences,
  SYSTEM_FINGERPRINT,
  toSampling,
  usage,
} from './openai.js'
import { ChatCompletionRequest, validator } from './schemas.js'
import type { ServerState } from './state.js'
import type { ChatMessage } from '../lib/chat-template.js'

const validate = validator(ChatCompletionRequest)

/** response_format to a grammar: json_object gets any JSON object; json_schema is not supported yet. */
export function formatGrammar(format: { type: string } | null | undefined, param: string): string | null {
  if (!format || format.type === 'text') return null
  if (format.type === 'json_object') return jsonGrammar
  if (format.type === 'json_schema') {
    throw new HearthError('unsupported_parameter', `${param} type json_schema is not supported yet; use json_object`, param)
  }
  throw invalidParam(param, `${param} type must be text, json_object or json_schema`)
}

export async function chatCompletions(state: ServerState, reply: Reply, raw: unknown): Promise<void> {
  const body = validate(raw)
  const model = state.resolveModel(body.model)
  if (body.messages.length === 0) throw invalidParam('messages', 'messages must be a non-empty array')
  const n = choiceCount(body.n)
  checkToolChoice(body.tool_choice)
  const logprobs = body.logprobs ?? false
  if (body.top_logprobs && !logprobs) throw invalidParam('top_logprobs', 'top_logprobs needs logprobs: true')
  const grammar = formatGrammar(body.response_format, 'response_format')
  const params = model.withTemplateStops(
    toSampling(body, {
      maxTokens: body.max_completion_tokens ?? body.max_tokens,
      stop: body.stop,
      logprobs,
      topLogprobs: body.top_logprobs ?? 0,
      ...(grammar ? { grammar } : {}),
    }),
  )
  const prompt = model.chatPrompt(body.messages as ChatMessage[], {
    ...(body.tools ? { tools: body.tools } : {}),
    ...(body.reasoning_effort ? { reasoningEffort: body.reasoning_effort } : {}),
  })
  reply.promptTokens = prompt.length
  const id = newId('chatcmpl-')
  const created = nowSeconds()
  const head = { id, object: 'chat.completion.chunk', created, model: model.id, system_fingerprint: SYSTEM_FINGERPRINT }

  if (body.stream) {
    const includeUsage = body.stream_options?.include_usage ?? false
    const sse = reply.sse()
    const extra = includeUsage ? { usage: null } : {}
    const pendingLogprobs: TokenInfo[][] = Array.from({ length: n }, () => [])
    const work = runSequences(state, model, reply, [prompt], params, n, {
      chunk(index, c) {
        if (logprobs && c.token) pendingLogprobs[index]!.push(c.token)
        if (!c.text) return
        const lp = logprobs ? { content: chatLogprobContent(model, pendingLogprobs[index]!.splice(0)) } : null
        sse.send({ ...head, choices: [{ index, delta: { content: c.text }, logprobs: lp, finish_reason: null }], ...extra })
      },
      end(index, r) {
        const rest = pendingLogprobs[index]!.splice(0)
        const lp = logprobs && rest.length ? { content: chatLogprobContent(model, rest) } : null
        sse.send({ ...head, choices: [{ index, delta: {}, logprobs: lp, finish_reason: finishReason(r) }], ...extra })
      },
    })
    // the first token comes in a later step, so the role chunks still lead the stream
    for (let index = 0; index < n; index++) {
      sse.send({ ...head, choices: [{ index, delta: { role: 'assistant', content: '', refusal: null }, logprobs: null, finish_reason: null }], ...extra })
    }
    await finishStream(sse, reply, work, prompt.length, includeUsage ? (u) => ({ ...head, choices: [], usage: u }) : null)
    return
  }

  const texts: string[] = Array(n).fill('')
  const tokens: TokenInfo[][] = Array.from({ length: n }, () => [])
  const results = await runSequences(state, model, reply, [prompt], params, n, {
    chunk(index, c) {
      texts[index] += c.text
      if (logprobs && c.token) tokens[index]!.push(c.token)
    },
  })
  const u = usage(results, prompt.length)
  reply.completionTokens = u.completion_tokens
  reply.json(200, {
    id,
    object: 'chat.completion',
    created,
    model: model.id,
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices: results.map((r, index) => ({
      index,
      message: { role: 'assistant', content: texts[index], refusal: null },
      logprobs: logprobs ? { content: chatLogprobContent(model, tokens[index]!), refusal: null } : null,
      finish_reason: finishReason(r),
    })),
    usage: u,
  })
}
