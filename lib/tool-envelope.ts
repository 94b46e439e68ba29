// hearth's own tool-call format, for models whose chat template knows no tools (or that have no template, like the
// built-in model): llama.cpp's chat layer parses tool calls only for template families it recognises. The tools are
// described in a system message, the output is constrained by a grammar to one JSON object, the envelope
//
//   {"tool_calls": [{"name": "<a tool's name>", "arguments": {<that tool's parameters>}}, ...]}
//   {"content": "<the answer>"}            (only when the model may also answer without calling: tool_choice auto)
//
// and EnvelopeOutput turns the streamed JSON into content and tool-call deltas as it arrives: a call's id and name
// once its name is complete, its arguments as they are written, the content string unescaped.
import type { ChatContentPart, ChatMessage, Tool } from './chat-template.js'
import { newToolCallId, type ChatOutput, type OutputDelta } from './chat-output.js'

/**
 * The envelope's JSON schema. `mustCall`: only the tool_calls form; `parallel`: more than one call allowed;
 * `contentSchema`: what "content" holds (a string unless the answer itself must follow a schema).
 */
export function envelopeSchema(tools: Tool[], mustCall: boolean, parallel: boolean, contentSchema?: Record<string, unknown>): Record<string, unknown> {
  const call = (t: Tool) => ({
    type: 'object',
    properties: { name: { const: t.name }, arguments: t.parameters ?? { type: 'object', properties: {} } },
    required: ['name', 'arguments'],
    additionalProperties: false,
  })
  const calls = {
    type: 'object',
    properties: {
      tool_calls: { type: 'array', items: tools.length === 1 ? call(tools[0]!) : { anyOf: tools.map(call) }, minItems: 1, ...(parallel ? {} : { maxItems: 1 }) },
    },
    required: ['tool_calls'],
    additionalProperties: false,
  }
  if (mustCall) return calls
  const answer = { type: 'object', properties: { content: contentSchema ?? { type: 'string' } }, required: ['content'], additionalProperties: false }
  return { anyOf: [calls, answer] }
}

/** The system message that describes the tools and the envelope. */
export function toolsPrompt(tools: Tool[], mustCall: boolean): string {
  const lines = ['You can call these functions (each with its arguments as a JSON schema):']
  for (const t of tools) lines.push(`- ${t.name}${t.description ? `: ${t.description}` : ''}. Arguments: ${JSON.stringify(t.parameters ?? { type: 'object', properties: {} })}`)
  lines.push('Reply with one JSON object and nothing else.')
  lines.push('To call functions: {"tool_calls": [{"name": "<function name>", "arguments": {<its arguments>}}]}')
  if (!mustCall) lines.push('To answer without calling a function: {"content": "<your answer>"}')
  return lines.join('\n')
}

/**
 * The conversation as a template without tool support can render it: the tools prompt joins the system message,
 * earlier calls become envelope text of their assistant turn, and tool results become user turns.
 */
export function envelopeConversation(messages: ChatMessage[], tools: Tool[], mustCall: boolean): ChatMessage[] {
  const prompt = toolsPrompt(tools, mustCall)
  const names = new Map<string, string>()
  const out: ChatMessage[] = []
  for (const m of messages) {
    if (m.role === 'assistant' && m.toolCalls?.length) {
      for (const c of m.toolCalls) names.set(c.id, c.name)
      const calls = m.toolCalls.map((c) => `{"name": ${JSON.stringify(c.name)}, "arguments": ${c.arguments || '{}'}}`)
      out.push({ role: 'assistant', content: `{"tool_calls": [${calls.join(', ')}]}` })
    } else if (m.role === 'tool') {
      const name = m.toolCallId ? names.get(m.toolCallId) : undefined
      const head = `Result of ${name ?? 'the function'}${m.toolCallId ? ` (call ${m.toolCallId})` : ''}: `
      // a result with media keeps its parts, so each is rendered as its marker (lib/media.ts)
      const media = Array.isArray(m.content) && m.content.some((p) => p.type !== 'text')
      out.push({ role: 'user', content: media ? [{ type: 'text', text: head }, ...(m.content as ChatContentPart[])] : `${head}${textOf(m)}` })
    } else out.push(m)
  }
  const system = out.findIndex((m) => m.role === 'system' || m.role === 'developer')
  const first = out[0]!
  if (system === 0 && Array.isArray(first.content) && first.content.some((p) => p.type !== 'text')) {
    out[0] = { ...first, content: [...first.content, { type: 'text', text: `\n${prompt}` }] }
  } else if (system === 0) out[0] = { ...first, content: `${textOf(first)}\n\n${prompt}` }
  else out.unshift({ role: 'system', content: prompt })
  return out
}

function textOf(m: ChatMessage): string {
  return typeof m.content === 'string' ? m.content : (m.content ?? []).map((p) => (p.type === 'text' ? p.text : '')).join('\n')
}

type State =
  | 'object' // before the envelope's "{"
  | 'key' // inside the envelope: before a key, or its closing "}"
  | 'colon'
  | 'content' // the content value: a string streamed unescaped, or a JSON value (a schema'd answer) streamed raw
  | 'calls' // before the array's "["
  | 'call' // in the array: before a call's "{", a "," or the "]"
  | 'call-key'
  | 'call-colon'
  | 'name'
  | 'arguments'
  | 'done'
  | 'text' // output that is not an envelope (never under the grammar): passed on as content

/** Follows one raw JSON value character by character: where it ends, whatever it is. */
class RawValue {
  #kind: 'none' | 'container' | 'string' | 'primitive' = 'none'
  #depth = 0
  #inString = false
  #escape = false
  done = false

  get started(): boolean {
    return this.#kind !== 'none'
  }

  /** Whether `ch` belongs to the value; false when the value (a number, true, false, null) ended before it. */
  feed(ch: string): boolean {
    if (this.#kind === 'none') {
      if (ch === '{' || ch === '[') {
        this.#kind = 'container'
        this.#depth = 1
      } else if (ch === '"') {
        this.#kind = 'string'
        this.#inString = true
      } else this.#kind = 'primitive'
      return true
    }
    if (this.#kind === 'primitive') {
      if (ch === ',' || ch === '}' || ch === ']' || isSpace(ch)) {
        this.done = true
        return false
      }
      return true
    }
    if (this.#inString) {
      if (this.#escape) this.#escape = false
      else if (ch === '\\') this.#escape = true
      else if (ch === '"') {
        this.#inString = false
        if (this.#kind === 'string') this.done = true
      }
      return true
    }
    if (ch === '"') this.#inString = true
    else if (ch === '{' || ch === '[') this.#depth++
    else if (ch === '}' || ch === ']') {
      this.#depth--
      if (this.#depth === 0) this.done = true
    }
    return true
  }
}

/** Unescapes a JSON string character by character (escapes and surrogate pairs split across chunks included). */
class StringReader {
  #escape = ''
  #high = ''

  /** The text `ch` adds ('' while an escape is pending), or null at the closing quote. */
  feed(ch: string): string | null {
    if (this.#escape) {
      this.#escape += ch
      if (this.#escape.length === 2 && ch !== 'u') {
        this.#escape = ''
        return ESCAPES[ch] ?? ch
      }
      if (this.#escape.length < 6) return ''
      const unit = String.fromCharCode(parseInt(this.#escape.slice(2), 16))
      this.#escape = ''
      const code = unit.charCodeAt(0)
      if (code >= 0xd800 && code <= 0xdbff) {
        this.#high = unit
        return ''
      }
      const high = this.#high
      this.#high = ''
      return high && code >= 0xdc00 && code <= 0xdfff ? high + unit : unit
    }
    if (ch === '\\') {
      this.#escape = ch
      return ''
    }
    return ch === '"' ? null : ch
  }
}

/** Streams the envelope's JSON into deltas; tolerant of whitespace wherever JSON allows it. */
export class EnvelopeOutput implements ChatOutput {
  #state: State = 'object'
  /** the key being read (null: not inside a key string) and the last complete key */
  #keyReader: StringReader | null = null
  #keyText = ''
  #key = ''
  #string: StringReader | null = null
  #raw: RawValue | null = null
  #name = ''
  #calls = 0

  push(text: string): OutputDelta[] {
    const out: OutputDelta[] = []
    let content = ''
    let args = ''
    const flushContent = () => {
      if (content) out.push({ kind: 'content', text: content })
      content = ''
    }
    const flushArgs = () => {
      if (args) out.push({ kind: 'tool-arguments', index: this.#calls - 1, text: args })
      args = ''
    }
    for (const ch of text) {
      let again = true
      while (again) {
        again = false
        switch (this.#state) {
          case 'object':
            if (ch === '{') this.#state = 'key'
            else if (!isSpace(ch)) {
              this.#state = 'text'
              content += ch
            }
            break
          case 'key':
          case 'call-key':
            if (this.#readKey(ch)) this.#state = this.#state === 'key' ? 'colon' : 'call-colon'
            else if (!this.#keyReader && ch === '}') this.#state = this.#state === 'key' ? 'done' : 'call'
            break
          case 'colon':
            if (ch === ':') {
              this.#state = this.#key === 'tool_calls' ? 'calls' : 'content'
              this.#string = null
              this.#raw = null
            }
            break
          case 'content': {
            if (this.#string) {
              const r = this.#string.feed(ch)
              if (r === null) this.#state = 'key'
              else content += r
            } else if (this.#raw) {
              if (this.#raw.feed(ch)) content += ch
              else again = true
              if (this.#raw.done) this.#state = 'key'
            } else if (ch === '"') this.#string = new StringReader()
            else if (!isSpace(ch)) {
              this.#raw = new RawValue()
              this.#raw.feed(ch)
              content += ch
            }
            break
          }
          case 'calls':
            if (ch === '[') this.#state = 'call'
            break
          case 'call':
            if (ch === '{') this.#state = 'call-key'
            else if (ch === ']') this.#state = 'key'
            break
          case 'call-colon':
            if (ch !== ':') break
            if (this.#key === 'name') {
              this.#state = 'name'
              this.#string = null
            } else {
              this.#state = 'arguments'
              this.#raw = new RawValue()
            }
            break
          case 'name':
            if (!this.#string) {
              if (ch === '"') {
                this.#string = new StringReader()
                this.#name = ''
              }
              break
            }
            {
              const r = this.#string.feed(ch)
              if (r !== null) this.#name += r
              else {
                flushContent()
                out.push({ kind: 'tool-call', index: this.#calls++, id: newToolCallId(), name: this.#name })
                this.#state = 'call-key'
              }
            }
            break
          case 'arguments': {
            const raw = this.#raw!
            if (!raw.started && isSpace(ch)) break
            if (raw.feed(ch)) args += ch
            else again = true
            if (raw.done) {
              flushArgs()
              this.#state = 'call-key'
            }
            break
          }
          case 'done':
            break
          case 'text':
            content += ch
            break
        }
      }
    }
    flushArgs()
    flushContent()
    return out
  }

  finish(): OutputDelta[] {
    return []
  }

  // a key string inside an object: true once it closed (its text is then in #key)
  #readKey(ch: string): boolean {
    if (!this.#keyReader) {
      if (ch === '"') {
        this.#keyReader = new StringReader()
        this.#keyText = ''
      }
      return false
    }
    const r = this.#keyReader.feed(ch)
    if (r !== null) {
      this.#keyText += r
      return false
    }
    this.#keyReader = null
    this.#key = this.#keyText
    return true
  }
}

const ESCAPES: Record<string, string> = { n: '\n', t: '\t', r: '\r', b: '\b', f: '\f', '"': '"', '\\': '\\', '/': '/' }

function isSpace(ch: string): boolean {
  return ch === ' ' || ch === '\n' || ch === '\r' || ch === '\t'
}
