// Wire conversations to the library's: Chat Completions messages and Responses input items become ChatMessages,
// both APIs' tool definitions become Tools, and tool_choice / response_format / text.format their library forms.
// Every field that would change the answer is either mapped or refused with a 400 naming it.
import type { OutputFormat, ToolChoice } from '../lib/chat.js'
import type { ChatContentPart, ChatMessage, ChatRole, Tool, ToolCall } from '../lib/chat-template.js'
import { HearthError, invalidParam } from '../lib/errors.js'

type Json = Record<string, unknown>

const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v)

const DETAILS = new Set(['auto', 'low', 'high'])

/**
 * An image URL from the wire: a data: URL becomes the file's bytes (base64 only), an http(s) URL stays a URL
 * for the library, which fetches it only when the server allows remote media.
 */
function imagePart(url: unknown, detail: unknown, at: string, urlParam: string): ChatContentPart {
  if (typeof url !== 'string' || url === '') throw invalidParam(urlParam, `${urlParam} must be a data: URL or an http(s) URL`)
  if (detail !== undefined && detail !== null && !(typeof detail === 'string' && DETAILS.has(detail))) {
    throw invalidParam(`${at}.detail`, `${at}.detail must be auto, low or high`)
  }
  const d = typeof detail === 'string' ? (detail as 'auto' | 'low' | 'high') : undefined
  if (/^https?:\/\//i.test(url)) return { type: 'image', url, param: urlParam, ...(d ? { detail: d } : {}) }
  if (!/^data:/i.test(url)) throw invalidParam(urlParam, `${urlParam} must be a data: URL (data:image/png;base64,...) or an http(s) URL`)
  return { type: 'image', data: dataUrlBytes(url, urlParam), param: urlParam, ...(d ? { detail: d } : {}) }
}

/** The bytes of a base64 data: URL; the declared media type is not trusted (the bytes are sniffed later). */
function dataUrlBytes(url: string, param: string): Uint8Array {
  const comma = url.indexOf(',')
  if (comma < 0 || !/;base64$/i.test(url.slice(0, comma))) {
    throw new HearthError('invalid_media', `${param} must be a base64 data: URL (data:<type>;base64,<data>)`, param)
  }
  return base64Bytes(url.slice(comma + 1), param)
}

function base64Bytes(text: string, param: string): Uint8Array {
  const b64 = text.replace(/\s+/g, '')
  // node's decoder skips characters it does not know: corrupt base64 must be refused, not decoded into other bytes
  if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(b64) || b64.length % 4 === 1) throw new HearthError('invalid_media', `${param} is not valid base64`, param)
  return Buffer.from(b64, 'base64')
}

/** Content parts: text, images (image_url, input_image) and audio (input_audio); files are refused. */
function contentParts(content: unknown, where: string): string | ChatContentPart[] | null {
  if (content === null || content === undefined) return null
  if (typeof content === 'string') return content
  if (!Array.isArray(content)) throw invalidParam(where, `${where} must be a string or an array of content parts`)
  return content.map((part: unknown, j): ChatContentPart => {
    const at = `${where}[${j}]`
    if (!isObject(part)) throw invalidParam(at, `${at} must be an object`)
    switch (part.type) {
      case 'text':
      case 'input_text':
      case 'output_text':
        if (typeof part.text !== 'string') throw invalidParam(`${at}.text`, `${at}.text must be a string`)
        return { type: 'text', text: part.text }
      case 'refusal':
        if (typeof part.refusal !== 'string') throw invalidParam(`${at}.refusal`, `${at}.refusal must be a string`)
        return { type: 'text', text: part.refusal }
      case 'image_url': {
        // {url, detail} as OpenAI sends it; a bare string as some clients do
        const spec = part.image_url
        if (typeof spec === 'string') return imagePart(spec, undefined, at, `${at}.image_url`)
        if (!isObject(spec)) throw invalidParam(`${at}.image_url`, `${at}.image_url must be {"url": ..., "detail"?: ...}`)
        return imagePart(spec.url, spec.detail, `${at}.image_url`, `${at}.image_url.url`)
      }
      case 'input_image':
        if (part.file_id !== undefined && part.file_id !== null) {
          throw new HearthError('unsupported_parameter', `${at}.file_id: this server has no file store; send the image as image_url (a data: URL)`, `${at}.file_id`)
        }
        return imagePart(part.image_url, part.detail, at, `${at}.image_url`)
      case 'input_audio': {
        const spec = part.input_audio
        if (!isObject(spec) || typeof spec.data !== 'string') throw invalidParam(`${at}.input_audio`, `${at}.input_audio must be {"data": <base64>, "format": "wav" | "mp3"}`)
        if (spec.format !== 'wav' && spec.format !== 'mp3') throw invalidParam(`${at}.input_audio.format`, `${at}.input_audio.format must be wav or mp3`)
        return { type: 'audio', data: base64Bytes(spec.data, `${at}.input_audio.data`), format: spec.format, param: `${at}.input_audio` }
      }
      case 'input_file':
      case 'file':
        throw new HearthError('unsupported_parameter', `${at} is a ${String(part.type)} part; this server reads text, images (image_url, input_image) and audio (input_audio), not files`, `${at}.type`)
      default:
        throw invalidParam(`${at}.type`, `${at}.type ${JSON.stringify(part.type)} is not a content part type`)
    }
  })
}

function chatToolCalls(raw: unknown, where: string): ToolCall[] {
  if (raw === undefined || raw === null) return []
  if (!Array.isArray(raw)) throw invalidParam(where, `${where} must be an array`)
  return raw.map((c: unknown, k) => {
    const at = `${where}[${k}]`
    if (!isObject(c) || !isObject(c.function)) throw invalidParam(at, `${at} must be {"id", "type": "function", "function": {"name", "arguments"}}`)
    const fn = c.function
    if (typeof fn.name !== 'string' || fn.name === '') throw invalidParam(`${at}.function.name`, `${at}.function.name must be a non-empty string`)
    const args = typeof fn.arguments === 'string' ? fn.arguments : fn.arguments === undefined ? '{}' : JSON.stringify(fn.arguments)
    return { id: typeof c.id === 'string' ? c.id : `call_${k}`, name: fn.name, arguments: args }
  })
}

const CHAT_ROLES = new Set(['system', 'developer', 'user', 'assistant', 'tool'])

/** Chat Completions `messages`. */
export function chatMessages(raw: Json[]): ChatMessage[] {
  if (raw.length === 0) throw invalidParam('messages', 'messages must be a non-empty array')
  return raw.map((m, i) => {
    const where = `messages[${i}]`
    const role = m.role === 'function' ? 'tool' : m.role
    if (typeof role !== 'string' || !CHAT_ROLES.has(role)) {
      throw invalidParam(`${where}.role`, `${where}.role must be one of system, developer, user, assistant, tool`)
    }
    const msg: ChatMessage = { role: role as ChatRole, content: contentParts(m.content, `${where}.content`) }
    if (typeof m.name === 'string') msg.name = m.name
    if (role === 'assistant') {
      const calls = chatToolCalls(m.tool_calls, `${where}.tool_calls`)
      if (calls.length) msg.toolCalls = calls
      if (typeof m.reasoning_content === 'string' && m.reasoning_content) msg.reasoning = m.reasoning_content
    }
    if (role === 'tool') {
      if (typeof m.tool_call_id === 'string') msg.toolCallId = m.tool_call_id
      else if (m.role !== 'function') throw invalidParam(`${where}.tool_call_id`, `${where} (role tool) needs tool_call_id`)
    }
    return msg
  })
}

/**
 * Responses `input` (a string or items) to messages. `lookup(id)` finds the stored output item an `item_reference`
 * names (as the AI SDK sends earlier assistant turns when responses are stored); it stands for that item.
 */
export function responseInputMessages(input: string | Json[], lookup: (id: string) => Json | undefined = () => undefined): ChatMessage[] {
  if (typeof input === 'string') return [{ role: 'user', content: input }]
  const out: ChatMessage[] = []
  input.forEach((given, i) => {
    const where = `input[${i}]`
    let item = given
    if (given.type === 'item_reference') {
      if (typeof given.id !== 'string') throw invalidParam(`${where}.id`, `${where} (item_reference) needs an id`)
      const found = lookup(given.id)
      if (!found) throw new HearthError('item_not_found', `Item with id '${given.id}' not found.`, `${where}.id`)
      item = found
    }
    const type = item.type ?? 'message'
    switch (type) {
      case 'message': {
        const role = item.role
        if (role !== 'user' && role !== 'system' && role !== 'developer' && role !== 'assistant') {
          throw invalidParam(`${where}.role`, `${where}.role must be user, system, developer or assistant`)
        }
        out.push({ role, content: contentParts(item.content, `${where}.content`) })
        return
      }
      case 'function_call': {
        if (typeof item.call_id !== 'string' || typeof item.name !== 'string') {
          throw invalidParam(where, `${where} (function_call) needs call_id and name`)
        }
        const call: ToolCall = { id: item.call_id, name: item.name, arguments: typeof item.arguments === 'string' ? item.arguments : '{}' }
        // consecutive calls are one assistant turn with several calls, as the model made them
        const last = out.at(-1)
        if (last?.role === 'assistant' && last.toolCalls && !contentText(last)) last.toolCalls.push(call)
        else out.push({ role: 'assistant', content: null, toolCalls: [call] })
        return
      }
      case 'function_call_output': {
        if (typeof item.call_id !== 'string') throw invalidParam(`${where}.call_id`, `${where} (function_call_output) needs call_id`)
        const output = typeof item.output === 'string' ? item.output : JSON.stringify(item.output ?? '')
        out.push({ role: 'tool', toolCallId: item.call_id, content: output })
        return
      }
      case 'reasoning':
        return // earlier reasoning is not replayed: templates drop it from past turns
      default:
        throw new HearthError('unsupported_parameter', `${where} has type ${JSON.stringify(type)}, which this server does not support`, `${where}.type`)
    }
  })
  return out
}

function contentText(m: ChatMessage): string {
  return typeof m.content === 'string' ? m.content : (m.content ?? []).map((p) => (p.type === 'text' ? p.text : '')).join('')
}

function tool(name: unknown, description: unknown, parameters: unknown, strict: unknown, where: string): Tool {
  if (typeof name !== 'string' || !/^[a-zA-Z0-9_.:-]{1,64}$/.test(name)) {
    throw invalidParam(`${where}.name`, `${where} needs a name of 1 to 64 letters, digits, _ . : or -`)
  }
  if (parameters !== undefined && parameters !== null && !isObject(parameters)) {
    throw invalidParam(`${where}.parameters`, `${where}.parameters must be a JSON schema object`)
  }
  const t: Tool = { name }
  if (typeof description === 'string') t.description = description
  if (isObject(parameters)) t.parameters = parameters
  if (typeof strict === 'boolean') t.strict = strict
  return t
}

/** Tools one request may carry, as OpenAI allows: thousands would cost seconds of template rendering each. */
export const MAX_TOOLS = 128

/** Refuses more than MAX_TOOLS entries in `tools` (function and MCP tools alike). */
export function checkToolCount(raw: Json[] | null | undefined): void {
  if ((raw?.length ?? 0) > MAX_TOOLS) throw invalidParam('tools', `tools has ${raw!.length} entries; at most ${MAX_TOOLS} are allowed`)
}

/** Chat Completions `tools`: [{type: "function", function: {name, description, parameters, strict}}]. */
export function chatTools(raw: Json[] | null | undefined): Tool[] {
  checkToolCount(raw)
  return (raw ?? []).map((t, i) => {
    if (t.type !== 'function' || !isObject(t.function)) {
      throw new HearthError('unsupported_parameter', `tools[${i}] must be {"type": "function", "function": {...}}; other tool types are not supported`, `tools[${i}].type`)
    }
    const f = t.function
    return tool(f.name, f.description, f.parameters, f.strict, `tools[${i}].function`)
  })
}

/** Responses `tools`: [{type: "function", name, description, parameters, strict}]. */
export function responseTools(raw: Json[] | null | undefined): Tool[] {
  checkToolCount(raw)
  return (raw ?? []).map((t, i) => {
    if (t.type !== 'function') {
      throw new HearthError('unsupported_parameter', `tools[${i}] has type ${JSON.stringify(t.type)}; only function tools are supported`, `tools[${i}].type`)
    }
    return tool(t.name, t.description, t.parameters, t.strict, `tools[${i}]`)
  })
}

/** tool_choice in either API's form: "none" | "auto" | "required" | a named function. */
export function toolChoice(raw: unknown, tools: Tool[]): ToolChoice {
  if (raw === undefined || raw === null) return 'auto'
  if (raw === 'none' || raw === 'auto' || raw === 'required') return raw
  if (isObject(raw) && raw.type === 'function') {
    const name = isObject(raw.function) ? raw.function.name : raw.name
    if (typeof name !== 'string') throw invalidParam('tool_choice', 'tool_choice names no function')
    if (!tools.some((t) => t.name === name)) throw invalidParam('tool_choice', `tool_choice names ${JSON.stringify(name)}, which is not in tools`)
    return { name }
  }
  throw invalidParam('tool_choice', 'tool_choice must be "none", "auto", "required" or {"type": "function", ...}')
}

/** response_format (chat) or text.format (responses); `schemaAt` is where the schema object sits. */
export function outputFormat(raw: unknown, param: string): OutputFormat {
  if (raw === undefined || raw === null) return { type: 'text' }
  if (!isObject(raw)) throw invalidParam(param, `${param} must be an object`)
  switch (raw.type) {
    case 'text':
      return { type: 'text' }
    case 'json_object':
      return { type: 'json-object' }
    case 'json_schema': {
      // chat nests it: {type, json_schema: {name, schema, strict}}; responses does not: {type, name, schema, strict}
      const spec = isObject(raw.json_schema) ? raw.json_schema : raw
      const at = isObject(raw.json_schema) ? `${param}.json_schema` : param
      if (!isObject(spec.schema)) throw invalidParam(`${at}.schema`, `${at}.schema must be a JSON schema object`)
      const f: OutputFormat = { type: 'json-schema', schema: spec.schema }
      if (typeof spec.name === 'string') f.name = spec.name
      if (typeof spec.strict === 'boolean') f.strict = spec.strict
      return f
    }
    default:
      throw invalidParam(`${param}.type`, `${param}.type must be text, json_object or json_schema`)
  }
}
