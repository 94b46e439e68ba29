// One request as the library runs it: one or more prompts times n choices, each a sequence in the scheduler, each
// choice's text turned into content / reasoning / tool-call deltas by its chat-output transform. Consumers listen
// to one stream of events (synchronously, inside the decode step) and await one result with the usage.
import { MessageAssembler, type AssembledMessage, type ChatOutput, type OutputDelta } from './chat-output.js'
import { HearthError } from './errors.js'
import type { SamplingParams } from './params.js'
import type { MediaSpan } from './media.js'
import type { ChatConstraint, Scheduler } from './scheduler.js'
import type { PieceSource } from './token-text.js'
import type { Sequence, SequenceResult, TokenInfo } from './sequence.js'

/** How a choice ended: a stop (string, end of generation, a complete grammar), the token limit, or tool calls. */
export type ChoiceFinish = 'stop' | 'length' | 'tool-calls'

export type GenerationEvent =
  /** a sampled token, before the text it completes (for log-probabilities and timing) */
  | { kind: 'token'; choice: number; token: TokenInfo }
  | (OutputDelta & { choice: number })
  | { kind: 'end'; choice: number; finish: ChoiceFinish }

export interface ChoiceResult {
  index: number
  /** which of the request's prompts this choice continues */
  prompt: number
  message: AssembledMessage
  finish: ChoiceFinish
  /** every sampled token */
  tokens: number[]
}

export interface Usage {
  /** every prompt counted once, whatever n is */
  promptTokens: number
  /** prompt tokens whose KV cells came from the cache (at most promptTokens) */
  cachedTokens: number
  completionTokens: number
  /** completion tokens whose text was reasoning */
  reasoningTokens: number
}

export interface GenerationResult {
  choices: ChoiceResult[]
  usage: Usage
}

/** What a prepared request submits: tokenized prompts, validated parameters, the output transform per choice. */
export interface PreparedRequest {
  prompts: Int32Array[]
  /** each prompt's media spans (lib/media.ts), where it has any */
  media?: (readonly MediaSpan[] | undefined)[]
  params: SamplingParams
  n: number
  output: () => ChatOutput
  /** the chat format's constraints for the sampler, and how its tokens become text */
  chat?: ChatConstraint
  pieces?: PieceSource
  signal?: AbortSignal
}

export class Generation implements AsyncIterable<GenerationEvent> {
  readonly choices: number
  readonly promptTokens: number
  readonly result: Promise<GenerationResult>
  readonly #seqs: Sequence[]
  #listener: ((e: GenerationEvent) => void) | null = null
  #buffer: GenerationEvent[] = []
  #wake: (() => void) | null = null
  #over = false

  /**
   * Submits every sequence at once; throws (nothing left running) when the scheduler refuses one, so admission
   * errors (400/429/503) reach the caller before anything was generated.
   */
  constructor(scheduler: Scheduler, request: PreparedRequest) {
    const { prompts, params, n } = request
    this.choices = prompts.length * n
    this.promptTokens = prompts.reduce((s, p) => s + p.length, 0)
    if (this.choices > scheduler.capacity) {
      throw new HearthError(
        'invalid_parameter',
        `this request needs ${this.choices} sequences (${prompts.length} prompts x n=${n}) but at most ${scheduler.capacity} can run or wait at once`,
        'n',
      )
    }
    const seqs: Sequence[] = []
    try {
      for (const [k, prompt] of prompts.entries()) {
        const media = request.media?.[k]
        for (let i = 0; i < n; i++) {
          // seeded choices get seed, seed + 1, ...: different, and each reproducible
          const p = params.seed !== null && i > 0 ? { ...params, seed: params.seed + i } : params
          seqs.push(
            scheduler.submit(prompt, p, {
              ...(request.chat ? { chat: request.chat } : {}),
              ...(request.pieces ? { pieces: request.pieces } : {}),
              ...(media ? { media } : {}),
            }),
          )
        }
      }
    } catch (err) {
      for (const s of seqs) s.cancel()
      throw err
    }
    this.#seqs = seqs
    if (request.signal) {
      if (request.signal.aborted) this.cancel()
      else request.signal.addEventListener('abort', () => this.cancel(), { once: true })
    }
    this.result = this.#run(request, n).finally(() => {
      this.#over = true
      this.#wake?.()
    })
    this.result.catch(() => undefined) // consumers that only listen must not see an unhandled rejection
  }

  /** Stops every choice; `result` rejects with `request_cancelled`. */
  cancel(): void {
    for (const s of this.#seqs) s.cancel()
  }

  /** Events through a callback, called inside the decode step (write, don't await). Buffered events come first. */
  listen(listener: (e: GenerationEvent) => void): void {
    this.#listener = listener
    for (const e of this.#buffer.splice(0)) listener(e)
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<GenerationEvent> {
    try {
      for (;;) {
        const e = this.#buffer.shift()
        if (e) {
          yield e
          continue
        }
        if (this.#over) return
        await new Promise<void>((resolve) => (this.#wake = resolve))
        this.#wake = null
      }
    } finally {
      this.cancel()
    }
  }

  #emit(e: GenerationEvent): void {
    if (this.#listener) this.#listener(e)
    else {
      this.#buffer.push(e)
      this.#wake?.()
    }
  }

  async #run(request: PreparedRequest, n: number): Promise<GenerationResult> {
    let reasoningTokens = 0
    const runs = this.#seqs.map(
      (seq, choice) =>
        new Promise<{ result: SequenceResult; message: AssembledMessage }>((resolve, reject) => {
          const output = request.output()
          const message = new MessageAssembler()
          const deliver = (deltas: OutputDelta[]) => {
            message.add(deltas)
            for (const d of deltas) this.#emit({ ...d, choice })
          }
          seq.listen({
            chunk: (c) => {
              if (c.token) this.#emit({ kind: 'token', choice, token: c.token })
              const deltas = output.push(c.text)
              if (c.token && deltas.length > 0 && deltas.every((d) => d.kind === 'reasoning')) reasoningTokens++
              deliver(deltas)
            },
            end: (r) => {
              if (r.error) return reject(r.error)
              if (r.finishReason === 'cancelled') return reject(new HearthError('request_cancelled', 'the request was cancelled'))
              deliver(output.finish())
              const finish = this.#finish(r, message.message)
              this.#emit({ kind: 'end', choice, finish })
              resolve({ result: r, message: message.message })
            },
          })
        }),
    )
    let ended: { result: SequenceResult; message: AssembledMessage }[]
    try {
      ended = await Promise.all(runs)
    } catch (err) {
      this.cancel()
      throw err
    }
    const cached = ended.reduce((s, e) => s + e.result.cachedTokens, 0)
    return {
      choices: ended.map((e, index) => ({
        index,
        prompt: Math.floor(index / n),
        message: e.message,
        finish: this.#finish(e.result, e.message),
        tokens: e.result.tokens,
      })),
      usage: {
        promptTokens: this.promptTokens,
        cachedTokens: Math.min(this.promptTokens, cached),
        completionTokens: ended.reduce((s, e) => s + e.result.completionTokens, 0),
        reasoningTokens,
      },
    }
  }

  #finish(r: SequenceResult, message: AssembledMessage): ChoiceFinish {
    if (r.finishReason === 'length') return 'length'
    return message.toolCalls.length > 0 ? 'tool-calls' : 'stop'
  }
}
