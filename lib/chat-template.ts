// Chat messages as the library takes them, and as llama.cpp's chat layer takes them; the template for models that
// have none (base models such as the built-in default). Templates are rendered natively (lib/chat.ts).
import { invalidParam } from './errors.js'
import type { NativeChatMessage } from './native.js'

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

/**
 * The template for models without one: a plain transcript that base models continue naturally.
 *   <system text>\n\nUser: <text>\nAssistant: <text>\n ... \nAssistant:
 * Turns are joined by a newline written before each one, so the generation prompt is "\nAssistant:": a SentencePiece
 * tokenizer adds its word-start space to the newline, not to "Assistant", which lets llama.cpp feed the generation
 * prompt to an output grammar token by token. Generation also stops at "\nUser:" so the model does not write the
 * user's next turn.
 */
export const FALLBACK_CHAT_TEMPLATE =
  // newlines are written as expressions: templates are rendered with trim_blocks, which drops one after a tag
  "{% for m in messages %}{% if not loop.first %}{{ '\\n' }}{% endif %}" +
  "{% if m.role == 'system' or m.role == 'developer' %}{{ m.content + '\\n' }}" +
  "{% elif m.role == 'user' %}{{ 'User: ' + m.content }}" +
  "{% elif m.role == 'assistant' %}{{ 'Assistant: ' + m.content }}" +
  "{% elif m.role == 'tool' %}{{ 'Tool: ' + m.content }}{% endif %}{% endfor %}" +
  "{% if add_generation_prompt %}{{ '\\nAssistant:' }}{% endif %}"

/** Stop strings the fallback template implies: the model must not write the user's next turn. */
export const FALLBACK_STOPS = ['\nUser:']

const ROLES = new Set<string>(['system', 'developer', 'user', 'assistant', 'tool'])

/** Text of a message's content: a string, or its text parts joined by newlines. */
export function contentText(content: ChatMessage['content']): string {
  if (content === null || content === undefined) return ''
  if (typeof content === 'string') return content
  return content.map((p) => p.text).join('\n')
}

/** Messages as llama.cpp's chat layer takes them; roles are checked here, where library callers come in. */
export function toNativeMessages(messages: ChatMessage[]): NativeChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) throw invalidParam('messages', 'messages must be a non-empty array')
  return messages.map((m, i) => {
    if (m === null || typeof m !== 'object') throw invalidParam(`messages[${i}]`, `messages[${i}] must be an object`)
    if (typeof m.role !== 'string' || !ROLES.has(m.role)) {
      throw invalidParam(`messages[${i}].role`, `messages[${i}].role must be one of ${[...ROLES].join(', ')}`)
    }
    const out: NativeChatMessage = { role: m.role, content: contentText(m.content) }
    if (m.toolCalls?.length) out.toolCalls = m.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments }))
    if (m.toolCallId) out.toolCallId = m.toolCallId
    if (m.reasoning) out.reasoningContent = m.reasoning
    return out
  })
}
