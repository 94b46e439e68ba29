// Chat messages to a prompt through the model's own Jinja chat template (@huggingface/jinja), or through
// FALLBACK_CHAT_TEMPLATE for models that have none (base models such as the built-in default).
import { Template } from '@huggingface/jinja'
import { HearthError, invalidParam } from './errors.js'

export interface ChatContentPart {
  type: string
  text?: string
  [key: string]: unknown
}

export interface ChatMessage {
  role: string
  content?: string | ChatContentPart[] | null
  name?: string
  tool_calls?: unknown[]
  tool_call_id?: string
  [key: string]: unknown
}

export interface ChatRenderOptions {
  /** end with the assistant's turn opening (default true) */
  addGenerationPrompt?: boolean
  /** function tools in OpenAI's chat form, handed to the template as `tools` */
  tools?: unknown[]
  /** `reasoning.effort` / `reasoning_effort`, handed to the template as `reasoning_effort` */
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

const ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool', 'function'])

/** Text of a message's content: a string, or its text parts joined by newlines. */
export function contentText(content: ChatMessage['content'], where: string): string {
  if (content === null || content === undefined) return ''
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) throw invalidParam(where, `${where} must be a string or an array of content parts`)
  const texts: string[] = []
  for (const part of content) {
    if (part === null || typeof part !== 'object') throw invalidParam(where, `${where} has a content part that is not an object`)
    if (part.type === 'text' || part.type === 'input_text' || part.type === 'output_text') {
      if (typeof part.text !== 'string') throw invalidParam(where, `${where} has a text part without text`)
      texts.push(part.text)
    } else if (part.type === 'image_url' || part.type === 'input_image') {
      throw new HearthError('unsupported_parameter', 'this model cannot read images', where)
    } else {
      throw invalidParam(where, `${where} has a content part of unknown type ${JSON.stringify(part.type)}`)
    }
  }
  return texts.join('\n')
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
      return { ...m, content: contentText(m.content, `messages[${i}].content`) }
    })
    try {
      return this.#template.render({
        ...options.variables,
        messages: normalized,
        add_generation_prompt: options.addGenerationPrompt ?? true,
        bos_token: this.#bos,
        eos_token: this.#eos,
        ...(options.tools && options.tools.length > 0 ? { tools: options.tools } : {}),
        ...(options.reasoningEffort ? { reasoning_effort: options.reasoningEffort } : {}),
      })
    } catch (err) {
      if (err instanceof HearthError) throw err
      throw new HearthError('invalid_input', `the chat template failed: ${(err as Error).message}`, 'messages')
    }
  }
}
