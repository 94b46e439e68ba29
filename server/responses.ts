// POST /v1/responses (and GET/DELETE /v1/responses/{id}): OpenAI's Responses API. The body (with the stored
// conversation of previous_response_id prepended; instructions are not carried over, as OpenAI does) becomes one
// library chat request in `responseRequest`; the output items and, when streaming, OpenAI's full event sequence
// with sequence_number from 0 come from ResponseOutput.
import type { ChatRequest } from '../lib/chat.js'
import type { ChatMessage } from '../lib/chat-template.js'
import { HearthError, invalidParam } from '../lib/errors.js'
import { defaultSampling } from '../lib/params.js'
import type { GenerationResult } from '../lib/generation.js'
import type { TokenInfo } from '../lib/sequence.js'
import { outputFormat, responseInputMessages, responseTools, toolChoice } from './chat-messages.js'
import type { Reply } from './http.js'
import { newId } from './ids.js'
import { chatLogprobContent } from './logprobs.js'
import { ResponseOutput, type Item } from './response-output.js'
import { serveGeneration, type ParamNames } from './run.js'
import { samplingFromWire } from './sampling.js'
import { ResponseRequest, IGNORED, validator } from './schemas.js'
import type { ServerState } from './state.js'
import { errorObject } from './stream-tail.js'

const validate = validator(ResponseRequest, IGNORED.responses)

const NAMES: ParamNames = [
  ['prompt', 'input'],
  ['messages', 'input'],
  ['max_tokens', 'max_output_tokens'],
  ['format', 'text.format'],
]

/** The one place a Responses body becomes a library request; `conversation` is what is stored for the next turn. */
function responseRequest(state: ServerState, body: ResponseRequest): { request: ChatRequest; conversation: ChatMessage[] } {
  let history: ChatMessage[] = []
  if (body.previous_response_id) {
    const prev = state.responses.get(body.previous_response_id)
    if (!prev) {
      throw new HearthError('previous_response_not_found', `Previous response with id '${body.previous_response_id}' not found.`, 'previous_response_id')
    }
    history = prev.messages
  }
  if (body.truncation && body.truncation !== 'disabled' && body.truncation !== 'auto') {
    throw invalidParam('truncation', 'truncation must be "auto" or "disabled"')
  }
  const conversation = [...history, ...responseInputMessages(body.input as string | Record<string, unknown>[])]
  const tools = responseTools(body.tools)
  const topLogprobs = body.top_logprobs ?? 0
  if (topLogprobs < 0 || topLogprobs > 20) throw invalidParam('top_logprobs', 'top_logprobs must be between 0 and 20')
  const request: ChatRequest = {
    messages: body.instructions ? [{ role: 'system', content: body.instructions }, ...conversation] : conversation,
    tools,
    toolChoice: toolChoice(body.tool_choice, tools),
    parallelToolCalls: body.parallel_tool_calls ?? true,
    format: outputFormat(body.text?.format, 'text.format'),
    ...(body.reasoning?.effort ? { reasoningEffort: body.reasoning.effort } : {}),
    truncateOldest: body.truncation === 'auto',
    sampling: samplingFromWire(body, { maxTokens: body.max_output_tokens, logprobs: topLogprobs > 0, topLogprobs }),
  }
  return { request, conversation }
}

interface Shape {
  id: string
  createdAt: number
  model: string
  body: ResponseRequest
}

function responseObject(s: Shape, status: string, output: Item[], r: GenerationResult | null): Item {
  const b = s.body
  return {
    id: s.id,
    object: 'response',
    created_at: s.createdAt,
    status,
    background: false,
    error: null,
    incomplete_details: status === 'incomplete' ? { reason: 'max_output_tokens' } : null,
    instructions: b.instructions ?? null,
    max_output_tokens: b.max_output_tokens ?? null,
    model: s.model,
    output,
    parallel_tool_calls: b.parallel_tool_calls ?? true,
    previous_response_id: b.previous_response_id ?? null,
    reasoning: { effort: b.reasoning?.effort ?? null, summary: null },
    service_tier: 'default',
    store: b.store ?? true,
    temperature: b.temperature ?? defaultSampling.temperature,
    text: { format: b.text?.format ?? { type: 'text' } },
    tool_choice: b.tool_choice ?? 'auto',
    tools: b.tools ?? [],
    top_logprobs: b.top_logprobs ?? 0,
    top_p: b.top_p ?? defaultSampling.topP,
    truncation: b.truncation ?? 'disabled',
    usage: r
      ? {
          input_tokens: r.usage.promptTokens,
          input_tokens_details: { cached_tokens: r.usage.cachedTokens },
          output_tokens: r.usage.completionTokens,
          output_tokens_details: { reasoning_tokens: r.usage.reasoningTokens },
          total_tokens: r.usage.promptTokens + r.usage.completionTokens,
        }
      : null,
    user: b.user ?? null,
    metadata: b.metadata ?? {},
  }
}

export async function createResponse(state: ServerState, reply: Reply, raw: unknown): Promise<void> {
  const body = validate(raw)
  const { request, conversation } = responseRequest(state, body)
  const model = await state.useModel(reply, body.model, { purpose: 'generate', ttl: body.ttl })
  const gen = await serveGeneration(state, reply, model, request, NAMES)
  const shape: Shape = { id: newId('resp_'), createdAt: Math.floor(Date.now() / 1000), model: model.id, body }
  const logprobs = (body.top_logprobs ?? 0) > 0
  const sse = body.stream ? reply.sse() : null
  let seq = 0
  const emit = sse ? (type: string, data: Item) => sse.send({ type, sequence_number: seq++, ...data }, type) : () => undefined
  const output = new ResponseOutput(emit)
  const pending: TokenInfo[] = []
  // the first token comes in a later step, so these still open the stream
  const started = responseObject(shape, 'in_progress', [], null)
  emit('response.created', { response: started })
  emit('response.in_progress', { response: started })
  gen.listen((e) => {
    if (e.kind === 'token') {
      if (logprobs) pending.push(e.token)
    } else if (e.kind === 'end') {
      output.finish(e.finish === 'length' ? 'incomplete' : 'completed')
    } else {
      output.add(e, e.kind === 'content' && logprobs ? chatLogprobContent(model, pending.splice(0)) : [])
    }
  })
  let result: GenerationResult
  try {
    result = await gen.result
  } catch (err) {
    if (!sse) throw err
    if (reply.open) {
      const e = errorObject(err)
      emit('error', { code: e.code, message: e.message, param: e.param })
      emit('response.failed', { response: { ...responseObject(shape, 'failed', output.items, null), error: { code: e.code, message: e.message } } })
    }
    sse.end()
    return
  }
  const choice = result.choices[0]!
  const status = choice.finish === 'length' ? 'incomplete' : 'completed'
  const response = responseObject(shape, status, output.items, result)
  if (body.store ?? true) {
    const m = choice.message
    const answer: ChatMessage = { role: 'assistant', content: m.content }
    if (m.toolCalls.length) answer.toolCalls = m.toolCalls
    if (m.reasoning) answer.reasoning = m.reasoning
    state.responses.set(shape.id, { response, messages: [...conversation, answer] })
  }
  if (!sse) {
    reply.json(200, response)
    return
  }
  emit(status === 'completed' ? 'response.completed' : 'response.incomplete', { response })
  sse.end()
}

export function getResponse(state: ServerState, reply: Reply, id: string): void {
  const stored = state.responses.get(id)
  if (!stored) throw new HearthError('response_not_found', `Response with id '${id}' not found.`, 'response_id')
  reply.json(200, stored.response)
}

export function deleteResponse(state: ServerState, reply: Reply, id: string): void {
  if (!state.responses.delete(id)) throw new HearthError('response_not_found', `Response with id '${id}' not found.`, 'response_id')
  reply.json(200, { id, object: 'response.deleted', deleted: true })
}
