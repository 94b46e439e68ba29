// A chat request prepared for the scheduler, through llama.cpp's own chat layer (the model's template rendered with
// tools, tool_choice, a JSON schema and reasoning options; its grammar, triggers, preserved tokens and extra stops;
// its parser for the output). Templates that know no tools get hearth's own envelope (tool-envelope.ts) instead.
// Every schema and every JSON value from the caller is bounded here, before anything native sees it.
import { createHash } from 'node:crypto'
import { decodeChatMedia } from './chat-media.js'
import { mediaParts, toNativeMessages, type ChatMessage, type Tool } from './chat-template.js'
import { ParsedOutput, type ChatOutput } from './chat-output.js'
import { HearthError, invalidParam } from './errors.js'
import type { PreparedRequest } from './generation.js'
import { checkGrammarLimits } from './grammar-limits.js'
import { checkJsonTextLimits } from './json-limits.js'
import { checkSchema } from './json-schema-check.js'
import type { MediaSpan } from './media.js'
import { portablePatterns } from './json-schema-portable.js'
import type { Model } from './model.js'
import type { NativeChatApplied, NativeChatInput, NativeChatMessage } from './native.js'
import { samplingParams, type SamplingInput } from './params.js'
import { EnvelopeOutput, envelopeConversation, envelopeSchema } from './tool-envelope.js'

/** The shape the answer must take. */
export type OutputFormat =
  | { type: 'text' }
  /** any one JSON object */
  | { type: 'json-object' }
  /** JSON valid against `schema` */
  | { type: 'json-schema'; schema: Record<string, unknown>; name?: string; strict?: boolean }

/** Which tools the model may or must call: none, any or none (auto), at least one (required), or one by name. */
export type ToolChoice = 'auto' | 'none' | 'required' | { name: string }

export interface ChatRequest {
  messages: ChatMessage[]
  tools?: Tool[]
  toolChoice?: ToolChoice
  /** several calls in one turn (default true, as OpenAI) */
  parallelToolCalls?: boolean
  format?: OutputFormat
  /** reasoning effort for templates that take one (gpt-oss: low, medium, high); "none" or "minimal" turns thinking off */
  reasoningEffort?: string
  /** reasoning extracted from the content (default), or left inline as the model wrote it */
  reasoning?: 'separate' | 'inline'
  /** when the conversation does not fit the context: drop its oldest turns (keeping system messages and the last turn) */
  truncateOldest?: boolean
  sampling?: SamplingInput
  /** choices; default 1 */
  n?: number
  signal?: AbortSignal
}

const ANY_OBJECT = '{"type": "object"}'

export async function prepareChat(model: Model, request: ChatRequest): Promise<PreparedRequest> {
  const params = samplingParams(request.sampling)
  // media for a model that cannot read it is refused before any template work
  if (!model.projector && mediaParts(request.messages).length > 0) await decodeChatMedia(request.messages, null, {}, model.id)
  const asked = request.format ?? { type: 'text' }
  const format: OutputFormat = asked.type === 'json-schema' ? { ...asked, schema: portablePatterns(asked.schema) } : asked
  const choice = request.toolChoice ?? 'auto'
  let tools = (choice === 'none' ? [] : (request.tools ?? [])).map((t) => (t.parameters ? { ...t, parameters: portablePatterns(t.parameters) } : t))
  if (typeof choice === 'object') tools = tools.filter((t) => t.name === choice.name)
  checkInputs(request, tools, format)
  const mustCall = tools.length > 0 && choice !== 'auto'
  const parallel = request.parallelToolCalls ?? true
  const templates = model.chatTemplates
  // llama.cpp parses tool calls only for template families it knows; others get hearth's envelope
  const envelope = tools.length > 0 && !templates.caps.supportsToolCalls
  let schema: string | undefined
  if (envelope) {
    const answerSchema = format.type === 'json-schema' ? format.schema : format.type === 'json-object' ? { type: 'object' } : undefined
    schema = JSON.stringify(envelopeSchema(tools, mustCall, parallel, answerSchema))
  } else if (format.type === 'json-schema') schema = JSON.stringify(format.schema)
  else if (format.type === 'json-object') schema = ANY_OBJECT
  if (schema && params.grammar) throw invalidParam('grammar', 'grammar cannot be combined with tools that must be called or a JSON format')

  const effort = request.reasoningEffort
  const input: Omit<NativeChatInput, 'messages'> = {
    ...(envelope || tools.length === 0 ? {} : { tools: tools.map((t) => ({ name: t.name, ...(t.description ? { description: t.description } : {}), ...(t.parameters ? { parameters: JSON.stringify(t.parameters) } : {}) })) }),
    toolChoice: envelope ? 'none' : mustCall ? 'required' : tools.length ? 'auto' : 'none',
    parallelToolCalls: parallel,
    ...(schema ? { jsonSchema: schema } : {}),
    reasoningFormat: request.reasoning === 'inline' ? 'none' : 'auto',
    enableThinking: effort !== 'none' && effort !== 'minimal',
    ...(effort && effort !== 'none' && effort !== 'minimal' ? { chatTemplateKwargs: { reasoning_effort: JSON.stringify(effort) } } : {}),
  }
  const marker = model.projector?.marker ?? ''
  const render = async (messages: ChatMessage[]) => {
    const native = toNativeMessages(envelope ? envelopeConversation(messages, tools, mustCall) : messages, marker)
    try {
      return await templates.apply({ ...input, messages: native })
    } catch (err) {
      // Mistral's templates raise on any tool call id but nine letters and digits, such as OpenAI's (and hearth's)
      // call_…: a template that refuses the ids gets ids it takes, the same for a call and its result
      const short = shortCallIds(native)
      if ((err as { code?: string }).code !== 'chat_template_error' || !short) throw err
      return await templates.apply({ ...input, messages: short }).catch(() => Promise.reject(err))
    }
  }
  let messages = request.messages
  let applied = await render(messages)
  let prompt = await model.chatTokens(applied.prompt)
  while (request.truncateOldest && prompt.length >= model.scheduler.options.nCtxSeq) {
    const shorter = dropOldestTurn(messages)
    if (!shorter) break // only system messages and the last turn are left: the usual context error follows
    messages = shorter
    applied = await render(messages)
    prompt = await model.chatTokens(applied.prompt)
  }
  // media: decoded for the conversation as it will be sent, then the prompt is tokenized around it
  let media: MediaSpan[] | undefined
  const bitmaps = await decodeChatMedia(messages, model.projector, model.mediaOptions, model.id, request.signal)
  if (bitmaps.length > 0) {
    const mp = await model.projector!.tokenize(applied.prompt, bitmaps, model.chatBos(applied.prompt))
    prompt = mp.tokens
    media = mp.spans
    const last = media.at(-1)!
    if (last.end >= prompt.length) throw invalidParam('messages', 'the conversation must not end with a media part: the model answers after text')
  }
  if (mustCall && !envelope) applied = { ...applied, grammar: callAtOnce(applied.grammar) }
  if (!parallel && !envelope && tools.length && applied.grammar) applied = { ...applied, grammar: oneCall(applied.grammar) }
  // the chat layer's grammar is built from checked schemas; it is measured again, as any grammar is
  if (applied.grammar) {
    try {
      checkGrammarLimits(applied.grammar)
    } catch (err) {
      const e = err as HearthError
      throw new HearthError(e.code, `the grammar made from the ${tools.length ? 'tools' : 'format'}: ${e.message}`, tools.length ? 'tools' : 'format')
    }
  }
  const stops = [...model.templateStops, ...applied.additionalStops]
  params.stop = [...params.stop, ...stops.filter((s) => !params.stop.includes(s))]
  const pieces = model.piecesPreserving(applied.preservedTokens)
  return {
    prompts: [prompt],
    ...(media ? { media: [media] } : {}),
    params,
    n: request.n ?? 1,
    output: () => outputFor(applied, envelope),
    ...(applied.grammar || applied.thinkingEndTags.length ? { chat: chatConstraint(applied, prefillTokens(model, prompt, applied.generationPrompt)) } : {}),
    ...(pieces ? { pieces } : {}),
    ...(request.signal ? { signal: request.signal } : {}),
  }
}

function outputFor(applied: NativeChatApplied, envelope: boolean): ChatOutput {
  const parsed = new ParsedOutput(applied.parser.createParser())
  return envelope ? parsed.then(new EnvelopeOutput()) : parsed
}

/**
 * A required (or named) call's grammar without the free text llama.cpp's chat layer allows before the call marker
 * (`root ::= <generation prompt> space until-N? tool-calls`): "required" then means the call comes at once, as with
 * OpenAI, instead of a model that may write text indefinitely before it. Thinking before the call is kept; a root
 * rule of another shape is left as it is.
 */
export function callAtOnce(grammar: string): string {
  return grammar.replace(/^(root ::= .*?) until-\d+\?( .*)$/m, '$1$2')
}

/**
 * The messages with every tool call id that is not nine letters and digits replaced by nine hex digits of its
 * hash (the same id, the same replacement: a call and its result still match, and the prompt of a conversation
 * does not change from turn to turn), or null when no id needs it.
 */
export function shortCallIds(messages: NativeChatMessage[]): NativeChatMessage[] | null {
  const nine = /^[A-Za-z0-9]{9}$/
  const short = (id: string) => (nine.test(id) ? id : createHash('sha256').update(id).digest('hex').slice(0, 9))
  let changed = false
  const out = messages.map((m) => {
    const ids = [...(m.toolCalls ?? []).map((c) => c.id ?? ''), ...(m.toolCallId === undefined ? [] : [m.toolCallId])]
    if (ids.every((id) => nine.test(id))) return m
    changed = true
    return {
      ...m,
      ...(m.toolCalls ? { toolCalls: m.toolCalls.map((c) => ({ ...c, id: short(c.id ?? '') })) } : {}),
      ...(m.toolCallId === undefined ? {} : { toolCallId: short(m.toolCallId) }),
    }
  })
  return changed ? out : null
}

/**
 * The grammar of a turn that may call at most one tool. llama.cpp's chat layer ignores parallel_tool_calls for
 * templates that wrap each call in its own markers (Qwen's and Hermes' `<tool_call>…</tool_call>`): its rule
 * `tool-calls ::= (tool-call space)+` lets a model write call after call, which hearth then drops, until
 * max_tokens. One call, then the end of the turn, is what the client asked for.
 */
export function oneCall(grammar: string): string {
  return grammar.replace(/^tool-calls ::= \(tool-call\?? space\)\+$/m, 'tool-calls ::= tool-call space')
}

function chatConstraint(a: NativeChatApplied, prefill: Int32Array | null) {
  const { grammar, grammarLazy, grammarTriggers, preservedTokens, generationPrompt, thinkingStartTag, thinkingEndTags } = a
  return { grammar, grammarLazy, grammarTriggers, preservedTokens, generationPrompt, thinkingStartTag, thinkingEndTags, ...(prefill ? { prefillTokens: prefill } : {}) }
}

/** The prompt's last tokens that spell exactly the generation prompt (special tokens as text), or null if none do. */
function prefillTokens(model: Model, prompt: Int32Array, generationPrompt: string): Int32Array | null {
  if (!generationPrompt) return null
  const want = Buffer.from(generationPrompt)
  let bytes = 0
  for (let k = 1; k <= prompt.length; k++) {
    if (prompt[prompt.length - k]! < 0) return null // a media span
    bytes += model.specialBytes(prompt[prompt.length - k]!).length
    if (bytes < want.length) continue
    if (bytes > want.length) return null
    const tail = prompt.subarray(prompt.length - k)
    const text = Buffer.concat([...tail].map((t) => model.specialBytes(t)))
    return text.equals(want) ? tail.slice() : null
  }
  return null
}

/** Everything from the caller that becomes a grammar or is parsed natively, bounded before that happens. */
function checkInputs(request: ChatRequest, tools: Tool[], format: OutputFormat): void {
  tools.forEach((t, i) => {
    if (t.parameters) checkSchema(t.parameters, { param: `tools[${i}].parameters`, strict: t.strict === true })
  })
  // json_schema answers are held to what the grammar can enforce: anything else is refused, never ignored
  if (format.type === 'json-schema') checkSchema(format.schema, { param: 'format.schema', strict: true })
  request.messages.forEach((m, i) => {
    m.toolCalls?.forEach((c, k) => checkJsonTextLimits(c.arguments, `messages[${i}].tool_calls[${k}].function.arguments`))
  })
}

/**
 * The conversation without its oldest turn that is not a system message, or null when only system messages and
 * the last turn are left. An assistant turn's tool calls go together with the tool results that answer them.
 */
export function dropOldestTurn(messages: ChatMessage[]): ChatMessage[] | null {
  const at = messages.findIndex((m) => m.role !== 'system' && m.role !== 'developer')
  if (at === -1 || at === messages.length - 1) return null
  const dropped = messages[at]!
  const calls = new Set((dropped.toolCalls ?? []).map((c) => c.id))
  const out = messages.filter((m, i) => i !== at && !(m.role === 'tool' && m.toolCallId !== undefined && calls.has(m.toolCallId)))
  // a turn must remain after the system messages
  return out.some((m) => m.role !== 'system' && m.role !== 'developer') ? out : null
}
