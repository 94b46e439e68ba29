// A Responses API output built from one choice's deltas: output items (reasoning, message, function calls) opened
// in the order the model produces them, each closed when the next begins or generation ends, with the streaming
// events OpenAI sends for each (item ids stable across events, output_index equal to the item's position,
// content_index 0). The same builder serves streamed and non-streamed responses, so both carry the same output.
// Reasoning is the model's own text (`content`, reasoning_text events); asked for a summary, which hearth cannot
// write, a reasoning item also carries that text as its one summary part (summary_text events), as clients that
// read only summaries (the AI SDK's OpenAI provider) then show the reasoning.
import type { OutputDelta } from '../lib/chat-output.js'
import type { ChatLogprobEntry } from './logprobs.js'
import { newId } from './ids.js'

export type Item = Record<string, unknown>

/** Sends one event: its type and its fields (sequence_number is added by the caller). */
export type Emit = (type: string, data: Item) => void

interface OpenItem {
  item: Item
  index: number
  text: string
  logprobs: ChatLogprobEntry[]
}

/**
 * How a tool call the model makes is shown: a function_call (null), an mcp_call run by the server, or an
 * mcp_approval_request that ends the response.
 */
export type CallKind = (name: string) => { type: 'mcp_call' | 'mcp_approval_request'; serverLabel: string } | null

export class ResponseOutput {
  readonly items: Item[] = []
  readonly #emit: Emit
  readonly #kind: CallKind
  #open: OpenItem | null = null
  /** the choice's function call index -> its item (arguments stream into the item while it is open) */
  #calls = new Map<number, OpenItem>()
  /** where the current model turn's items begin */
  #turnStart = 0
  /** the MCP calls of the current turn, closed (arguments complete) and waiting to run */
  readonly mcpCalls: { item: Item; index: number }[] = []

  readonly #summary: boolean

  /**
   * `summary`: reasoning items carry their text as a summary too (the request's `reasoning.summary`); `kind`: how
   * a tool call is shown (function_call unless an MCP tool).
   */
  constructor(emit: Emit, options: { summary?: boolean; kind?: CallKind } = {}) {
    this.#emit = emit
    this.#summary = options.summary ?? false
    this.#kind = options.kind ?? (() => null)
  }

  /** How a call of `name` is shown (see CallKind). */
  kindOf(name: string): ReturnType<CallKind> {
    return this.#kind(name)
  }

  /** Starts the next model turn of the agent loop (a call's index restarts at 0 in each turn). */
  nextTurn(): void {
    this.#calls = new Map()
    this.#turnStart = this.items.length
    this.mcpCalls.length = 0
  }

  /** Opens an item the server makes (mcp_list_tools, mcp_call from an approval), with its added event. */
  open(item: Item): number {
    this.#close('completed')
    const index = this.items.length
    this.items.push(item)
    this.#emit('response.output_item.added', { output_index: index, item: { ...item } })
    return index
  }

  /** Emits one event about an item (`response.mcp_*`). */
  event(type: string, index: number, extra: Item = {}): void {
    this.#emit(type, { item_id: this.items[index]!.id, output_index: index, ...extra })
  }

  /** Closes an item the server made: its done event. */
  done(index: number): void {
    this.#emit('response.output_item.done', { output_index: index, item: this.items[index]! })
  }

  /** One delta of the choice, with the log-probabilities of the tokens behind it (content only). */
  add(d: OutputDelta, logprobs: ChatLogprobEntry[] = []): void {
    switch (d.kind) {
      case 'content': {
        const open = this.#ensure('message')
        open.text += d.text
        open.logprobs.push(...logprobs)
        this.#emit('response.output_text.delta', { item_id: open.item.id, output_index: open.index, content_index: 0, delta: d.text, logprobs })
        return
      }
      case 'reasoning': {
        const open = this.#ensure('reasoning')
        open.text += d.text
        this.#emit('response.reasoning_text.delta', { item_id: open.item.id, output_index: open.index, content_index: 0, delta: d.text })
        if (this.#summary) this.#emit('response.reasoning_summary_text.delta', { item_id: open.item.id, output_index: open.index, summary_index: 0, delta: d.text })
        return
      }
      case 'tool-call': {
        this.#close('completed')
        const kind = this.#kind(d.name)
        if (kind?.type === 'mcp_approval_request') {
          // shown whole when its arguments are complete: OpenAI streams no argument events for it
          const item: Item = { id: newId('mcpr_'), type: 'mcp_approval_request', arguments: '', name: d.name, server_label: kind.serverLabel }
          const open: OpenItem = { item, index: -1, text: '', logprobs: [] }
          this.#open = open
          this.#calls.set(d.index, open)
          return
        }
        const item: Item = kind
          ? { id: newId('mcp_'), type: 'mcp_call', status: 'in_progress', approval_request_id: null, arguments: '', error: null, name: d.name, output: null, server_label: kind.serverLabel }
          : { id: newId('fc_'), type: 'function_call', status: 'in_progress', arguments: '', call_id: d.id, name: d.name }
        const open = this.#start(item)
        this.#calls.set(d.index, open)
        if (kind) this.event('response.mcp_call.in_progress', open.index)
        return
      }
      case 'tool-arguments': {
        const open = this.#calls.get(d.index)
        if (!open) return
        open.text += d.text
        if (open.item.type === 'function_call') this.#emit('response.function_call_arguments.delta', { item_id: open.item.id, output_index: open.index, delta: d.text })
        else if (open.item.type === 'mcp_call') this.#emit('response.mcp_call_arguments.delta', { item_id: open.item.id, output_index: open.index, delta: d.text })
        return
      }
    }
  }

  /** Closes every item: `completed`, or `incomplete` when generation was cut by the token limit. */
  finish(status: 'completed' | 'incomplete'): void {
    // a response always has a message, even an empty one, unless the model called tools
    if (this.items.length === this.#turnStart && !this.#open) this.#ensure('message')
    this.#close(status)
  }

  #ensure(type: 'message' | 'reasoning'): OpenItem {
    if (this.#open?.item.type === type) return this.#open
    this.#close('completed')
    const item: Item =
      type === 'message'
        ? { id: newId('msg_'), type: 'message', status: 'in_progress', content: [], role: 'assistant' }
        : { id: newId('rs_'), type: 'reasoning', summary: [], content: [] }
    const open = this.#start(item)
    const part = type === 'message' ? outputText('', []) : { type: 'reasoning_text', text: '' }
    this.#emit('response.content_part.added', { item_id: item.id, output_index: open.index, content_index: 0, part })
    if (type === 'reasoning' && this.#summary) {
      this.#emit('response.reasoning_summary_part.added', { item_id: item.id, output_index: open.index, summary_index: 0, part: summaryText('') })
    }
    return open
  }

  #start(item: Item): OpenItem {
    const open: OpenItem = { item, index: this.items.length, text: '', logprobs: [] }
    this.items.push(item)
    this.#open = open
    this.#emit('response.output_item.added', { output_index: open.index, item: { ...item } })
    return open
  }

  #close(status: 'completed' | 'incomplete'): void {
    const open = this.#open
    if (!open) return
    this.#open = null
    const { item, index, text } = open
    const at = { item_id: item.id, output_index: index, content_index: 0 }
    switch (item.type) {
      case 'message': {
        const part = outputText(text, open.logprobs)
        this.#emit('response.output_text.done', { ...at, text, logprobs: open.logprobs })
        this.#emit('response.content_part.done', { ...at, part })
        item.content = [part]
        item.status = status
        break
      }
      case 'reasoning': {
        const part = { type: 'reasoning_text', text }
        this.#emit('response.reasoning_text.done', { ...at, text })
        this.#emit('response.content_part.done', { ...at, part })
        item.content = [part]
        if (this.#summary) {
          const summary = { item_id: item.id, output_index: index, summary_index: 0 }
          this.#emit('response.reasoning_summary_text.done', { ...summary, text })
          this.#emit('response.reasoning_summary_part.done', { ...summary, part: summaryText(text) })
          item.summary = [summaryText(text)]
        }
        break
      }
      case 'mcp_call':
        // the call runs next: the server sends its done event when it has the output
        item.arguments = text
        this.#emit('response.mcp_call_arguments.done', { item_id: item.id, output_index: index, arguments: text })
        this.mcpCalls.push({ item, index })
        return
      case 'mcp_approval_request': {
        item.arguments = text
        const at = this.items.length
        this.items.push(item)
        this.#emit('response.output_item.added', { output_index: at, item })
        this.#emit('response.output_item.done', { output_index: at, item })
        return
      }
      case 'function_call':
        item.arguments = text
        item.status = 'completed'
        this.#emit('response.function_call_arguments.done', { item_id: item.id, output_index: index, name: item.name, arguments: text })
        break
    }
    this.#emit('response.output_item.done', { output_index: index, item })
  }
}

export function outputText(text: string, logprobs: ChatLogprobEntry[]): Item {
  return { type: 'output_text', annotations: [], logprobs, text }
}

function summaryText(text: string): Item {
  return { type: 'summary_text', text }
}
