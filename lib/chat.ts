// A chat request prepared for the scheduler: the messages rendered through the model's template, the output
// constrained as asked (a JSON grammar for a structured format), and the chat-output transform for each choice.
import { type ChatMessage, type Tool } from './chat-template.js'
import { PlainOutput } from './chat-output.js'
import { HearthError } from './errors.js'
import type { PreparedRequest } from './generation.js'
import { jsonGrammar } from './json-grammar.js'
import type { Model } from './model.js'
import { samplingParams, type SamplingInput } from './params.js'

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
  /** reasoning effort for templates that take one (gpt-oss: low, medium, high) */
  reasoningEffort?: string
  sampling?: SamplingInput
  /** choices; default 1 */
  n?: number
  signal?: AbortSignal
}

export function prepareChat(model: Model, request: ChatRequest): PreparedRequest {
  const params = model.withTemplateStops(samplingParams(request.sampling))
  const format = request.format ?? { type: 'text' }
  if (format.type === 'json-schema') {
    throw new HearthError('unsupported_parameter', 'a json_schema format is not supported yet; use json_object', 'format')
  }
  if (format.type === 'json-object') {
    if (params.grammar) throw new HearthError('invalid_parameter', 'grammar and a JSON format cannot be combined', 'grammar')
    params.grammar = jsonGrammar
  }
  const choice = request.toolChoice ?? 'auto'
  if (choice !== 'auto' && choice !== 'none') {
    throw new HearthError('unsupported_parameter', 'tool_choice other than "auto" or "none" is not supported yet: tool calls are not parsed from model output', 'tool_choice')
  }
  const tools = choice === 'none' ? [] : (request.tools ?? [])
  const prompt = model.chatPrompt(request.messages, {
    ...(tools.length ? { tools } : {}),
    ...(request.reasoningEffort ? { reasoningEffort: request.reasoningEffort } : {}),
  })
  return { prompts: [prompt], params, n: request.n ?? 1, output: () => new PlainOutput(), ...(request.signal ? { signal: request.signal } : {}) }
}
