// Chat messages to a prompt through the model's own Jinja chat template (@huggingface/jinja), or through
// FALLBACK_CHAT_TEMPLATE for models that have none (base models such as the built-in default).
import { Template } from '@huggingface/jinja'
import { HearthError, invalidParam } from './errors.js'

export interface ChatContentPart {
  type: 'text'
  text: string
}

export interface ToolCall {
  id: string
  name: string
  /** JSON text */
  arguments: string
}

export type ChatRole = 'system' | 'developer' | 'user' | 'assistant' | 'tool'

export interface ChatMessage {
  role: ChatRole
  content?: string | ChatContentPart[] | null
  name?: string
  /** an assistant turn's tool calls */
  toolCalls?: ToolCall[]
  /** a tool turn: the call it answers */
  toolCallId?: string
  /** an assistant turn's reasoning */
  reasoning?: string
}

/** A function the model may call. */
export interface Tool {
  name: string
  description?: string
  /** JSON schema of the arguments object */
  parameters?: Record<string, unknown>
  strict?: boolean
}

export interface ChatRenderOptions {
  /** end with the assistant's turn opening (default true) */
  addGenerationPrompt?: boolean
  /** functions the model may call, handed to the template as `tools` (OpenAI's chat form) */
  tools?: Tool[]
  /** reasoning effort (e.g. gpt-oss: low, medium, high), handed to the template as `reasoning_effort` */
  reasoningEffort?: string
  /** more template variables (e.g. enable_thinking) */
  variables?: Record<string, unknown>
}

/**
 * The template for models without one: a plain transcript that base models continue naturally.
 *   <system text>\n\nUser: <text>\nAssistant: <text>\n ... Assistant:
 * Generation with it also stops at "\nUser:" so the model does not write the user's next turn.
 */
export const FALLBACK_CHAT_TEMPLATE =
  "{% for m in messages %}{% if m.role == 'system' or m.role == 'developer' %}{{ m.content }}\n\n" +
  "{% elif m.role == 'user' %}User: {{ m.content }}\n" +
  "{% elif m.role == 'assistant' %}Assistant: {{ m.content }}\n" +
  "{% elif m.role == 'tool' %}Tool: {{ m.content }}\n{% endif %}{% endfor %}" +
  '{% if add_generation_prompt %}Assistant:{% endif %}'

const FALLBACK_STOPS = ['\nUser:']

const ROLES = new Set<string>(['system', 'developer', 'user', 'assistant', 'tool'])

/** Text of a message's content: a string, or its text parts joined by newlines. */
export function contentText(content: ChatMessage['content']): string {
  if (content === null || content === undefined) return ''
  if (typeof content === 'string') return content
  return content.map((p) => p.text).join('\n')
}

/** A message as chat templates expect it: OpenAI's chat shape (tool_calls with function name and arguments). */
function templateMessage(m: ChatMessage): Record<string, unknown> {
  const out: Record<string, unknown> = { role: m.role, content: contentText(m.content) }
  if (m.name) out.name = m.name
  if (m.toolCalls?.length) {
    out.tool_calls = m.toolCalls.map((c) => ({ id: c.id, type: 'function', function: { name: c.name, arguments: parseArguments(c.arguments) } }))
  }
  if (m.toolCallId) out.tool_call_id = m.toolCallId
  if (m.reasoning) out.reasoning_content = m.reasoning
  return out
}

// templates index into arguments as a mapping (arguments.location); text that is not JSON stays text
function parseArguments(text: string): unknown {
  try {
    return JSON.parse(text) as unknown
  } catch {
    return text
  }
}

function templateTool(t: Tool): Record<string, unknown> {
  return { type: 'function', function: { name: t.name, description: t.description ?? '', parameters: t.parameters ?? { type: 'object', properties: {} } } }
}

export class ChatTemplate {
  readonly source: string
  readonly isFallback: boolean
  /** stop strings implied by the template (the fallback's "\nUser:") */
  readonly stops: string[]
  readonly #template: Template
  readonly #bos: string
  readonly #eos: string

  /** `source` null = the fallback. Throws when the template does not parse. */
  constructor(source: string | null, special: { bos: string; eos: string }) {
    this.isFallback = source === null || source.trim() === ''
    this.source = this.isFallback ? FALLBACK_CHAT_TEMPLATE : source!
    this.stops = this.isFallback ? FALLBACK_STOPS : []
    this.#template = new Template(this.source)
    this.#bos = special.bos
    this.#eos = special.eos
  }

  render(messages: ChatMessage[], options: ChatRenderOptions = {}): string {
    if (!Array.isArray(messages) || messages.length === 0) throw invalidParam('messages', 'messages must be a non-empty array')
    const normalized = messages.map((m, i) => {
      if (m === null || typeof m !== 'object') throw invalidParam(`messages[${i}]`, `messages[${i}] must be an object`)
      if (typeof m.role !== 'string' || !ROLES.has(m.role)) {
        throw invalidParam(`messages[${i}].role`, `messages[${i}].role must be one of ${[...ROLES].join(', ')}`)
      }
      return templateMessage(m)
    })
    try {
      return this.#template.render({
        ...options.variables,
        messages: normalized,
        add_generation_prompt: options.addGenerationPrompt ?? true,
        bos_token: this.#bos,
        eos_token: this.#eos,
        ...(options.tools && options.tools.length > 0 ? { tools: options.tools.map(templateTool) } : {}),
        ...(options.reasoningEffort ? { reasoning_effort: options.reasoningEffort } : {}),
      })
    } catch (err) {
      if (err instanceof HearthError) throw err
      throw new HearthError('invalid_input', `the chat template failed: ${(err as Error).message}`, 'messages')
    }
  }
}
