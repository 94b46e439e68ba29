// POST /v1/chat/completions: the wire body becomes one library chat request (here, in `chatRequest`), the library
// runs it, and its events are rendered exactly in OpenAI's format: streamed (role chunk first, content / reasoning /
// tool-call deltas, a finish chunk with delta {}, the include_usage chunk with choices [] before [DONE]) or as one
// chat.completion object.
import type { ChatRequest } from '../lib/chat.js'
import { invalidParam } from '../lib/errors.js'
import type { ChoiceFinish, GenerationEvent, GenerationResult, Usage } from '../lib/generation.js'
import type { Model } from '../lib/model.js'
import type { TokenInfo } from '../lib/sequence.js'
import { chatMessages, chatTools, outputFormat, toolChoice } from './chat-messages.js'
import type { Reply } from './http.js'
import { newId, nowSeconds, SYSTEM_FINGERPRINT } from './ids.js'
import { chatLogprobContent } from './logprobs.js'
import { serveGeneration, type ParamNames } from './run.js'
import { samplingFromWire } from './sampling.js'
import { ChatCompletionRequest, IGNORED, validator } from './schemas.js'
import type { ServerState } from './state.js'
import { streamTail } from './stream-tail.js'

const validate = validator(ChatCompletionRequest, IGNORED.chat)

/** The one place a chat completions body becomes a library request. */
function chatRequest(body: ChatCompletionRequest, signal: AbortSignal | undefined): ChatRequest {
  if (body.top_logprobs && !body.logprobs) throw invalidParam('top_logprobs', 'top_logprobs needs logprobs: true')
  const tools = chatTools(body.tools)
  return {
    messages: chatMessages(body.messages),
    tools,
    toolChoice: toolChoice(body.tool_choice, tools),
    parallelToolCalls: body.parallel_tool_calls ?? true,
    format: outputFormat(body.response_format, 'response_format'),
    ...(body.reasoning_effort ? { reasoningEffort: body.reasoning_effort } : {}),
    // llama-server's field: "none" leaves the thinking inline in the content, as the model wrote it
    reasoning: body.reasoning_format === 'none' ? 'inline' : 'separate',
    sampling: samplingFromWire(body, {
      maxTokens: body.max_completion_tokens ?? body.max_tokens,
      stop: body.stop,
      logprobs: body.logprobs ?? false,
      topLogprobs: body.top_logprobs ?? 0,
    }),
    n: body.n ?? 1,
    ...(signal ? { signal } : {}),
  }
}

export function finishReason(f: ChoiceFinish): 'stop' | 'length' | 'tool_calls' {
  return f === 'tool-calls' ? 'tool_calls' : f
}

export function chatUsage(u: Usage) {
  return {
    prompt_tokens: u.promptTokens,
    completion_tokens: u.completionTokens,
    total_tokens: u.promptTokens + u.completionTokens,
    prompt_tokens_details: { cached_tokens: u.cachedTokens },
    completion_tokens_details: { reasoning_tokens: u.reasoningTokens },
  }
}

export async function chatCompletions(state: ServerState, reply: Reply, raw: unknown): Promise<void> {
  const body = validate(raw)
  const request = chatRequest(body, undefined)
  const model = await state.useModel(reply, body.model, { purpose: 'generate', ttl: body.ttl })
  const names: ParamNames = [
    ['prompt', 'messages'],
    ['max_tokens', body.max_completion_tokens !== undefined && body.max_completion_tokens !== null ? 'max_completion_tokens' : 'max_tokens'],
    ['format.schema', 'response_format.json_schema.schema'],
    ['format', 'response_format'],
    ...(body.tools ?? []).map((_, i): [string, string] => [`tools[${i}].parameters`, `tools[${i}].function.parameters`]),
  ]
  // a forced call leaves no content: the role chunk says null, as OpenAI's does before tool calls (an empty string
  // would open an empty text part in clients such as the AI SDK)
  const forcedCall = (request.tools?.length ?? 0) > 0 && request.toolChoice !== 'auto' && request.toolChoice !== 'none'
  const gen = await serveGeneration(state, reply, model, request, names)
  const logprobs = body.logprobs ?? false
  const head = { id: newId('chatcmpl-'), object: 'chat.completion.chunk', created: nowSeconds(), model: model.id, system_fingerprint: SYSTEM_FINGERPRINT }
  if (body.stream) {
    const includeUsage = body.stream_options?.include_usage ?? false
    const extra = includeUsage ? { usage: null } : {}
    const sse = reply.sse()
    for (let index = 0; index < gen.choices; index++) {
      sse.send({ ...head, choices: [{ index, delta: { role: 'assistant', content: forcedCall ? null : '', refusal: null }, logprobs: null, finish_reason: null }], ...extra })
    }
    const render = deltaRenderer(model, logprobs)
    gen.listen((e) => {
      const choice = render(e)
      if (choice) sse.send({ ...head, choices: [choice], ...extra })
    })
    await streamTail(sse, reply, gen.result, includeUsage ? (r) => ({ ...head, choices: [], usage: chatUsage(r.usage) }) : null)
    return
  }
  const tokens: TokenInfo[][] = Array.from({ length: gen.choices }, () => [])
  gen.listen((e) => {
    if (logprobs && e.kind === 'token') tokens[e.choice]!.push(e.token)
  })
  reply.json(200, completionObject(head, await gen.result, (i) => (logprobs ? { content: chatLogprobContent(model, tokens[i]!), refusal: null } : null)))
}

function completionObject(head: { id: string; created: number; model: string }, r: GenerationResult, logprobs: (choice: number) => unknown) {
  return {
    id: head.id,
    object: 'chat.completion',
    created: head.created,
    model: head.model,
    system_fingerprint: SYSTEM_FINGERPRINT,
    choices: r.choices.map((c) => {
      const m = c.message
      const calls = m.toolCalls.map((t) => ({ id: t.id, type: 'function', function: { name: t.name, arguments: t.arguments } }))
      return {
        index: c.index,
        message: {
          role: 'assistant',
          // as OpenAI: no content but tool calls is null, not ""
          content: calls.length > 0 && m.content === '' ? null : m.content,
          refusal: null,
          ...(m.reasoning ? { reasoning_content: m.reasoning } : {}),
          ...(calls.length > 0 ? { tool_calls: calls } : {}),
        },
        logprobs: logprobs(c.index),
        finish_reason: finishReason(c.finish),
      }
    }),
    usage: chatUsage(r.usage),
  }
}

/**
 * One streamed choice object per event that shows on the wire. Log-probabilities of tokens travel with the next
 * content delta (or the finish chunk), as OpenAI sends them with the content they produced.
 */
function deltaRenderer(model: Model, logprobs: boolean): (e: GenerationEvent) => Record<string, unknown> | null {
  const pending = new Map<number, TokenInfo[]>()
  const take = (choice: number) => {
    const tokens = pending.get(choice) ?? []
    pending.set(choice, [])
    return tokens
  }
  return (e) => {
    const index = e.choice
    switch (e.kind) {
      case 'token':
        if (logprobs) (pending.get(index) ?? pending.set(index, []).get(index)!).push(e.token)
        return null
      case 'content':
        return { index, delta: { content: e.text }, logprobs: logprobs ? { content: chatLogprobContent(model, take(index)) } : null, finish_reason: null }
      case 'reasoning':
        return { index, delta: { reasoning_content: e.text }, logprobs: null, finish_reason: null }
      case 'tool-call':
        return { index, delta: { tool_calls: [{ index: e.index, id: e.id, type: 'function', function: { name: e.name, arguments: '' } }] }, logprobs: null, finish_reason: null }
      case 'tool-arguments':
        return { index, delta: { tool_calls: [{ index: e.index, function: { arguments: e.text } }] }, logprobs: null, finish_reason: null }
      case 'end': {
        const rest = logprobs ? take(index) : []
        return { index, delta: {}, logprobs: rest.length ? { content: chatLogprobContent(model, rest) } : null, finish_reason: finishReason(e.finish) }
      }
    }
  }
}
