// The chat-output transform: a choice's generated text, as it streams, turned into what a chat client sees —
// content, reasoning and tool calls. Both chat endpoints consume these deltas, streamed and not; concatenating the
// deltas always gives the final message.
import { randomBytes } from 'node:crypto'
import type { NativeChatDiff, NativeChatParser } from './native.js'

export type OutputDelta =
  | { kind: 'content'; text: string }
  | { kind: 'reasoning'; text: string }
  /** a tool call starts: its index among this choice's calls, id and name come once */
  | { kind: 'tool-call'; index: number; id: string; name: string }
  /** more of a tool call's arguments (JSON text) */
  | { kind: 'tool-arguments'; index: number; text: string }

export interface ChatOutput {
  /** Generated text released by the sequence (stop strings already removed); the deltas it completes. */
  push(text: string): OutputDelta[]
  /** Generation has ended; the deltas still pending (e.g. a tool call that is only parseable as a whole). */
  finish(): OutputDelta[]
}

/**
 * The output through a chat format's parser (llama.cpp's chat layer): reasoning, content and tool calls as the
 * template family writes them. A call starts (id and name, once) when its name is surely whole: when its arguments
 * begin, a later call appears, or generation ends. Content may go on through another transform (`then`).
 */
export class ParsedOutput implements ChatOutput {
  readonly #parser: NativeChatParser
  #next: ChatOutput | null = null
  readonly #waiting = new Map<number, { id: string; name: string }>()
  readonly #started = new Set<number>()

  constructor(parser: NativeChatParser) {
    this.#parser = parser
  }

  /** Content deltas go through `next` (e.g. hearth's tool envelope inside the content). */
  then(next: ChatOutput): this {
    this.#next = next
    return this
  }

  push(text: string): OutputDelta[] {
    return text ? this.#map(this.#parser.push(text, false).diffs) : []
  }

  finish(): OutputDelta[] {
    const out = this.#map(this.#parser.push('', true).diffs)
    for (const index of [...this.#waiting.keys()].sort((a, b) => a - b)) this.#start(index, out)
    if (this.#next) out.push(...this.#next.finish())
    return out
  }

  #map(diffs: NativeChatDiff[]): OutputDelta[] {
    const out: OutputDelta[] = []
    for (const d of diffs) {
      if (d.reasoningDelta) out.push({ kind: 'reasoning', text: d.reasoningDelta })
      if (d.contentDelta) {
        if (this.#next) out.push(...this.#next.push(d.contentDelta))
        else out.push({ kind: 'content', text: d.contentDelta })
      }
      const index = d.toolCallIndex
      if (index < 0) continue
      if (!this.#started.has(index)) {
        const call = this.#waiting.get(index) ?? { id: '', name: '' }
        if (d.toolCallId) call.id = d.toolCallId
        if (d.toolCallName) call.name = d.toolCallName
        this.#waiting.set(index, call)
        for (const earlier of [...this.#waiting.keys()].filter((k) => k < index).sort((a, b) => a - b)) this.#start(earlier, out)
        if (d.toolCallArgumentsDelta) this.#start(index, out)
      }
      if (d.toolCallArgumentsDelta) out.push({ kind: 'tool-arguments', index, text: d.toolCallArgumentsDelta })
    }
    return out
  }

  #start(index: number, out: OutputDelta[]): void {
    const call = this.#waiting.get(index)
    if (!call) return
    this.#waiting.delete(index)
    this.#started.add(index)
    out.push({ kind: 'tool-call', index, id: call.id || newToolCallId(), name: call.name })
  }
}

/** Text as content, unchanged: completions, and chats without tools, reasoning or a structured format. */
export class PlainOutput implements ChatOutput {
  push(text: string): OutputDelta[] {
    return text ? [{ kind: 'content', text }] : []
  }

  finish(): OutputDelta[] {
    return []
  }
}

/** `call_` and 24 random hex digits, as OpenAI's tool call ids. */
export function newToolCallId(): string {
  return `call_${randomBytes(12).toString('hex')}`
}

export interface ToolCall {
  id: string
  name: string
  /** JSON text */
  arguments: string
}

/** The message a choice's deltas add up to. */
export interface AssembledMessage {
  content: string
  reasoning: string
  toolCalls: ToolCall[]
}

/** Folds deltas into the whole message (the non-streamed result, and what is stored for the next turn). */
export class MessageAssembler {
  readonly message: AssembledMessage = { content: '', reasoning: '', toolCalls: [] }

  add(deltas: OutputDelta[]): void {
    for (const d of deltas) {
      switch (d.kind) {
        case 'content':
          this.message.content += d.text
          break
        case 'reasoning':
          this.message.reasoning += d.text
          break
        case 'tool-call':
          this.message.toolCalls[d.index] = { id: d.id, name: d.name, arguments: '' }
          break
        case 'tool-arguments':
          this.message.toolCalls[d.index]!.arguments += d.text
          break
      }
    }
  }
}
