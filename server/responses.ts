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
import type { Reply, SseWriter } from './http.js'
import { echoedTools, listedLabels, McpSession, storedApprovalRequests } from './mcp-loop.js'
import { mcpInputItems, mcpServers, modelTools } from './mcp-tools.js'
import { newId } from './ids.js'
import { chatLogprobContent } from './logprobs.js'
import { ResponseOutput, type Item } from './response-output.js'
import { serveGeneration, type ParamNames } from './run.js'
import { samplingFromWire } from './sampling.js'
import { ResponseRequest, IGNORED, validator } from './schemas.js'
import type { ServerState } from './state.js'
import { errorObject } from './stream-tail.js'

const validate = validator(ResponseRequest, IGNORED.responses)
/** OpenAI's summary levels; hearth gives the whole reasoning for any of them */
const SUMMARIES = new Set(['auto', 'concise', 'detailed'])

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
  const summary = body.reasoning?.summary
  if (summary !== undefined && summary !== null && !SUMMARIES.has(summary)) {
    throw invalidParam('reasoning.summary', `reasoning.summary must be one of ${[...SUMMARIES].join(', ')}`)
  }
  if (body.truncation && body.truncation !== 'disabled' && body.truncation !== 'auto') {
    throw invalidParam('truncation', 'truncation must be "auto" or "disabled"')
  }
  const conversation = [...history, ...responseInputMessages(body.input as string | Record<string, unknown>[], (id) => state.responses.item(id))]
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
    reasoning: { effort: b.reasoning?.effort ?? null, summary: b.reasoning?.summary ?? null },
    service_tier: 'default',
    store: b.store ?? true,
    temperature: b.temperature ?? defaultSampling.temperature,
    text: { format: b.text?.format ?? { type: 'text' } },
    tool_choice: b.tool_choice ?? 'auto',
    tools: echoedTools(b.tools),
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
  if (typeof body.max_tool_calls === 'number' && body.max_tool_calls < 1) throw invalidParam('max_tool_calls', 'max_tool_calls must be at least 1')
  const { functions, servers } = mcpServers(body.tools, state.mcp !== null)
  const mcpInput = mcpInputItems(body.input as string | Record<string, unknown>[])
  const forcedMcp = mcpToolChoice(body.tool_choice)
  const { request, conversation } = responseRequest(state, { ...body, input: mcpInput.rest, tools: functions, tool_choice: servers.length ? 'auto' : body.tool_choice })
  const model = await state.useModel(reply, body.model, { purpose: 'generate', ttl: body.ttl })
  const shape: Shape = { id: newId('resp_'), createdAt: Math.floor(Date.now() / 1000), model: model.id, body }
  const logprobs = (body.top_logprobs ?? 0) > 0
  // events wait until the stream opens (after the first turn is admitted, so its refusals are plain HTTP errors)
  let sse: SseWriter | null = null
  let seq = 0
  const queued: [string, Item][] = []
  const send = (type: string, data: Item) => sse!.send({ type, sequence_number: seq++, ...data }, type)
  const emit = body.stream ? (type: string, data: Item) => (sse ? send(type, data) : queued.push([type, data])) : () => undefined
  const openStream = () => {
    if (!body.stream || sse) return
    sse = reply.sse()
    const started = responseObject(shape, 'in_progress', [], null)
    send('response.created', { response: started })
    send('response.in_progress', { response: started })
    for (const [type, data] of queued.splice(0)) send(type, data)
  }
  const abort = new AbortController()
  reply.onAbort(() => abort.abort())
  const mcp = servers.length || mcpInput.responses.length ? new McpSession(state.mcp!, state.config.mcp, abort.signal, body.max_tool_calls) : null
  if (mcpInput.responses.length && !mcp) throw new HearthError('mcp_not_enabled', 'input has mcp_approval_response items: remote MCP tools are off on this server (--allow-mcp)', 'input')
  const output = new ResponseOutput(emit, { summary: Boolean(body.reasoning?.summary), ...(mcp ? { kind: mcp.kind } : {}) })
  let result: GenerationResult | null = null
  let outOfTokens = false
  const usage = { promptTokens: 0, completionTokens: 0, cachedTokens: 0, reasoningTokens: 0 }
  try {
    if (mcp) {
      const prev = body.previous_response_id ? state.responses.get(body.previous_response_id) : null
      try {
        await mcp.list(servers, output, listedLabels(prev?.response.output, body.input))
      } catch (err) {
        if (!body.stream) throw err
        openStream()
        throw err
      }
      await mcp.answerApprovals(mcpInput.responses, [...mcpInput.requests, ...storedApprovalRequests(prev?.response.output)], output, conversation)
      request.tools = modelTools(request.tools ?? [], mcp.servers)
      if (forcedMcp) {
        if (!mcp.kind(forcedMcp.name) || mcp.kind(forcedMcp.name)!.serverLabel !== forcedMcp.serverLabel) {
          throw invalidParam('tool_choice', `tool_choice names ${JSON.stringify(forcedMcp.name)} on MCP server '${forcedMcp.serverLabel}', which offers no such tool here`)
        }
        request.toolChoice = { name: forcedMcp.name }
      } else request.toolChoice = toolChoice(body.tool_choice, request.tools)
    }
    const forced = request.toolChoice
    for (let turn = 0; ; turn++) {
      output.nextTurn()
      // a forced choice is for the first turn only: never again after a tool's answer
      const afterCall = turn > 0 || (mcp?.calls ?? 0) > 0 || mcpInput.responses.length > 0
      const choice = !afterCall ? forced : mcp && mcp.calls >= mcp.maxCalls ? 'none' : forced === 'none' ? 'none' : 'auto'
      const messages = body.instructions ? [{ role: 'system' as const, content: body.instructions }, ...conversation] : [...conversation]
      // max_output_tokens bounds the whole response, every turn together
      const max = body.max_output_tokens
      if (turn > 0 && typeof max === 'number' && usage.completionTokens >= max) {
        outOfTokens = true
        break
      }
      const sampling = turn > 0 && typeof max === 'number' ? { ...request.sampling, maxTokens: max - usage.completionTokens } : request.sampling
      const gen = await serveGeneration(state, reply, model, { ...request, messages, toolChoice: choice, ...(sampling ? { sampling } : {}) }, NAMES)
      openStream()
      const pending: TokenInfo[] = []
      gen.listen((e) => {
        if (e.kind === 'token') {
          if (logprobs) pending.push(e.token)
        } else if (e.kind === 'end') {
          output.finish(e.finish === 'length' ? 'incomplete' : 'completed')
        } else {
          output.add(e, e.kind === 'content' && logprobs ? chatLogprobContent(model, pending.splice(0)) : [])
        }
      })
      result = await gen.result
      const u = result.usage
      usage.promptTokens += u.promptTokens
      usage.completionTokens += u.completionTokens
      usage.cachedTokens += u.cachedTokens
      usage.reasoningTokens += u.reasoningTokens
      const choice0 = result.choices[0]!
      const m = choice0.message
      // calls waiting for approval are not in the conversation: the approval response adds them with their answer
      const kinds = m.toolCalls.map((c) => output.kindOf(c.name))
      const answer: ChatMessage = { role: 'assistant', content: m.content }
      const kept = m.toolCalls.filter((_, i) => kinds[i]?.type !== 'mcp_approval_request')
      if (kept.length) answer.toolCalls = kept
      if (m.reasoning) answer.reasoning = m.reasoning
      conversation.push(answer)
      const runs = output.mcpCalls.splice(0)
      const runIds = m.toolCalls.filter((_, i) => kinds[i]?.type === 'mcp_call').map((c) => c.id)
      for (const [i, run] of runs.entries()) {
        const text = choice0.finish === 'length' ? null : await mcp!.run(output, run.item, run.index)
        if (text === null) {
          run.item.status = 'incomplete'
          output.done(run.index)
        } else if (runIds[i] !== undefined) conversation.push({ role: 'tool', toolCallId: runIds[i], content: text })
      }
      const endsHere = choice0.finish === 'length' || runs.length === 0 || kinds.some((k) => k === null || k.type === 'mcp_approval_request')
      if (endsHere) break
    }
  } catch (err) {
    if (!sse) throw err
    if (reply.open) {
      const e = errorObject(err)
      emit('error', { code: e.code, message: e.message, param: e.param })
      emit('response.failed', { response: { ...responseObject(shape, 'failed', output.items, null), error: { code: e.code, message: e.message } } })
    }
    ;(sse as SseWriter).end()
    return
  }
  const last = result!.choices[0]!
  const status = last.finish === 'length' || outOfTokens ? 'incomplete' : 'completed'
  const response = responseObject(shape, status, output.items, { ...result!, usage: { ...result!.usage, ...usage } })
  if (body.store ?? true) state.responses.set(shape.id, { response, messages: conversation })
  if (!sse) {
    reply.json(200, response)
    return
  }
  emit(status === 'completed' ? 'response.completed' : 'response.incomplete', { response })
  ;(sse as SseWriter).end()
}

/** tool_choice {type: "mcp", server_label, name}: the MCP tool the first turn must call. */
function mcpToolChoice(raw: unknown): { serverLabel: string; name: string } | null {
  if (typeof raw !== 'object' || raw === null || (raw as Item).type !== 'mcp') return null
  const c = raw as Item
  if (typeof c.server_label !== 'string' || typeof c.name !== 'string') throw invalidParam('tool_choice', 'tool_choice {"type": "mcp"} needs server_label and name')
  return { serverLabel: c.server_label, name: c.name }
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
