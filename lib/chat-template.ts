// Chat messages as the library takes them, and as llama.cpp's chat layer takes them; the template for models that
// have none (base models such as the built-in default). Templates are rendered natively (lib/chat.ts).
import { invalidParam } from './errors.js'
import type { NativeChatMessage } from './native.js'

/** Where a media part came from, as the caller names it in errors (the wire path, e.g. messages[1].content[0]). */
interface MediaPartBase {
  param?: string
}

/**
 * A message's content part: text, an image or an audio clip. Media is the file's bytes, or (images) an http(s)
 * URL that only a model given a media fetcher (ModelOptions.media.fetch) will get.
 */
export type ChatContentPart =
  | { type: 'text'; text: string }
  | (MediaPartBase & { type: 'image'; data: Uint8Array; detail?: 'auto' | 'low' | 'high' })
  | (MediaPartBase & { type: 'image'; url: string; detail?: 'auto' | 'low' | 'high' })
  | (MediaPartBase & { type: 'audio'; data: Uint8Array; format: 'wav' | 'mp3' })

export type MediaPart = Exclude<ChatContentPart, { type: 'text' }>

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

/**
 * Text of a message's content: a string, or its parts joined by newlines, each media part as `marker` (the
 * projector's, which the prompt's tokenizer replaces with the media's embeddings).
 */
export function contentText(content: ChatMessage['content'], marker = ''): string {
  if (content === null || content === undefined) return ''
  if (typeof content === 'string') return content
  return content.map((p) => (p.type === 'text' ? p.text : marker)).join('\n')
}

/** Every media part of `messages`, in the order the template renders them, with the wire path of each. */
export function mediaParts(messages: ChatMessage[]): { part: MediaPart; param: string }[] {
  const out: { part: MediaPart; param: string }[] = []
  messages.forEach((m, i) => {
    if (!Array.isArray(m?.content)) return
    m.content.forEach((p, j) => {
      const at = `messages[${i}].content[${j}]`
      // library callers come in here too: a part must be one of the union's shapes
      const ok =
        p?.type === 'text'
          ? typeof p.text === 'string'
          : p?.type === 'image'
            ? ('data' in p && p.data instanceof Uint8Array) || ('url' in p && typeof p.url === 'string')
            : p?.type === 'audio' && p.data instanceof Uint8Array && (p.format === 'wav' || p.format === 'mp3')
      if (!ok) throw invalidParam(`${at}.type`, `${at} must be {type: "text", text}, {type: "image", data | url} or {type: "audio", data, format}`)
      if (p.type !== 'text') out.push({ part: p, param: p.param ?? at })
    })
  })
  return out
}

/** Messages as llama.cpp's chat layer takes them; roles are checked here, where library callers come in. */
export function toNativeMessages(messages: ChatMessage[], marker = ''): NativeChatMessage[] {
  if (!Array.isArray(messages) || messages.length === 0) throw invalidParam('messages', 'messages must be a non-empty array')
  return messages.map((m, i) => {
    if (m === null || typeof m !== 'object') throw invalidParam(`messages[${i}]`, `messages[${i}] must be an object`)
    if (typeof m.role !== 'string' || !ROLES.has(m.role)) {
      throw invalidParam(`messages[${i}].role`, `messages[${i}].role must be one of ${[...ROLES].join(', ')}`)
    }
    const out: NativeChatMessage = { role: m.role, content: contentText(m.content, marker) }
    if (m.toolCalls?.length) out.toolCalls = m.toolCalls.map((c) => ({ id: c.id, name: c.name, arguments: c.arguments }))
    if (m.toolCallId) out.toolCallId = m.toolCallId
    if (m.reasoning) out.reasoningContent = m.reasoning
    return out
  })
}
