// The chat-output transform: a choice's generated text, as it streams, turned into what a chat client sees —
// content, reasoning and tool calls. Both chat endpoints consume these deltas, streamed and not; concatenating the
// deltas always gives the final message.

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

/** Text as content, unchanged: completions, and chats without tools, reasoning or a structured format. */
export class PlainOutput implements ChatOutput {
  push(text: string): OutputDelta[] {
    return text ? [{ kind: 'content', text }] : []
  }

  finish(): OutputDelta[] {
    return []
  }
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
