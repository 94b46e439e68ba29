// POST /v1/responses (and GET/DELETE /v1/responses/{id}): OpenAI's Responses API over the chat template.
// Stateful through previous_response_id (the stored conversation is prepended; instructions are not
// carried over, as OpenAI does). Streaming emits OpenAI's full event sequence with sequence_number from 0.
import { contentText, type ChatMessage } from '../lib/chat-template.js'
import { HearthError, invalidParam } from '../lib/errors.js'
import type { SamplingParams } from '../lib/params.js'
import type { SequenceResult, TokenInfo } from '../lib/sequence.js'
import { formatGrammar } from './chat-completions.js'
import type { Reply } from './http.js'
import { chatLogprobContent, checkToolChoice, errorObject, newId, runSequences, toSampling } from './openai.js'
import { ResponseRequest, validator } from './schemas.js'
import type { ServerState } from './state.js'

const validate = validator(ResponseRequest)

type Item = Record<string, unknown>

/** Responses input items to chat messages. */
function inputMessages(input: ResponseRequest['input']): ChatMessage[] {
  if (typeof input === 'string') return [{ role: 'user', content: input }]
  return input.map((raw, i): ChatMessage => {
    const item = raw as Item
    const where = `input[${i}]`
    const type = (item.type as string | undefined) ?? 'message'
    switch (type) {
      case 'message': {
        const role = item.role
        if (role !== 'user' && role !== 'system' && role !== 'developer' && role !== 'assistant') {
          throw invalidParam(`${where}.role`, `${where}.role must be user, system, developer or assistant`)
        }
        return { role, content: contentText(item.content as ChatMessage['content'], `${where}.content`) }
      }
      case 'function_call': {
        if (typeof item.call_id !== 'string' || typeof item.name !== 'string') {
          throw invalidParam(where, `${where} (function_call) needs call_id and name`)
        }
        const args = typeof item.arguments === 'string' ? item.arguments : '{}'
        return { role: 'assistant', content: null, tool_calls: [{ id: item.call_id, type: 'function', function: { name: item.name, arguments: args } }] }
      }
      case 'function_call_output': {
        if (typeof item.call_id !== 'string') throw invalidParam(where, `${where} (function_call_output) needs call_id`)
        const output = typeof item.output === 'string' ? item.output : JSON.stringify(item.output ?? '')
        return { role: 'tool', tool_call_id: item.call_id, content: output }
      }
      case 'reasoning':
        return { role: 'assistant', content: '' }
      default:
        throw new HearthError('unsupported_parameter', `${where} has type ${JSON.stringify(type)}, which this server does not support`, `${where}.type`)
    }
  }).filter((m) => !(m.role === 'assistant' && m.content === '' && !m.tool_calls))
}

/** Function tools in Responses form to the chat form templates expect. */
function chatTools(tools: ResponseRequest['tools']): unknown[] {
  if (!tools) return []
  return tools.map((t, i) => {
    if (t.type !== 'function') {
      throw new HearthError('unsupported_parameter', `tools[${i}] has type ${JSON.stringify(t.type)}; only function tools are supported yet`, `tools[${i}].type`)
    }
    return { type: 'function', function: { name: t.name, description: t.description, parameters: t.parameters } }
  })
}

interface Shape {
  id: string
  createdAt: number
  model: string
  body: ResponseRequest
  params: SamplingParams
}

function responseObject(s: Shape, status: string, output: Item[], result: SequenceResult | null): Item {
  const incomplete = result !== null && result.finishReason === 'length'
  return {
    id: s.id,
    object: 'response',
    created_at: s.createdAt,
    status,
    background: false,
    error: null,
    incomplete_details: incomplete ? { reason: 'max_output_tokens' } : null,
    instructions: s.body.instructions ?? null,
    max_output_tokens: s.body.max_output_tokens ?? null,
    model: s.model,
    output,
    parallel_tool_calls: s.body.parallel_tool_calls ?? true,
    previous_response_id: s.body.previous_response_id ?? null,
    reasoning: { effort: s.body.reasoning?.effort ?? null, summary: null },
    service_tier: 'default',
    store: s.body.store ?? true,
    temperature: s.params.temperature,
    text: { format: s.body.text?.format ?? { type: 'text' } },
    tool_choice: s.body.tool_choice ?? 'auto',
    tools: s.body.tools ?? [],
    top_logprobs: s.body.top_logprobs ?? 0,
    top_p: s.params.topP,
    truncation: s.body.truncation ?? 'disabled',
    usage: result
      ? {
          input_tokens: result.promptTokens,
          input_tokens_details: { cached_tokens: result.cachedTokens },
          output_tokens: result.completionTokens,
          output_tokens_details: { reasoning_tokens: 0 },
          total_tokens: result.promptTokens + result.completionTokens,
        }
      : null,
    user: s.body.user ?? null,
    metadata: s.body.metadata ?? {},
  }
}

function textPart(text: string, logprobs: unknown[]): Item {
  return { type: 'output_text', annotations: [], logprobs, text }
}

export async function createResponse(state: ServerState, reply: Reply, raw: unknown): Promise<void> {
  const body = validate(raw)
  const model = state.resolveModel(body.model)
  let history: ChatMessage[] = []
  if (body.previous_response_id) {
    const prev = state.responses.get(body.previous_response_id)
    if (!prev) {
      throw new HearthError('previous_response_not_found', `Previous response with id '${body.previous_response_id}' not found.`, 'previous_response_id')
    }
    history = prev.messages
  }
  checkToolChoice(body.tool_choice)
  const input = inputMessages(body.input)
  const conversation = [...history, ...input]
  const messages: ChatMessage[] = body.instructions ? [{ role: 'system', content: body.instructions }, ...conversation] : conversation
  const grammar = formatGrammar(body.text?.format, 'text.format')
  const topLogprobs = body.top_logprobs ?? 0
  const params = model.withTemplateStops(
    toSampling(body, {
      maxTokens: body.max_output_tokens,
      logprobs: topLogprobs > 0,
      topLogprobs,
      ...(grammar ? { grammar } : {}),
    }),
  )
  const tools = chatTools(body.tools)
  const prompt = model.chatPrompt(messages, {
    ...(tools.length ? { tools } : {}),
    ...(body.reasoning?.effort ? { reasoningEffort: body.reasoning.effort } : {}),
  })
  reply.promptTokens = prompt.length
  const shape: Shape = { id: newId('resp_'), createdAt: Math.floor(Date.now() / 1000), model: model.id, body, params }
  const msgId = newId('msg_')
  let text = ''
  const tokens: TokenInfo[] = []

  const finish = (result: SequenceResult) => {
    const status = result.finishReason === 'length' ? 'incomplete' : 'completed'
    const part = textPart(text, topLogprobs > 0 ? chatLogprobContent(model, tokens) : [])
    const item: Item = { id: msgId, type: 'message', status, content: [part], role: 'assistant' }
    const response = responseObject(shape, status, [item], result)
    reply.completionTokens = result.completionTokens
    if (body.store ?? true) {
      state.responses.set(shape.id, { response, messages: [...conversation, { role: 'assistant', content: text }] })
    }
    return { response, item, part, status }
  }

  if (!body.stream) {
    const [result] = await runSequences(state, model, reply, [prompt], params, 1, {
      chunk(_, c) {
        text += c.text
        if (c.token && topLogprobs > 0) tokens.push(c.token)
      },
    })
    reply.json(200, finish(result!).response)
    return
  }

  const sse = reply.sse()
  let seq = 0
  const emit = (type: string, data: Item) => sse.send({ type, sequence_number: seq++, ...data }, type)
  const pending: TokenInfo[] = []
  // admission errors are thrown here, before anything is written, so they keep their HTTP status
  const work = runSequences(state, model, reply, [prompt], params, 1, {
    chunk(_, c) {
      if (c.token && topLogprobs > 0) {
        tokens.push(c.token)
        pending.push(c.token)
      }
      if (!c.text) return
      text += c.text
      const logprobs = topLogprobs > 0 ? chatLogprobContent(model, pending.splice(0)) : []
      emit('response.output_text.delta', { item_id: msgId, output_index: 0, content_index: 0, delta: c.text, logprobs })
    },
  })
  // the first token comes in a later step, so these still open the stream
  const started = responseObject(shape, 'in_progress', [], null)
  emit('response.created', { response: started })
  emit('response.in_progress', { response: started })
  emit('response.output_item.added', { output_index: 0, item: { id: msgId, type: 'message', status: 'in_progress', content: [], role: 'assistant' } })
  emit('response.content_part.added', { item_id: msgId, output_index: 0, content_index: 0, part: textPart('', []) })
  try {
    const [result] = await work
    const { response, item, part, status } = finish(result!)
    emit('response.output_text.done', { item_id: msgId, output_index: 0, content_index: 0, text, logprobs: part.logprobs as unknown[] })
    emit('response.content_part.done', { item_id: msgId, output_index: 0, content_index: 0, part })
    emit('response.output_item.done', { output_index: 0, item })
    emit(status === 'completed' ? 'response.completed' : 'response.incomplete', { response })
  } catch (err) {
    if (reply.open) failStream(emit, shape, err)
  }
  sse.end()
}

function failStream(emit: (type: string, data: Item) => void, shape: Shape, err: unknown): void {
  const e = errorObject(err)
  emit('error', { code: e.code, message: e.message, param: e.param })
  emit('response.failed', { response: { ...responseObject(shape, 'failed', [], null), error: { code: e.code, message: e.message } } })
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
